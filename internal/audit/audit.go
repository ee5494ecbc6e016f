// Package audit is the who-changed-what trail of configuration writes
// (API.md §15). A domain service appends an Entry in the transaction of
// the write it records, so that an entry exists exactly when the change
// committed; entries are never changed afterwards.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Actions of an entry.
const (
	Create = "create"
	Update = "update"
	Delete = "delete"
)

// Resource types of an entry.
const (
	TypeLicense    = "license"
	TypeAllocation = "allocation"
	TypeRule       = "licenseRule"
	TypeUser       = "user"
	TypeAPIClient  = "apiClient"
	TypeWebhook    = "webhook"
)

// ResourceTypes are the resource types entries name.
var ResourceTypes = []string{TypeLicense, TypeAllocation, TypeRule, TypeUser, TypeAPIClient, TypeWebhook}

// Actor kinds: a user or API client of the REST API, or the operator's
// command line (which acts without logging in).
const (
	ActorUser      = "user"
	ActorAPIClient = "apiClient"
	ActorCLI       = "cli"
)

// Actor is who made a change: a principal of an account.
type Actor struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Account string `json:"account"`
}

// Resource is what was changed.
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Entry is one configuration write. Before and After are JSON snapshots
// of the resource as its domain stores it (null for a create's before and
// a delete's after), with secrets left out by whoever made them.
type Entry struct {
	ID        int64
	AccountID int64
	At        time.Time
	Actor     Actor
	Action    string
	Resource  Resource
	RequestID string
	Before    json.RawMessage
	After     json.RawMessage
}

// Appender is the part of a domain store that appends entries; it runs
// in the transaction of the write.
type Appender interface {
	AppendAudit(ctx context.Context, e Entry) error
}

type ctxKey struct{}

type origin struct {
	actor     Actor
	requestID string
}

// WithActor returns ctx carrying who acts and the request id, for the
// entries of the writes made under it.
func WithActor(ctx context.Context, a Actor, requestID string) context.Context {
	return context.WithValue(ctx, ctxKey{}, origin{actor: a, requestID: requestID})
}

// ActorOf returns the actor and request id of ctx; without one, the
// command line (the only writer that does not log in).
func ActorOf(ctx context.Context) (Actor, string) {
	if o, ok := ctx.Value(ctxKey{}).(origin); ok {
		return o.actor, o.requestID
	}
	return Actor{Kind: ActorCLI, Name: "licensing-controller"}, ""
}

// Snapshot encodes v for Before or After; nil gives null.
func Snapshot(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("audit snapshot: %w", err)
	}
	return b, nil
}

// Record appends to app the entry of action on r at now, by the actor of
// ctx; before and after are snapshotted (pass nil for none).
func Record(ctx context.Context, app Appender, accountID int64, now time.Time, action string, r Resource, before, after any) error {
	b, err := Snapshot(before)
	if err != nil {
		return err
	}
	a, err := Snapshot(after)
	if err != nil {
		return err
	}
	actor, rid := ActorOf(ctx)
	e := Entry{AccountID: accountID, At: now.UTC(), Actor: actor, Action: action, Resource: r, RequestID: rid, Before: b, After: a}
	if err := app.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// Query selects entries of an account, newest first.
type Query struct {
	Since, Until time.Time // [Since, Until); zero: open
	// Actor matches the actor's name, or name@account.
	Actor        string
	ResourceType string
	ResourceID   string
	// BeforeID, when set, starts after the entry of that id (keyset paging
	// that entries appended meanwhile do not shift).
	BeforeID int64
	Offset   int
	Limit    int
}

// Store reads and prunes the trail.
type Store interface {
	FindAuditEntries(ctx context.Context, accountID int64, q Query) ([]Entry, error)
	// PruneAudit deletes up to limit entries older than before and says
	// how many it deleted.
	PruneAudit(ctx context.Context, before time.Time, limit int) (int, error)
}

// Service reads the trail and keeps it to its retention.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service; now nil means time.Now.
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// Entries pages through the account's entries, newest first.
func (s *Service) Entries(ctx context.Context, accountID int64, q Query) ([]Entry, error) {
	es, err := s.store.FindAuditEntries(ctx, accountID, q)
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	return es, nil
}

// JobRetention names audit retention in lc_background_job_failures_total.
const JobRetention = "audit-retention"

// pruneBatch bounds one retention statement: no long lock on the table.
const pruneBatch = 5000

// Prune deletes entries older than retention, in batches, and returns
// how many went.
func (s *Service) Prune(ctx context.Context, retention time.Duration) (int, error) {
	cut := s.now().UTC().Add(-retention)
	total := 0
	for {
		n, err := s.store.PruneAudit(ctx, cut, pruneBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("audit retention: %w", err)
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}
