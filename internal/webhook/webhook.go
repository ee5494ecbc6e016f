// Package webhook sends signed JSON events to the endpoints an account
// registers (API.md §14): usage thresholds, licence expiry, refusal
// digests, pre-emptions. What causes an event writes an outbox message in
// its own transaction; the leader turns messages into deliveries, one per
// subscribed endpoint, and delivers them at least once, retrying with
// back-off for a day.
package webhook

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/audit"
)

// Event types.
const (
	EventThreshold = "allocation.threshold"
	EventExpiring  = "license.expiring"
	EventExpired   = "license.expired"
	EventRefused   = "registration.refused"
	EventPreempted = "lease.preempted"
	EventPing      = "ping"
)

// EventTypes are the types an endpoint may subscribe to (ping is always sent).
var EventTypes = []string{EventThreshold, EventExpiring, EventExpired, EventRefused, EventPreempted}

// DefaultThresholds are the percentages of a new endpoint without thresholds.
var DefaultThresholds = []int{80, 90, 100}

// Rearm is how many percentage points usage must fall below a threshold
// before a new upward crossing sends another event.
const Rearm = 5

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Limits of an endpoint.
const (
	MaxURLLength  = 2048
	MaxThresholds = 10
	MinSecret     = 16
	MaxSecret     = 256
	MaxWebhooks   = 50 // per account
	// MaxPendingPings bounds the pings queued to one endpoint: pings are
	// for a person testing an endpoint, not a load generator.
	MaxPendingPings = 5
)

// Webhook is a registered endpoint.
type Webhook struct {
	ID         string
	AccountID  int64
	URL        string
	Events     []string
	Thresholds []int
	Enabled    bool
	Secret     string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Wants reports whether the endpoint receives events of type t.
func (w Webhook) Wants(t string) bool {
	return w.Enabled && (t == EventPing || slices.Contains(w.Events, t))
}

// webhookSnapshot is what the audit trail records of an endpoint: never
// the secret, only that it changed.
type webhookSnapshot struct {
	ID            string   `json:"id"`
	URL           string   `json:"url"`
	Events        []string `json:"events"`
	Thresholds    []int    `json:"thresholds"`
	Enabled       bool     `json:"enabled"`
	SecretChanged bool     `json:"secretChanged,omitempty"`
}

func (w Webhook) snapshot() webhookSnapshot {
	return webhookSnapshot{ID: w.ID, URL: w.URL, Events: w.Events, Thresholds: w.Thresholds, Enabled: w.Enabled}
}

// Attempt is one try of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"durationMs"`
}

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID            string // X-LC-Delivery
	WebhookID     string
	AccountID     int64
	EventID       string
	EventType     string
	Body          []byte // the signed body: the same on every attempt
	Status        string
	Attempts      []Attempt
	NextAttemptAt *time.Time // nil once delivered or failed
	GiveUpAt      time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Target is a due delivery with where and how to send it.
type Target struct {
	Delivery
	URL     string
	Secret  string
	Enabled bool
	// ClaimedUntil is the claim's next attempt time: the attempt is
	// recorded only while the claim still holds.
	ClaimedUntil time.Time
}

// Message is an outbox row: what happened, written in the transaction of
// the change that caused it, for the leader to fan out.
type Message struct {
	ID        int64
	AccountID int64
	Type      string // an event type, or KindCrossing
	At        time.Time
	Data      json.RawMessage
}

// KindCrossing is the outbox message of a pool's usage crossing one of
// the account's threshold levels; the dispatcher decides which endpoints
// it fires for.
const KindCrossing = "usage.crossing"

// Crossing is the data of a KindCrossing message.
type Crossing struct {
	Scope    string `json:"scope"` // "allocation" or "rule"
	PoolID   string `json:"poolId"`
	PoolName string `json:"poolName"`
	Package  string `json:"package"`
	Before   int64  `json:"before"`
	After    int64  `json:"after"`
	Limit    int64  `json:"limit"`
}

// Crosses reports whether usage moving from before to after (of limit)
// crosses a level that matters to one of thresholds: upwards over a
// threshold, or down to its re-arm level.
func Crosses(thresholds []int, before, after, limit int64) bool {
	if limit <= 0 || before == after {
		return false
	}
	for _, t := range thresholds {
		if up(t, before, after, limit) || rearms(t, after, limit) && !rearms(t, before, limit) {
			return true
		}
	}
	return false
}

// up: before is below t% of limit and after at or above it. Big units
// compare in float64: exact enough at these magnitudes, no overflow.
func up(t int, before, after, limit int64) bool {
	level := float64(t) * float64(limit)
	return float64(before)*100 < level && float64(after)*100 >= level
}

// rearms: usage is at or below t-Rearm percent (at 0 for thresholds of
// Rearm or less, which else could never re-arm).
func rearms(t int, used, limit int64) bool {
	return float64(used)*100 <= float64(max(t-Rearm, 0))*float64(limit)
}

// RefusalGroup counts the refusals of a pool and reason in a window.
type RefusalGroup struct {
	PoolID     string
	Reason     string
	Count      int64
	Hosts      int64
	First      time.Time
	Last       time.Time
	AgentTypes map[string]int64
}

// Store is the persistence of endpoints, the outbox and deliveries.
// Errors wrap fault.ErrNotFound and fault.ErrConflict.
type Store interface {
	InTx(ctx context.Context, fn func(Store) error) error
	audit.Appender
	// TouchAccount moves the account's revision, so that every replica's
	// usage engine reloads the threshold levels; ErrNotFound without the
	// account.
	TouchAccount(ctx context.Context, accountID int64) error

	CreateWebhook(ctx context.Context, w *Webhook) error
	UpdateWebhook(ctx context.Context, w *Webhook) error
	DeleteWebhook(ctx context.Context, accountID int64, id string) error
	FindWebhook(ctx context.Context, accountID int64, id string) (Webhook, error)
	// FindWebhooks lists the account's endpoints; accountID 0 lists every
	// account's.
	FindWebhooks(ctx context.Context, accountID int64) ([]Webhook, error)

	AddMessages(ctx context.Context, ms []Message) error
	TakeMessages(ctx context.Context, limit int) ([]Message, error)
	DeleteMessages(ctx context.Context, ids []int64) error

	AddDeliveries(ctx context.Context, ds []Delivery) error
	FindDeliveries(ctx context.Context, accountID int64, webhookID string, offset, limit int) ([]Delivery, error)
	FindDelivery(ctx context.Context, accountID int64, id string) (Delivery, error)
	// CountPending counts an endpoint's pending deliveries of an event type.
	CountPending(ctx context.Context, accountID int64, webhookID, eventType string) (int64, error)
	// ClaimDeliveries returns up to limit pending deliveries due at now and
	// moves their next attempt to until, so that no other leader sends
	// them meanwhile.
	ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]Target, error)
	// SaveDelivery writes a delivery; with claimedUntil, only while that
	// claim holds (ErrConflict otherwise).
	SaveDelivery(ctx context.Context, d Delivery, claimedUntil *time.Time) error
	// PruneDeliveries fails pending deliveries past their give-up time and
	// deletes up to limit done longer than DeliveryRetention before now.
	PruneDeliveries(ctx context.Context, now time.Time, limit int) (int, error)

	// FiredThresholds are the endpoint's thresholds of a scope and package
	// that fired and have not re-armed, with the limit they fired at.
	FiredThresholds(ctx context.Context, webhookID, scope, pkg string) (map[int]int64, error)
	SetFired(ctx context.Context, webhookID, scope, pkg string, threshold int, limit int64, fired bool) error
	// AddNotice records a licence notice once; false when it was recorded.
	AddNotice(ctx context.Context, accountID int64, licenseID, notice string, at time.Time) (bool, error)

	// DigestCursor is how far the account's refusals were looked at.
	DigestCursor(ctx context.Context, accountID int64) (time.Time, bool, error)
	SetDigestCursor(ctx context.Context, accountID int64, at time.Time) error
	// Refusals groups the account's refusals in [from, to) by pool and reason.
	Refusals(ctx context.Context, accountID int64, from, to time.Time) ([]RefusalGroup, error)
	// DigestStates are the (pool, reason) digests of the account with
	// refusals not yet sent; SaveDigestState writes one.
	DigestStates(ctx context.Context, accountID int64) ([]DigestState, error)
	SaveDigestState(ctx context.Context, s DigestState) error
	// AccountUsage sums what the account's allocations charge, per package.
	AccountUsage(ctx context.Context, accountID int64) (map[string]int64, error)
}

// DigestState is where the refusal digest of a pool and reason stands.
type DigestState struct {
	AccountID int64
	PoolID    string
	Reason    string
	From      time.Time // start of the refusals not yet sent
	SentAt    time.Time // zero: never sent
	Pending   bool
}

// Interest is what the usage engine must record for an account's
// endpoints: the threshold levels of usage crossings, and pre-emptions.
type Interest struct {
	Thresholds []int // sorted, distinct
	Preempted  bool
}

// InterestOf sums up the enabled endpoints of an account.
func InterestOf(ws []Webhook) Interest {
	var in Interest
	for _, w := range ws {
		if w.Wants(EventThreshold) {
			in.Thresholds = append(in.Thresholds, w.Thresholds...)
		}
		in.Preempted = in.Preempted || w.Wants(EventPreempted)
	}
	slices.Sort(in.Thresholds)
	in.Thresholds = slices.Compact(in.Thresholds)
	return in
}
