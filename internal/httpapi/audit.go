package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// AuditActorDTO is who made a change.
type AuditActorDTO struct {
	Kind    string `json:"kind" enums:"user,apiClient,cli" example:"user"`
	Name    string `json:"name" example:"bob"`
	Account string `json:"account" example:"customer1"`
}

// AuditResourceDTO is what was changed.
type AuditResourceDTO struct {
	Type string `json:"type" enums:"license,allocation,licenseRule,user,apiClient,webhook" example:"allocation"`
	ID   string `json:"id" example:"6f1c9a3e-5b7d-4c2a-9e8f-1a2b3c4d5e6f"`
	Name string `json:"name" example:"team-a"`
}

// AuditEntryResponse is one configuration write.
type AuditEntryResponse struct {
	ID        int64            `json:"id" example:"42"`
	At        time.Time        `json:"at"`
	Actor     AuditActorDTO    `json:"actor"`
	Action    string           `json:"action" enums:"create,update,delete" example:"update"`
	Resource  AuditResourceDTO `json:"resource"`
	RequestID string           `json:"requestId" example:"3b7f0e0c-8f0e-4c1e-9a7b-2d0e5f6a7b8c"`
	// Before is the resource before the write (null for a create).
	Before json.RawMessage `json:"before" swaggertype:"object"`
	// After is the resource after the write (null for a delete).
	After json.RawMessage `json:"after" swaggertype:"object"`
}

// AuditList is a page of the trail, newest first.
type AuditList struct {
	Data []AuditEntryResponse `json:"data"`
	Next *string              `json:"next"`
}

func auditResponse(e audit.Entry) AuditEntryResponse {
	return AuditEntryResponse{ID: e.ID, At: e.At, Actor: AuditActorDTO(e.Actor), Action: e.Action,
		Resource: AuditResourceDTO(e.Resource), RequestID: e.RequestID, Before: nullJSON(e.Before), After: nullJSON(e.After)}
}

func nullJSON(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("null")
	}
	return m
}

// withActor puts the principal and request id where the domain's audit
// entries find them.
func withActor(c *gin.Context, p auth.Principal) {
	kind := audit.ActorUser
	if p.Kind == auth.KindAPIClient {
		kind = audit.ActorAPIClient
	}
	ctx := audit.WithActor(c.Request.Context(), audit.Actor{Kind: kind, Name: p.Name, Account: p.AccountName}, requestID(c))
	c.Request = c.Request.WithContext(ctx)
}

// auditLog godoc
//
//	@Summary		The audit trail: who changed what, newest first
//	@Description	Every write of licences, allocations, licence rules, users, API clients and webhooks, with the resource before and after (secrets never recorded). CSV with ?format=csv or Accept: text/csv.
//	@Tags			audit
//	@Produce		json
//	@Produce		text/csv
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId		path		int		true	"account id"
//	@Param			since			query		string	false	"from (inclusive): yyyy-MM-dd or RFC 3339"
//	@Param			until			query		string	false	"to (exclusive): yyyy-MM-dd or RFC 3339"
//	@Param			actor			query		string	false	"actor name, or name@account"
//	@Param			resourceType	query		string	false	"license, allocation, licenseRule, user, apiClient or webhook"
//	@Param			resourceId		query		string	false	"resource id"
//	@Param			size			query		int		false	"page size (1-1000, default 100)"
//	@Param			offset			query		int		false	"entries to skip"
//	@Param			format			query		string	false	"csv"
//	@Success		200				{object}	AuditList
//	@Failure		400				{object}	Problem	"VALIDATION_FAILED"
//	@Failure		401				{object}	Problem
//	@Failure		403				{object}	Problem	"ACCOUNT_ADMIN missing"
//	@Failure		404				{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		503				{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/audit [get]
func (a *API) auditLog(c *gin.Context) {
	size, offset, ok := a.page(c)
	if !ok {
		return
	}
	since, until, err := dateRange(c, "since", "until")
	if err != nil {
		a.fail(c, err)
		return
	}
	q := audit.Query{Since: since, Until: until, Actor: c.Query("actor"), ResourceType: c.Query("resourceType"),
		ResourceID: c.Query("resourceId"), Offset: offset, Limit: size + 1}
	if q.ResourceType != "" && !slices.Contains(audit.ResourceTypes, q.ResourceType) {
		a.fail(c, fault.Invalid("resourceType", "must be one of "+strings.Join(audit.ResourceTypes, ", ")))
		return
	}
	if wantsCSV(c) {
		a.auditCSV(c, q, c.Query("size") != "")
		return
	}
	es, err := a.audit.Entries(c.Request.Context(), accountID(c), q)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := AuditList{Data: []AuditEntryResponse{}}
	if len(es) > size {
		es, out.Next = es[:size], nextPage(c, size, offset)
	}
	for _, e := range es {
		out.Data = append(out.Data, auditResponse(e))
	}
	c.JSON(http.StatusOK, out)
}

// auditCSVPage is how many entries a CSV export reads at a time.
var auditCSVPage = 1000

// auditCSV exports every matching entry from the offset on (one page when
// the client asked for a size), streaming a page at a time.
func (a *API) auditCSV(c *gin.Context, q audit.Query, onePage bool) {
	limit := q.Limit - 1 // the page size asked for (page read one more)
	if !onePage {
		limit = auditCSVPage
	}
	var w *csvWriter
	for {
		q.Limit = limit
		es, err := a.audit.Entries(c.Request.Context(), accountID(c), q)
		if err != nil {
			if w == nil {
				a.fail(c, err)
			} else {
				// Headers are sent: cut the export short, visibly.
				a.log.ErrorContext(c.Request.Context(), "audit export cut short", "request_id", requestID(c), "error", err)
				_ = c.Error(err)
			}
			return
		}
		if w == nil {
			cw := startCSV(c, "audit", []string{"id", "at", "actorKind", "actor", "actorAccount", "action", "resourceType",
				"resourceId", "resourceName", "requestId", "before", "after"})
			w = &cw
		}
		for _, e := range es {
			r := auditResponse(e)
			w.Write([]string{strconv.FormatInt(r.ID, 10), r.At.Format(time.RFC3339Nano), r.Actor.Kind, r.Actor.Name, r.Actor.Account,
				r.Action, r.Resource.Type, r.Resource.ID, r.Resource.Name, r.RequestID, string(r.Before), string(r.After)})
		}
		w.Flush()
		if onePage || len(es) < limit {
			return
		}
		q.Offset, q.BeforeID = 0, es[len(es)-1].ID
	}
}
