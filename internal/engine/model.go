// Package engine is the usage engine: agent registrations (leases), the
// counting of licence units (API.md §4), the reaper of expired leases and
// the event log that analytics read.
package engine

import (
	"context"
	"slices"
	"time"

	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

// Agent types (API.md §4).
const (
	AppAgent        = "APP_AGENT"
	DotNetAppAgent  = "DOT_NET_APP_AGENT"
	PHPAppAgent     = "PHP_APP_AGENT"
	NodeJSAppAgent  = "NODEJS_APP_AGENT"
	PythonAppAgent  = "PYTHON_APP_AGENT"
	GolangSDK       = "GOLANG_SDK"
	NativeWebServer = "NATIVE_WEB_SERVER"
	NativeSDK       = "NATIVE_SDK"
	DBAgent         = "DB_AGENT"
	MachineAgent    = "MACHINE_AGENT"
	SIMMachineAgent = "SIM_MACHINE_AGENT"
	NetVizAgent     = "NETVIZ_AGENT"
)

// AgentTypes lists the agent types a registration may name.
var AgentTypes = []string{AppAgent, DotNetAppAgent, PHPAppAgent, NodeJSAppAgent, PythonAppAgent, GolangSDK,
	NativeWebServer, NativeSDK, DBAgent, MachineAgent, SIMMachineAgent, NetVizAgent}

// moduleOf maps an agent type to the licence module a rule counts (§4.2).
var moduleOf = map[string]string{
	AppAgent: "JAVA", DotNetAppAgent: "DOT_NET", PHPAppAgent: "PHP", NodeJSAppAgent: "NODEJS",
	PythonAppAgent: "PYTHON", GolangSDK: "GOLANG_SDK", NativeWebServer: "NATIVE_WEB_SERVER",
	NativeSDK: "NATIVE_SDK", MachineAgent: "MACHINE_AGENT", SIMMachineAgent: "SIM_MACHINE_AGENT",
	NetVizAgent: "NETVIZ",
}

// perHostModules count one licence per host rather than per agent.
var perHostModules = []string{"DOT_NET", "MACHINE_AGENT", "SIM_MACHINE_AGENT", "NETVIZ"}

// isMachineAgent reports the agent types that machineAgentPriority favours.
func isMachineAgent(t string) bool { return t == MachineAgent || t == SIMMachineAgent }

// level is the position of a package in INFRA < PREMIUM < ENTERPRISE.
func level(pkg string) int { return slices.Index(licensing.Packages, pkg) }

// needOf is the lowest package that covers an agent type (§4.1).
func needOf(agentType string) string {
	switch agentType {
	case MachineAgent, SIMMachineAgent, NetVizAgent:
		return "INFRA"
	}
	return "PREMIUM"
}

// Pool kinds.
const (
	PoolAllocation = "ALLOCATION"
	PoolRule       = "RULE"
)

// Statuses and refusal codes of a decision.
const (
	StatusLicensed = "LICENSED"
	StatusRefused  = "REFUSED"

	CodeNoMoreUnits        = "NO_MORE_UNITS"
	CodeFallbackDelay      = "FALLBACK_DELAY"
	CodeDeniedByFilter     = "DENIED_BY_FILTER"
	CodePackageNotLicensed = "PACKAGE_NOT_LICENSED"
	CodeLicenseExpired     = "LICENSE_EXPIRED"
	CodeNoLicense          = "NO_LICENSE"
	// CodeAllocationDeleted: the lease's allocation is gone (a heartbeat cannot re-charge).
	CodeAllocationDeleted = "ALLOCATION_DELETED"
	CodeRuleDisabled      = "RULE_DISABLED"
	// CodeAllocationDisabled: the allocation takes no new registrations.
	CodeAllocationDisabled = "ALLOCATION_DISABLED"
	CodePreempted          = "PREEMPTED"
)

// LateEventAge is how far behind its commit an event's time may be
// without telling analytics: every event but a reaper's expiry is
// recorded at its transaction's time, and an expiry recorded more than
// half of this after it (a reaper that was down or behind) reopens its
// day's analytics. A day is rolled up, and a replica's replay of the day
// so far trusted, only this long after its end.
const LateEventAge = 10 * time.Minute

// Event kinds of the append-only usage log.
const (
	EventGranted   = "GRANTED"
	EventChanged   = "CHANGED"
	EventReleased  = "RELEASED"
	EventExpired   = "EXPIRED"
	EventPreempted = "PREEMPTED"
	EventRefused   = "REFUSED"
	// EventUndercounted: a heartbeat reported a vCPU whose larger charge
	// did not fit; the host stays charged with its old units.
	EventUndercounted = "UNDERCOUNTED"
)

// Host is a host the engine has seen.
type Host struct {
	AccountID   int64
	ID, Name    string
	VCPU        *int64 // nil: unknown
	FirstSeenAt time.Time
}

// Lease is one agent's licence.
type Lease struct {
	ID           string
	AccountID    int64
	AgentID      string
	AgentType    string
	AgentVersion *string
	PoolKind     string
	PoolID       string
	LicenseKey   string
	// Package is the package of the host charge (allocations) or the
	// module (rules) the lease counts in.
	Package      string
	UnitsCharged int64
	HostID       string
	AppID        *int64
	AppName      *string
	Node         *string
	Tier         *string
	ContainerID  *string
	GrantedAt    time.Time
	HeartbeatAt  time.Time
	ExpiresAt    time.Time
	RevokedCode  *string
	// HostNameCopy and HostVCPUCopy are the host's as the grant saw them
	// (kept up to date by the store), for grouped usage; nil for leases
	// granted before they were kept.
	HostNameCopy *string
	HostVCPUCopy *int64
}

// HostCharge is a host's charge in one allocation.
type HostCharge struct {
	PoolID    string
	HostID    string
	AccountID int64
	Package   string
	Units     int64
	Fallback  bool
	ChargedAt time.Time
}

// Renewed is a live lease RenewLive renewed: its id, pool, host, package
// and new heartbeat and expiry, and its host's charge in its pool (nil:
// none).
type Renewed struct {
	Lease  Lease
	Charge *HostCharge
}

// Event is one line of the usage log.
type Event struct {
	At           time.Time
	AccountID    int64
	Kind         string
	PoolKind     string
	PoolID       string
	Package      string
	Units        int64
	AgentID      string
	AgentType    string
	AgentVersion *string
	HostID       string
	AppID        *int64
	AppName      *string
	Reason       string
}

// LeaseQuery filters the live leases of an account.
type LeaseQuery struct {
	AccountID  int64
	Host       string
	AppID      *int64
	AgentType  string
	LicenseKey string
	Now        time.Time
	Offset     int
	Limit      int
}

// UsageRow is a live lease with its host, as grouped usage reads them.
type UsageRow struct {
	AgentType    string
	AgentVersion *string
	PoolKind     string
	PoolID       string
	LicenseKey   string
	HostID       string
	HostName     string
	AppID        *int64
	AppName      *string
	Node         *string
	ContainerID  *string
	HostVCPU     *int64
	// HostFallback is true when the host is charged fallback units in the
	// lease's allocation: HostUnits of HostPackage (zero otherwise).
	HostPackage  string
	HostUnits    int64
	HostFallback bool
}

// UsageSink receives the rows of a grouped-usage read as they arrive, so
// that the reader can work on them while the database still sends the
// rest. Start is called before the first row of every attempt: a read
// retried on another connection starts over. Row's argument is reused
// once it returns.
type UsageSink interface {
	Start()
	Row(r *UsageRow) error
}

// UsageRows is a UsageSink that keeps every row.
type UsageRows []UsageRow

// Start forgets the rows of an earlier attempt.
func (rs *UsageRows) Start() { *rs = (*rs)[:0] }

// Row keeps a copy of r.
func (rs *UsageRows) Row(r *UsageRow) error {
	*rs = append(*rs, *r)
	return nil
}

// Application is an application the engine has seen.
type Application struct {
	ID   int64
	Name string
}

// PoolKey names a pool to lock.
type PoolKey struct {
	Kind, ID string
}

// PoolUsage is a pool's units (or licences) in use per package (or module).
type PoolUsage struct {
	PoolID    string
	AccountID int64
	Kind      string
	Item      string
	Used      int64
}

// Store is the persistence of the engine. Errors wrap fault kinds.
type Store interface {
	InTx(ctx context.Context, fn func(Store) error) error
	// Licensing is the licensing store bound to the same transaction.
	Licensing() licensing.Store
	// AccountRevision reads the account's revision and, on PostgreSQL,
	// holds a share lock on it until the transaction ends, so that
	// allocation writes and charges do not interleave.
	AccountRevision(ctx context.Context, accountID int64) (int64, error)

	// LockPool serialises charges of one pool until the transaction ends
	// and returns its usage per item.
	LockPool(ctx context.Context, accountID int64, kind, poolID string) (map[string]int64, error)
	AddUsage(ctx context.Context, poolID string, deltas map[string]int64) error

	// SeeHost upserts a host; a known vCPU replaces the stored one.
	// h.FirstSeenAt is now: the first-seen time of a new host, the change
	// time of a changed one.
	SeeHost(ctx context.Context, h Host) (Host, error)
	SeeApplication(ctx context.Context, accountID int64, app Application) error

	FindHostCharge(ctx context.Context, poolID, hostID string) (HostCharge, error)
	SaveHostCharge(ctx context.Context, hc HostCharge) error
	DeleteHostCharge(ctx context.Context, poolID, hostID string) error
	// SerialWrites tells that the database runs one write transaction at
	// a time (SQLite): writes that wait for each other anyway are cheaper
	// done together.
	SerialWrites() bool
	// ReleaseHostCharge deletes the host's charge in the pool and returns
	// it when the host holds no lease there that is not revoked; ok is
	// false when it still holds one or has no charge.
	ReleaseHostCharge(ctx context.Context, poolID, hostID string) (hc HostCharge, ok bool, err error)
	// PreemptibleHosts lists the pool's host charges that hold app-server
	// leases, most recently charged first.
	PreemptibleHosts(ctx context.Context, poolID string) ([]HostCharge, error)

	InsertLease(ctx context.Context, l *Lease) error
	FindLease(ctx context.Context, accountID int64, id string) (Lease, error)
	FindLeaseByAgent(ctx context.Context, accountID int64, agentID string) (Lease, error)
	HostLeases(ctx context.Context, poolID, hostID string) ([]Lease, error)
	// HostHolds tells whether the host holds a lease in the pool that is
	// not revoked, of package pkg when pkg is not empty.
	HostHolds(ctx context.Context, poolID, hostID, pkg string) (bool, error)
	RenewLease(ctx context.Context, accountID int64, id string, now, expires time.Time) error
	// RenewLive renews those of the leases ids that are live (not revoked,
	// not expired at now), in one statement where the database can, and
	// returns each one's id, pool, host and package, and its host's charge
	// in its pool; ids without a live lease are left out. Not in a
	// transaction.
	RenewLive(ctx context.Context, accountID int64, ids []string, now, expires time.Time) ([]Renewed, error)
	RenewLeases(ctx context.Context, accountID int64, ids []string, now, expires time.Time) ([]string, error)
	RevokedLeases(ctx context.Context, accountID int64, ids []string) ([]Lease, error)
	RevokeLeases(ctx context.Context, accountID int64, ids []string, code string) error
	DeleteLease(ctx context.Context, accountID int64, id string) error
	ExpiredLeases(ctx context.Context, now time.Time, limit int) ([]Lease, error)
	// NextExpiry is the earliest expiry after now of any lease, zero if none.
	NextExpiry(ctx context.Context, now time.Time) (time.Time, error)
	Leases(ctx context.Context, q LeaseQuery) ([]Lease, error)

	SetPeakUsage(ctx context.Context, ruleID string, n int64) error
	AddEvents(ctx context.Context, evs []Event) error
	// AddMessages writes webhook outbox messages in the transaction.
	AddMessages(ctx context.Context, ms []webhook.Message) error
	// WebhookInterest says what the account's webhooks want recorded.
	WebhookInterest(ctx context.Context, accountID int64) (webhook.Interest, error)
	// CountRequests adds n registration requests to the account's counter
	// of month ("2026-11"). The counter is kept in a row per shard (the
	// registration queue), so that the batches of different queues do not
	// wait on one row lock; its value is the sum of the shards.
	CountRequests(ctx context.Context, accountID int64, month string, shard, n int) error
	// PruneEvents deletes events older than before, batch per statement.
	PruneEvents(ctx context.Context, before time.Time, batch int) (int64, error)
	// AccountIDs lists every account.
	AccountIDs(ctx context.Context) ([]int64, error)
	// ReopenAnalytics makes day (UTC days since 1970) the first day of the
	// account whose analytics are not rolled up, when it was rolled up,
	// and moves the account's rollup generation in any case (the replays
	// analytics keep of the account's days are then read again).
	ReopenAnalytics(ctx context.Context, accountID int64, day int64) error

	// The set-based reads and writes of a batch of registrations.
	LeasesOfAgents(ctx context.Context, accountID int64, agentIDs []string) ([]Lease, error)
	Hosts(ctx context.Context, accountID int64, hostIDs []string) ([]Host, error)
	SaveHosts(ctx context.Context, hosts []Host, now time.Time) error
	LockPools(ctx context.Context, accountID int64, pools []PoolKey) (map[string]map[string]int64, error)
	AddUsages(ctx context.Context, deltas map[string]map[string]int64) error
	HostChargesOf(ctx context.Context, poolIDs, hostIDs []string) ([]HostCharge, error)
	SaveHostCharges(ctx context.Context, hcs []HostCharge) error
	InsertLeases(ctx context.Context, ls []Lease) error
	SeeApplications(ctx context.Context, accountID int64, apps []Application) error
	// WriteBatch writes what a batch buffered, as SaveHostCharges,
	// AddUsages, InsertLeases, SeeApplications, AddEvents and (when
	// w.Requests > 0) CountRequests would in that order; on PostgreSQL in
	// one statement.
	WriteBatch(ctx context.Context, w BatchWrites) error

	// UsageByApps and UsageByHosts hand the live leases of the applications
	// (by id or name) or hosts to sink as the database returns them, the
	// rows of each key one after another and the keys in the order given
	// as a rule (a sink must not rely on it for correctness).
	UsageByApps(ctx context.Context, accountID int64, ids []int64, names []string, now time.Time, sink UsageSink) error
	UsageByHosts(ctx context.Context, accountID int64, hostIDs []string, now time.Time, sink UsageSink) error
	Applications(ctx context.Context, accountID int64) ([]Application, error)
	AllPoolUsage(ctx context.Context) ([]PoolUsage, error)
	CountLiveLeases(ctx context.Context, now time.Time) (int64, error)
}

// BatchWrites are the buffered writes of a batch of registrations.
type BatchWrites struct {
	AccountID int64
	Charges   []HostCharge // sorted by pool and host
	Deltas    map[string]map[string]int64
	Leases    []Lease
	Apps      []Application // sorted by id
	Events    []Event
	// Requests registration requests are counted in (Month, Shard).
	Month           string
	Shard, Requests int
}
