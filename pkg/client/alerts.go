package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Webhook is an endpoint the service POSTs signed events to (API.md §14).
// Secret is set only in the answer of a create that generated it.
type Webhook struct {
	ID         string    `json:"id"`
	URL        string    `json:"url"`
	Events     []string  `json:"events"`
	Thresholds []int     `json:"thresholds"`
	Enabled    bool      `json:"enabled"`
	Secret     string    `json:"secret,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// WebhookInput creates or changes an endpoint. Nil fields keep their value
// on update and take their default on create (all events, thresholds 80,
// 90 and 100, enabled, a generated secret).
type WebhookInput struct {
	URL        string   `json:"url"`
	Events     []string `json:"events,omitempty"`
	Thresholds []int    `json:"thresholds,omitempty"`
	Enabled    *bool    `json:"enabled,omitempty"`
	Secret     *string  `json:"secret,omitempty"`
}

// DeliveryAttempt is one try of a delivery.
type DeliveryAttempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"durationMs"`
}

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID            string            `json:"id"`
	WebhookID     string            `json:"webhookId"`
	EventID       string            `json:"eventId"`
	EventType     string            `json:"eventType"`
	Status        string            `json:"status"` // pending, delivered or failed
	AttemptCount  int               `json:"attemptCount"`
	Attempts      []DeliveryAttempt `json:"attempts"`
	NextAttemptAt *time.Time        `json:"nextAttemptAt"`
	GiveUpAt      time.Time         `json:"giveUpAt"`
	CreatedAt     time.Time         `json:"createdAt"`
	UpdatedAt     time.Time         `json:"updatedAt"`
	Event         json.RawMessage   `json:"event"`
}

// DeliveryPage is a page of deliveries, newest first.
type DeliveryPage struct {
	Data []Delivery `json:"data"`
	Next *string    `json:"next"`
}

// CreateWebhook registers an endpoint; keep the answer's Secret.
func (c *Client) CreateWebhook(ctx context.Context, in WebhookInput) (*Webhook, error) {
	var out Webhook
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.licensing("/webhooks"), body: in}, &out)
	return &out, err
}

// Webhooks lists the account's endpoints.
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var out []Webhook
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/webhooks"), retry: true}, &out)
	return out, err
}

// UpdateWebhook changes an endpoint (nil fields of in keep their value).
func (c *Client) UpdateWebhook(ctx context.Context, id string, in WebhookInput) (*Webhook, error) {
	var out Webhook
	_, err := c.do(ctx, call{method: http.MethodPut, path: c.licensing("/webhooks/%s", url.PathEscape(id)), body: in, retry: true}, &out)
	return &out, err
}

// DeleteWebhook deletes an endpoint and its deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: c.licensing("/webhooks/%s", url.PathEscape(id)), retry: true}, nil)
	return err
}

// PingWebhook queues a test event to the endpoint and returns its delivery.
func (c *Client) PingWebhook(ctx context.Context, id string) (*Delivery, error) {
	var out Delivery
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.licensing("/webhooks/%s/ping", url.PathEscape(id))}, &out)
	return &out, err
}

// WebhookDeliveries pages through an endpoint's deliveries, newest first
// (size 0: the service's default).
func (c *Client) WebhookDeliveries(ctx context.Context, id string, size, offset int) (*DeliveryPage, error) {
	var out DeliveryPage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/webhooks/%s/deliveries", url.PathEscape(id)),
		query: page(size, offset), retry: true}, &out)
	return &out, err
}

// Redeliver sends a delivery again, with a new day of retries.
func (c *Client) Redeliver(ctx context.Context, deliveryID string) (*Delivery, error) {
	var out Delivery
	_, err := c.do(ctx, call{method: http.MethodPost, path: c.licensing("/webhooks/deliveries/%s/redeliver", url.PathEscape(deliveryID))}, &out)
	return &out, err
}

// AuditEntry is one configuration write (API.md §15).
type AuditEntry struct {
	ID    int64     `json:"id"`
	At    time.Time `json:"at"`
	Actor struct {
		Kind    string `json:"kind"`
		Name    string `json:"name"`
		Account string `json:"account"`
	} `json:"actor"`
	Action   string `json:"action"`
	Resource struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"resource"`
	RequestID string          `json:"requestId"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
}

// AuditPage is a page of the trail, newest first.
type AuditPage struct {
	Data []AuditEntry `json:"data"`
	Next *string      `json:"next"`
}

// AuditQuery narrows the trail; zero fields are not filters.
type AuditQuery struct {
	Since, Until             time.Time
	Actor                    string // name, or name@account
	ResourceType, ResourceID string
	Size, Offset             int
}

// Audit reads a page of the account's audit trail.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	v := page(q.Size, q.Offset)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	set(v, "actor", q.Actor)
	set(v, "resourceType", q.ResourceType)
	set(v, "resourceId", q.ResourceID)
	var out AuditPage
	_, err := c.do(ctx, call{method: http.MethodGet, path: c.licensing("/audit"), query: v, retry: true}, &out)
	return &out, err
}
