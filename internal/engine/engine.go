package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

// Options configure an Engine.
type Options struct {
	LeaseTTL      time.Duration // default 5m
	FallbackDelay time.Duration // default 10m
	// DefaultFallbackUnits is charged per agent of unknown vCPU when the
	// licence names no fallbackUnits for its type (default 4).
	DefaultFallbackUnits int64
	Now                  func() time.Time // default time.Now
	Registry             prometheus.Registerer
	Logger               *slog.Logger
	// EventPruneBatch is the most events one retention statement deletes
	// (default EventPruneBatch).
	EventPruneBatch int
}

// Engine grants and refuses licence leases.
type Engine struct {
	store Store
	lic   *licensing.Service
	opt   Options
	now   func() time.Time
	log   *slog.Logger

	mu     sync.Mutex
	cache  map[int64]*poolSet
	queues map[queueKey]*queue // registrations waiting for a batch
	// renewals are live heartbeats waiting to be renewed together,
	// releases releases waiting to be done together (together.go).
	renewals *together[*queuedHeartbeat]
	releases *together[*queuedRelease]
	// apps remembers applications stored with their name, so that most
	// registrations skip that write.
	apps sync.Map // appKey → struct{}

	registrations  *prometheus.CounterVec
	batchSize      prometheus.Histogram
	heartbeatBatch prometheus.Histogram
	releaseBatch   prometheus.Histogram
}

// New returns an Engine. It registers its metrics on opt.Registry.
func New(store Store, lic *licensing.Service, opt Options) *Engine {
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = 5 * time.Minute
	}
	if opt.FallbackDelay <= 0 {
		opt.FallbackDelay = 10 * time.Minute
	}
	if opt.DefaultFallbackUnits <= 0 {
		opt.DefaultFallbackUnits = 4
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{store: store, lic: lic, opt: opt, now: opt.Now, log: opt.Logger, cache: map[int64]*poolSet{}, queues: map[queueKey]*queue{},
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lc_registrations_total", Help: "Agent registrations by outcome (GRANTED, RENEWED or the refusal code).",
		}, []string{"outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lc_registration_batch_size", Help: "Registrations decided together in one transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		heartbeatBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lc_heartbeat_batch_size", Help: "Live single heartbeats renewed together in one statement.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		releaseBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lc_release_batch_size", Help: "Releases done together in one transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		})}
	e.renewals = newTogether(maxRenewals, e.renewBatch)
	e.releases = newTogether(maxReleases, e.releaseQueued)
	if opt.Registry != nil {
		opt.Registry.MustRegister(e.registrations, e.batchSize, e.heartbeatBatch, e.releaseBatch, &collector{e: e})
	}
	return e
}

// poolSet is an account's pools at one revision, with compiled filters.
type poolSet struct {
	licensing.Pools
	loadedAt time.Time
	matchers map[string]licensing.Matcher // by allocation or rule id
	byKey    map[string]pool
	// hooks is what the account's webhooks want recorded.
	hooks webhook.Interest
}

// pool is the pool a licence key designates.
type pool struct {
	kind  string
	alloc *licensing.Allocation
	rule  *licensing.Rule
}

func (p pool) id() string {
	if p.alloc != nil {
		return p.alloc.ID
	}
	return p.rule.ID
}

func (p pool) name() string {
	if p.alloc != nil {
		return p.alloc.Name
	}
	return p.rule.Name
}

// poolsTTL bounds how long time-dependent parts of a cached pool set (the
// Default's derived limits, package expiry) may be reused.
const poolsTTL = 5 * time.Second

// pools returns the account's pools, from the cache when the account's
// revision has not moved.
func (e *Engine) pools(ctx context.Context, tx Store, accountID int64) (*poolSet, error) {
	rev, err := tx.AccountRevision(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("account revision: %w", err)
	}
	now := e.now()
	e.mu.Lock()
	c := e.cache[accountID]
	e.mu.Unlock()
	if c != nil && c.Revision == rev && now.Sub(c.loadedAt) < poolsTTL && !now.Before(c.loadedAt) {
		return c, nil
	}
	p, err := e.lic.Pools(ctx, tx.Licensing(), accountID)
	if err != nil {
		return nil, err
	}
	p.Revision = rev
	hooks, err := tx.WebhookInterest(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("webhooks of account %d: %w", accountID, err)
	}
	ps := &poolSet{Pools: p, loadedAt: now, matchers: map[string]licensing.Matcher{}, byKey: map[string]pool{}, hooks: hooks}
	for i := range p.Allocations {
		a := &p.Allocations[i]
		m, err := licensing.CompileFilters("filters", a.Filters)
		if err != nil {
			return nil, fmt.Errorf("compile filters of allocation %s: %w", a.ID, err)
		}
		ps.matchers[a.ID] = m
		ps.byKey[a.LicenseKey] = pool{kind: PoolAllocation, alloc: a}
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		m, err := licensing.CompileFilters("constraints", licensing.ConstraintFilters(r.Constraints))
		if err != nil {
			return nil, fmt.Errorf("compile constraints of rule %s: %w", r.ID, err)
		}
		ps.matchers[r.ID] = m
		ps.byKey[r.AccessKey] = pool{kind: PoolRule, rule: r}
	}
	e.mu.Lock()
	e.cache[accountID] = ps
	e.mu.Unlock()
	return ps, nil
}

// resolve finds the pool of a licence key: omitted or the account access
// key → Default. Errors: ErrNotFound (UNKNOWN_LICENSE_KEY).
func (ps *poolSet) resolve(key string) (pool, error) {
	if key == "" {
		key = ps.Account.AccessKey
	}
	p, ok := ps.byKey[key]
	if !ok {
		return pool{}, fault.New(fault.ErrNotFound, "UNKNOWN_LICENSE_KEY", "licence key %q is not one of the account's", key)
	}
	return p, nil
}

// Registration is an agent asking for a lease.
type Registration struct {
	AgentID      string
	AgentType    string
	AgentVersion *string
	LicenseKey   string
	HostID       string
	HostName     string
	VCPU         *int64 // nil: unknown
	AppID        *int64
	AppName      *string
	Node         *string
	Tier         *string
	ContainerID  *string
	DryRun       bool
}

// PoolRef names the pool of a decision.
type PoolRef struct {
	Kind, ID, Name string
}

// Explanation says why a decision was taken.
type Explanation struct {
	MatchedFilters       []string
	UnitsAvailableBefore int64
	Limit                int64
	Reason               *string
}

// Decision is the engine's answer to a registration, granted or not.
type Decision struct {
	RegistrationID string
	Status         string
	Pool           PoolRef
	Package        string
	UnitsCharged   int64
	HostUnits      int64
	LeaseExpiresAt *time.Time
	Explanation    Explanation
	// Existing is true when the agent already held this lease (idempotent).
	Existing bool
	DryRun   bool
}

var (
	errDryRun    = errors.New("dry run: roll back")
	errDeadLease = errors.New("the agent holds a dead lease: release it first")
)

// releaseDead releases an agent's expired or revoked lease, unless it was
// renewed or released meanwhile.
func (e *Engine) releaseDead(ctx context.Context, l Lease) error {
	return e.inTx(ctx, func(tx Store) error {
		cur, err := tx.FindLease(ctx, l.AccountID, l.ID)
		switch {
		case errors.Is(err, fault.ErrNotFound):
			return nil
		case err != nil:
			return err
		case cur.RevokedCode == nil && cur.ExpiresAt.After(e.now()):
			return nil
		}
		return e.release(ctx, tx, cur, EventReleased, "REREGISTERED", e.now().UTC())
	})
}

// refusal is a decision that refuses, with the error kind and code.
type refusal struct {
	kind       error
	code       string
	detail     string
	retryAfter int
}

func reason(s string) *string { return &s }

// Register decides on a registration and, when granted and not a dry run,
// stores the lease. A refusal is returned as a *fault.Error whose Extra
// carries the decision. Errors: ErrInvalid, ErrNotFound
// (UNKNOWN_LICENSE_KEY), ErrForbidden (DENIED_BY_FILTER,
// PACKAGE_NOT_LICENSED, LICENSE_EXPIRED, RULE_DISABLED), ErrConflict
// (NO_MORE_UNITS, FALLBACK_DELAY).
func (e *Engine) Register(ctx context.Context, accountID int64, in Registration) (Decision, error) {
	if err := in.validate(); err != nil {
		return Decision{}, err
	}
	var res regResult
	if in.DryRun {
		res = e.registerAlone(ctx, accountID, in)
	} else {
		res = e.submit(ctx, accountID, in) // batched with concurrent registrations
	}
	if res.err != nil {
		return Decision{}, fmt.Errorf("register agent %s: %w", in.AgentID, res.err)
	}
	dec, ref := res.dec, res.ref
	dec.DryRun = in.DryRun
	if in.AppID != nil && !in.DryRun && ref == nil { // committed
		e.apps.Store(appKeyOf(accountID, in), struct{}{})
	}
	if ref != nil {
		e.registrations.WithLabelValues(ref.code).Inc()
		return dec, &fault.Error{Kind: ref.kind, Code: ref.code, Detail: ref.detail, RetryAfterSeconds: ref.retryAfter,
			Extra: map[string]any{"decision": dec}}
	}
	if !in.DryRun {
		outcome := EventGranted
		if dec.Existing {
			outcome = "RENEWED"
		}
		e.registrations.WithLabelValues(outcome).Inc()
	}
	return dec, nil
}

// transientAttempts bounds how often inTx runs a transaction that keeps
// losing to concurrent ones.
const transientAttempts = 3

// inTx runs fn in a transaction, and again when PostgreSQL aborted it in
// favour of a concurrent one (fault.ErrTransient: a deadlock, which two
// batches or a batch and a lone registration can meet on a host and a
// pool), and once more when the connection was lost under it (a restart,
// a failover: what inTx runs is idempotent, a registration by agentId).
// fn must set everything it reports afresh on each run.
func (e *Engine) inTx(ctx context.Context, fn func(Store) error) error {
	var err error
	lost := false
	for attempt := 1; attempt <= transientAttempts; attempt++ {
		err = e.store.InTx(ctx, fn)
		switch {
		case errors.Is(err, fault.ErrTransient):
			e.log.Debug("transaction lost to a concurrent one", "attempt", attempt, "error", err)
		case errors.Is(err, fault.ErrConnLost) && !lost && ctx.Err() == nil:
			lost = true
			e.log.Debug("database connection lost: running the transaction again", "error", err)
		default:
			return err
		}
	}
	return err
}

// registerAlone decides a registration in a transaction of its own.
func (e *Engine) registerAlone(ctx context.Context, accountID int64, in Registration) regResult {
	var (
		res  regResult
		dead Lease
	)
	run := func(tx Store) error {
		var err error
		now := e.now().UTC()
		res.dec, res.ref, dead, err = e.decide(ctx, tx, accountID, in, now)
		if err != nil || in.DryRun {
			return err
		}
		return tx.CountRequests(ctx, accountID, requestMonth(now), shardOf(in.LicenseKey, queueShards), 1)
	}
	err := e.inTx(ctx, run)
	for range 2 {
		if !errors.Is(err, errDeadLease) {
			break
		}
		if err = e.releaseDead(ctx, dead); err == nil {
			err = e.inTx(ctx, run)
		}
	}
	if err != nil && !errors.Is(err, errDryRun) {
		return regResult{err: err}
	}
	return res
}

// requestMonth is the counter a registration request at now counts in.
func requestMonth(now time.Time) string { return now.UTC().Format("2006-01") }

// decide takes the decision on one registration in tx and stores its
// outcome. When the agent holds a dead lease it returns that lease and
// errDeadLease, having written nothing; a dry run ends with errDryRun.
func (e *Engine) decide(ctx context.Context, tx Store, accountID int64, in Registration, now time.Time) (Decision, *refusal, Lease, error) {
	var (
		dec Decision
		ref *refusal
	)
	ps, err := e.pools(ctx, tx, accountID)
	if err != nil {
		return dec, nil, Lease{}, err
	}
	old, err := tx.FindLeaseByAgent(ctx, accountID, in.AgentID)
	switch {
	case err == nil && old.RevokedCode == nil && old.ExpiresAt.After(now):
		if err := sameAgent(ps, old, in); err != nil {
			return dec, nil, Lease{}, err
		}
		err := e.renewExisting(ctx, tx, ps, old, in, now, &dec)
		return dec, nil, Lease{}, err
	case err == nil && !in.DryRun:
		// A dead lease of this agent: it is released in a transaction of
		// its own first, so that no transaction locks two pools.
		return dec, nil, old, errDeadLease
	case err != nil && !errors.Is(err, fault.ErrNotFound):
		return dec, nil, Lease{}, err
	}
	p, err := ps.resolve(in.LicenseKey)
	if err != nil {
		return dec, nil, Lease{}, err
	}
	if in.LicenseKey == "" {
		in.LicenseKey = ps.Account.AccessKey // the lease records the key it counts under
	}
	host, err := tx.SeeHost(ctx, Host{AccountID: accountID, ID: in.HostID, Name: in.HostName, VCPU: in.VCPU, FirstSeenAt: now})
	if err != nil {
		return dec, nil, Lease{}, err
	}
	dec.Pool = PoolRef{Kind: p.kind, ID: p.id(), Name: p.name()}
	var evs []Event
	if p.kind == PoolAllocation {
		evs, ref, err = e.chargeAllocation(ctx, tx, ps, *p.alloc, host, in, now, &dec)
	} else {
		evs, ref, err = e.chargeRule(ctx, tx, ps, *p.rule, host, in, now, &dec)
	}
	if err != nil {
		return dec, nil, Lease{}, err
	}
	if ref == nil && in.AppID != nil { // applications of licensed agents only
		if _, seen := e.apps.Load(appKeyOf(accountID, in)); !seen {
			if err := tx.SeeApplication(ctx, accountID, Application{ID: *in.AppID, Name: deref(in.AppName)}); err != nil {
				return dec, nil, Lease{}, err
			}
		}
	}
	if ref != nil {
		dec.Status = StatusRefused
		dec.Explanation.Reason = reason(ref.code)
		// A refusal records the vCPU the agent reported (0: unknown): the
		// units a what-if must find for it.
		var asked int64
		if in.VCPU != nil {
			asked = *in.VCPU
		}
		evs = append(evs, e.event(accountID, EventRefused, dec, in, asked, ref.code, now))
	}
	if in.DryRun {
		return dec, ref, Lease{}, errDryRun
	}
	return dec, ref, Lease{}, tx.AddEvents(ctx, evs)
}

// sameAgent refuses a re-registration of an agentId that holds a live lease
// for another pool (licenseKey), host or agent type (409 AGENT_ID_IN_USE
// naming what differs): answering with the old lease would hide that the
// new registration was never counted.
func sameAgent(ps *poolSet, l Lease, in Registration) error {
	var differs []string
	if p, err := ps.resolve(in.LicenseKey); err != nil || p.id() != l.PoolID {
		differs = append(differs, "licenseKey")
	}
	if in.HostID != l.HostID {
		differs = append(differs, "host.id")
	}
	if in.AgentType != l.AgentType {
		differs = append(differs, "agentType")
	}
	if len(differs) == 0 {
		return nil
	}
	return &fault.Error{Kind: fault.ErrConflict, Code: "AGENT_ID_IN_USE",
		Detail: fmt.Sprintf("agent %q holds a live lease (%s) with another %s: release it first", in.AgentID, l.ID, strings.Join(differs, ", ")),
		Extra:  map[string]any{"registrationId": l.ID, "differs": differs}}
}

// renewExisting answers a re-registration of a live lease: the same
// decision, the lease renewed.
func (e *Engine) renewExisting(ctx context.Context, tx Store, ps *poolSet, l Lease, in Registration, now time.Time, dec *Decision) error {
	exp := now.Add(e.opt.LeaseTTL)
	if !in.DryRun {
		if err := tx.RenewLease(ctx, l.AccountID, l.ID, now, exp); err != nil {
			return err
		}
	}
	*dec = Decision{RegistrationID: l.ID, Status: StatusLicensed, Pool: PoolRef{Kind: l.PoolKind, ID: l.PoolID},
		Package: l.Package, UnitsCharged: 0, LeaseExpiresAt: &exp, Existing: true,
		Explanation: Explanation{Reason: reason("ALREADY_LICENSED")}}
	var pl *pool
	for _, p := range ps.byKey {
		if p.id() == l.PoolID {
			dec.Pool.Name, pl = p.name(), &p
		}
	}
	if l.PoolKind == PoolAllocation {
		hc, err := tx.FindHostCharge(ctx, l.PoolID, l.HostID)
		if err == nil {
			dec.HostUnits, dec.Package = hc.Units, hc.Package
		} else if !errors.Is(err, fault.ErrNotFound) {
			return err
		}
	}
	switch { // the limit the lease counts against; nothing is charged again
	case pl != nil && pl.alloc != nil:
		dec.Explanation.Limit = pl.alloc.LimitOf(dec.Package)
	case pl != nil && pl.rule != nil:
		dec.Explanation.Limit, _ = pl.rule.Licenses(dec.Package)
	}
	if in.DryRun {
		return errDryRun
	}
	return nil
}

func (in Registration) validate() error {
	var fields []fault.FieldError
	add := func(f, m string) { fields = append(fields, fault.FieldError{Field: f, Message: m}) }
	if in.AgentID == "" || len(in.AgentID) > 512 {
		add("agentId", "must be 1-512 characters")
	}
	if _, ok := moduleOf[in.AgentType]; !ok && in.AgentType != DBAgent {
		add("agentType", "must be one of the agent types of the API")
	}
	if in.HostID == "" || len(in.HostID) > 255 {
		add("host.id", "must be 1-255 characters")
	}
	if in.VCPU != nil && (*in.VCPU < licensing.MinVCPU || *in.VCPU > licensing.MaxVCPU) {
		add("host.vCpu", fmt.Sprintf("must be %d-%d, or null when unknown", licensing.MinVCPU, licensing.MaxVCPU))
	}
	if in.AppID != nil && *in.AppID < 0 {
		add("application.id", "must be >= 0")
	}
	return fault.Invalids(fields)
}

// event builds a usage event of a decision.
func (e *Engine) event(accountID int64, kind string, dec Decision, in Registration, units int64, why string, now time.Time) Event {
	return Event{At: now, AccountID: accountID, Kind: kind, PoolKind: dec.Pool.Kind, PoolID: dec.Pool.ID,
		Package: dec.Package, Units: units, AgentID: in.AgentID, AgentType: in.AgentType, AgentVersion: in.AgentVersion,
		HostID: in.HostID, AppID: in.AppID, AppName: in.AppName, Reason: why}
}

func leaseEvent(kind string, l Lease, units int64, why string, now time.Time) Event {
	return Event{At: now, AccountID: l.AccountID, Kind: kind, PoolKind: l.PoolKind, PoolID: l.PoolID,
		Package: l.Package, Units: units, AgentID: l.AgentID, AgentType: l.AgentType, AgentVersion: l.AgentVersion,
		HostID: l.HostID, AppID: l.AppID, AppName: l.AppName, Reason: why}
}

// newLease is the lease a grant stores on host.
func (e *Engine) newLease(accountID int64, dec Decision, in Registration, host Host, key string, now time.Time) Lease {
	return Lease{ID: uuid.NewString(), AccountID: accountID, AgentID: in.AgentID, AgentType: in.AgentType,
		AgentVersion: in.AgentVersion, PoolKind: dec.Pool.Kind, PoolID: dec.Pool.ID, LicenseKey: key,
		Package: dec.Package, UnitsCharged: dec.UnitsCharged, HostID: in.HostID, AppID: in.AppID, AppName: in.AppName,
		Node: in.Node, Tier: in.Tier, ContainerID: in.ContainerID, GrantedAt: now, HeartbeatAt: now, ExpiresAt: now.Add(e.opt.LeaseTTL),
		HostNameCopy: &host.Name, HostVCPUCopy: host.VCPU}
}

// grant stores the lease of a granted decision on host and fills its id and
// expiry.
func (e *Engine) grant(ctx context.Context, tx Store, accountID int64, key string, in Registration, host Host, now time.Time, dec *Decision) (Event, error) {
	dec.Status = StatusLicensed
	l := e.newLease(accountID, *dec, in, host, key, now)
	if !in.DryRun {
		if err := tx.InsertLease(ctx, &l); err != nil {
			return Event{}, err
		}
	}
	dec.RegistrationID, dec.LeaseExpiresAt = l.ID, &l.ExpiresAt
	return e.event(accountID, EventGranted, *dec, in, dec.UnitsCharged, "", now), nil
}

// fallbackUnits is the charge of an agent on a host of unknown vCPU.
func (e *Engine) fallbackUnits(ps *poolSet, agentType string) int64 {
	if u, ok := ps.FallbackUnits[agentType]; ok && u > 0 {
		return u
	}
	return e.opt.DefaultFallbackUnits
}

func retryAfter(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

type appKey struct {
	account int64
	id      int64
	name    string
}

func appKeyOf(accountID int64, in Registration) appKey {
	return appKey{accountID, *in.AppID, deref(in.AppName)}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
