package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/webhook"
)

// WebhookRequest creates or changes a webhook endpoint. On PUT, fields
// left out keep their values; url is always sent.
type WebhookRequest struct {
	URL string `json:"url" binding:"required" example:"https://ops.example.com/hooks/licensing"`
	// Events to receive (all but ping when left out); ping is always sent.
	Events []string `json:"events,omitempty" example:"allocation.threshold,license.expiring"`
	// Thresholds in percent of a limit (default 80, 90, 100).
	Thresholds []int `json:"thresholds,omitempty" example:"80,90,100"`
	Enabled    *bool `json:"enabled,omitempty" example:"true"`
	// Secret signs the deliveries (write-only; generated when left out on create).
	Secret *string `json:"secret,omitempty" example:"a-long-shared-secret-value"`
}

// WebhookResponse is a webhook endpoint. secret appears only in the
// answer of the create that generated it.
type WebhookResponse struct {
	ID         string    `json:"id" example:"4f9a1a7e-1c1d-4d7b-9f43-3e0f5b2d8c11"`
	URL        string    `json:"url" example:"https://ops.example.com/hooks/licensing"`
	Events     []string  `json:"events" example:"allocation.threshold,license.expiring"`
	Thresholds []int     `json:"thresholds" example:"80,90,100"`
	Enabled    bool      `json:"enabled" example:"true"`
	Secret     string    `json:"secret,omitempty" example:"whsec_5c0b1f..."`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// AttemptDTO is one try of a delivery.
type AttemptDTO struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode,omitempty" example:"503"`
	Error      string    `json:"error,omitempty" example:"HTTP 503 Service Unavailable"`
	DurationMS int64     `json:"durationMs" example:"12"`
}

// DeliveryResponse is one event on its way to one endpoint.
type DeliveryResponse struct {
	ID            string       `json:"id" example:"0b3f6a52-3d53-4a8e-8f0e-2b9e53f3c9a0"`
	WebhookID     string       `json:"webhookId"`
	EventID       string       `json:"eventId"`
	EventType     string       `json:"eventType" example:"allocation.threshold"`
	Status        string       `json:"status" enums:"pending,delivered,failed" example:"pending"`
	AttemptCount  int          `json:"attemptCount" example:"2"`
	Attempts      []AttemptDTO `json:"attempts"`
	NextAttemptAt *time.Time   `json:"nextAttemptAt"`
	GiveUpAt      time.Time    `json:"giveUpAt"`
	CreatedAt     time.Time    `json:"createdAt"`
	UpdatedAt     time.Time    `json:"updatedAt"`
	// Event is the signed body, as sent.
	Event json.RawMessage `json:"event" swaggertype:"object"`
}

// DeliveryList is a page of deliveries, newest first.
type DeliveryList struct {
	Data []DeliveryResponse `json:"data"`
	Next *string            `json:"next"`
}

func webhookResponse(w webhook.Webhook, showSecret bool) WebhookResponse {
	out := WebhookResponse{ID: w.ID, URL: w.URL, Events: w.Events, Thresholds: w.Thresholds, Enabled: w.Enabled,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if showSecret {
		out.Secret = w.Secret
	}
	return out
}

func deliveryResponse(d webhook.Delivery) DeliveryResponse {
	out := DeliveryResponse{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, Status: d.Status,
		AttemptCount: len(d.Attempts), Attempts: make([]AttemptDTO, len(d.Attempts)), NextAttemptAt: d.NextAttemptAt,
		GiveUpAt: d.GiveUpAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, Event: json.RawMessage(d.Body)}
	for i, a := range d.Attempts {
		out.Attempts[i] = AttemptDTO(a)
	}
	return out
}

func (r WebhookRequest) input() webhook.Input {
	return webhook.Input{URL: r.URL, Events: r.Events, Thresholds: r.Thresholds, Enabled: r.Enabled, Secret: r.Secret}
}

// listWebhooks godoc
//
//	@Summary	List the account's webhook endpoints
//	@Tags		webhooks
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int	true	"account id"
//	@Success	200			{array}		WebhookResponse
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/webhooks [get]
func (a *API) listWebhooks(c *gin.Context) {
	ws, err := a.webhooks.Webhooks(c.Request.Context(), accountID(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]WebhookResponse, len(ws))
	for i, w := range ws {
		out[i] = webhookResponse(w, false)
	}
	c.JSON(http.StatusOK, out)
}

// createWebhook godoc
//
//	@Summary		Register a webhook endpoint
//	@Description	Events are POSTed as JSON with X-LC-Event, X-LC-Delivery, X-LC-Timestamp and X-LC-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>. A secret left out is generated and shown in this answer only.
//	@Tags			webhooks
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int				true	"account id"
//	@Param			body		body		WebhookRequest	true	"the endpoint"
//	@Success		201			{object}	WebhookResponse
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		409			{object}	Problem	"TOO_MANY_WEBHOOKS"
//	@Failure		413			{object}	Problem
//	@Failure		415			{object}	Problem
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/webhooks [post]
func (a *API) createWebhook(c *gin.Context) {
	var req WebhookRequest
	if !a.bindJSON(c, &req) {
		return
	}
	w, generated, err := a.webhooks.Create(c.Request.Context(), accountID(c), req.input())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", c.Request.URL.Path+"/"+w.ID)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, webhookResponse(w, generated))
}

// getWebhook godoc
//
//	@Summary	Read a webhook endpoint
//	@Tags		webhooks
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		webhookId	path		string	true	"webhook id"
//	@Success	200			{object}	WebhookResponse
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, WEBHOOK_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/webhooks/{webhookId} [get]
func (a *API) getWebhook(c *gin.Context) {
	w, err := a.webhooks.Webhook(c.Request.Context(), accountID(c), c.Param("webhookId"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, webhookResponse(w, false))
}

// updateWebhook godoc
//
//	@Summary		Change a webhook endpoint
//	@Description	Fields left out keep their values; a new secret is not echoed.
//	@Tags			webhooks
//	@Accept			json
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int				true	"account id"
//	@Param			webhookId	path		string			true	"webhook id"
//	@Param			body		body		WebhookRequest	true	"what changes"
//	@Success		200			{object}	WebhookResponse
//	@Failure		400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND, WEBHOOK_NOT_FOUND"
//	@Failure		413			{object}	Problem
//	@Failure		415			{object}	Problem
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/webhooks/{webhookId} [put]
func (a *API) updateWebhook(c *gin.Context) {
	var req WebhookRequest
	if !a.bindJSON(c, &req) {
		return
	}
	w, err := a.webhooks.Update(c.Request.Context(), accountID(c), c.Param("webhookId"), req.input())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, webhookResponse(w, false))
}

// deleteWebhook godoc
//
//	@Summary	Delete a webhook endpoint and its deliveries
//	@Tags		webhooks
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path	int		true	"account id"
//	@Param		webhookId	path	string	true	"webhook id"
//	@Success	204
//	@Failure	401	{object}	Problem
//	@Failure	403	{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404	{object}	Problem	"ACCOUNT_NOT_FOUND, WEBHOOK_NOT_FOUND"
//	@Failure	503	{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/webhooks/{webhookId} [delete]
func (a *API) deleteWebhook(c *gin.Context) {
	if err := a.webhooks.Delete(c.Request.Context(), accountID(c), c.Param("webhookId")); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// listDeliveries godoc
//
//	@Summary	An endpoint's deliveries, newest first, with their attempts
//	@Tags		webhooks
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		webhookId	path		string	true	"webhook id"
//	@Param		size		query		int		false	"page size (1-1000, default 100)"
//	@Param		offset		query		int		false	"items to skip"
//	@Success	200			{object}	DeliveryList
//	@Failure	400			{object}	Problem	"VALIDATION_FAILED"
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, WEBHOOK_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/webhooks/{webhookId}/deliveries [get]
func (a *API) listDeliveries(c *gin.Context) {
	size, offset, ok := a.page(c)
	if !ok {
		return
	}
	ds, err := a.webhooks.Deliveries(c.Request.Context(), accountID(c), c.Param("webhookId"), offset, size+1)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := DeliveryList{Data: []DeliveryResponse{}}
	if len(ds) > size {
		ds, out.Next = ds[:size], nextPage(c, size, offset)
	}
	for _, d := range ds {
		out.Data = append(out.Data, deliveryResponse(d))
	}
	c.JSON(http.StatusOK, out)
}

// redeliver godoc
//
//	@Summary		Send a delivery again
//	@Description	The delivery is pending again at once, with a new day of retries; the leader sends it within a second.
//	@Tags			webhooks
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int		true	"account id"
//	@Param			deliveryId	path		string	true	"delivery id (X-LC-Delivery)"
//	@Success		202			{object}	DeliveryResponse
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND, DELIVERY_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/webhooks/deliveries/{deliveryId}/redeliver [post]
func (a *API) redeliver(c *gin.Context) {
	d, err := a.webhooks.Redeliver(c.Request.Context(), accountID(c), c.Param("webhookId"), c.Param("deliveryId"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, deliveryResponse(d))
}

// pingWebhook godoc
//
//	@Summary		Send a test event
//	@Description	Queues a ping event to the endpoint (enabled or not); its delivery shows in …/deliveries within a second or two.
//	@Tags			webhooks
//	@Produce		json
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int		true	"account id"
//	@Param			webhookId	path		string	true	"webhook id"
//	@Success		202			{object}	DeliveryResponse
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND, WEBHOOK_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/webhooks/{webhookId}/ping [post]
func (a *API) pingWebhook(c *gin.Context) {
	d, err := a.webhooks.Ping(c.Request.Context(), accountID(c), c.Param("webhookId"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, deliveryResponse(d))
}

// redeliverOfWebhook godoc
//
//	@Summary	Send a delivery of this endpoint again
//	@Tags		webhooks
//	@Produce	json
//	@Security	BasicAuth
//	@Security	BearerAuth
//	@Param		accountId	path		int		true	"account id"
//	@Param		webhookId	path		string	true	"webhook id"
//	@Param		deliveryId	path		string	true	"delivery id (X-LC-Delivery)"
//	@Success	202			{object}	DeliveryResponse
//	@Failure	401			{object}	Problem
//	@Failure	403			{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure	404			{object}	Problem	"ACCOUNT_NOT_FOUND, DELIVERY_NOT_FOUND"
//	@Failure	503			{object}	Problem
//	@Router		/controller/licensing/v1/account/{accountId}/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver [post]
func (a *API) redeliverOfWebhook(c *gin.Context) { a.redeliver(c) }
