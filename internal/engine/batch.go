package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// Registrations are decided in batches (group commit). Concurrent
// registrations of one account queue up while a batch runs, and the next
// batch takes them all: one transaction reads what they need in a few
// set-based statements, locks their pools in id order, decides each
// registration in turn with exactly the counting code of a single
// registration (run against batchStore, which serves reads from memory and
// buffers writes) and writes everything back in a few statements. A
// registration the batch cannot take (an agent's dead lease, an error) is
// decided on its own afterwards, and when the batch transaction fails all
// its registrations are. Limits hold as before: pools are locked for the
// whole transaction and charges are counted in order.

// maxBatch bounds the registrations of one transaction.
const maxBatch = 256

// batchTimeout bounds a batch transaction; it runs detached from the
// requests that queued it.
const batchTimeout = 30 * time.Second

type pending struct {
	in    Registration
	res   regResult
	alone bool // decide it on its own
	done  chan struct{}
}

// regResult is a registration's outcome before it is turned into an answer.
type regResult struct {
	dec Decision
	ref *refusal
	err error
}

// queueShards splits an account's registrations by licence key into
// queues of their own, so that batches of different pools run side by side
// on separate connections (they lock disjoint pools).
const queueShards = 2

type queueKey struct {
	account int64
	shard   int
}

// shardOf is key's shard of n.
func shardOf(key string, n uint32) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % n)
}

// queue is registrations waiting for the next batch.
type queue struct {
	mu      sync.Mutex
	waiting []*pending
	running bool
}

// submit queues a registration and waits for its batch.
func (e *Engine) submit(ctx context.Context, accountID int64, in Registration) regResult {
	k := queueKey{accountID, shardOf(in.LicenseKey, queueShards)}
	e.mu.Lock()
	q := e.queues[k]
	if q == nil {
		q = &queue{}
		e.queues[k] = q
	}
	e.mu.Unlock()
	p := &pending{in: in, done: make(chan struct{})}
	q.mu.Lock()
	q.waiting = append(q.waiting, p)
	if !q.running {
		q.running = true
		go e.drain(accountID, q)
	}
	q.mu.Unlock()
	<-p.done
	if p.alone {
		return e.registerAlone(ctx, accountID, in)
	}
	return p.res
}

// drain runs batches until the account's queue is empty.
func (e *Engine) drain(accountID int64, q *queue) {
	for {
		q.mu.Lock()
		n := min(len(q.waiting), maxBatch)
		if n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		batch := q.waiting[:n:n]
		q.waiting = q.waiting[n:]
		q.mu.Unlock()
		e.runBatch(accountID, batch)
		for _, p := range batch {
			close(p.done)
		}
	}
}

func (e *Engine) runBatch(accountID int64, batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	e.batchSize.Observe(float64(len(batch)))
	if len(batch) == 1 { // nothing to share, but the next batch gathers meanwhile
		batch[0].res = e.registerAlone(ctx, accountID, batch[0].in)
		return
	}
	err := e.store.InTx(ctx, func(tx Store) error {
		now := e.now().UTC()
		for _, p := range batch {
			p.res, p.alone = regResult{}, false
		}
		bs, err := e.prefetch(ctx, tx, accountID, batch, now)
		if err != nil {
			return err
		}
		for _, p := range batch {
			if p.alone {
				continue
			}
			before := bs.writes
			dec, ref, _, err := e.decide(ctx, bs, accountID, p.in, now)
			if err != nil {
				if bs.writes != before { // half a registration: drop the batch
					return fmt.Errorf("registration of agent %s: %w", p.in.AgentID, err)
				}
				p.alone = true
				continue
			}
			p.res = regResult{dec: dec, ref: ref}
		}
		counted := 0
		for _, p := range batch {
			if !p.alone && !p.in.DryRun {
				counted++
			}
		}
		// The counter last, so that its row is held only until the commit.
		return bs.flush(ctx, requests{requestMonth(now), shardOf(batch[0].in.LicenseKey, queueShards), counted})
	})
	if err != nil {
		e.log.Debug("registration batch failed: deciding its registrations one by one", "size", len(batch), "error", err)
		for _, p := range batch {
			p.alone = true
		}
	}
}

// prefetch reads what a batch needs and takes its locks: the agents'
// leases, the hosts (written first, in id order, when new or changed), the
// pools (locked in id order) and the hosts' charges.
func (e *Engine) prefetch(ctx context.Context, tx Store, accountID int64, batch []*pending, now time.Time) (*batchStore, error) {
	rev, err := tx.AccountRevision(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("account revision: %w", err)
	}
	bs := &batchStore{Store: tx, accountID: accountID, rev: rev, leases: map[string]Lease{}, hosts: map[string]Host{},
		charges: map[poolHost]HostCharge{}, dirtyCharges: map[poolHost]HostCharge{}, deltas: map[string]map[string]int64{},
		apps: map[int64]Application{}}
	ps, err := e.pools(ctx, bs, accountID)
	if err != nil {
		return nil, err
	}
	agents := make([]string, len(batch))
	hostSet := map[string]bool{}
	for i, p := range batch {
		agents[i] = p.in.AgentID
		hostSet[p.in.HostID] = true
	}
	leases, err := tx.LeasesOfAgents(ctx, accountID, agents)
	if err != nil {
		return nil, err
	}
	for _, l := range leases {
		bs.leases[l.AgentID] = l
		hostSet[l.HostID] = true
	}
	hostIDs := slices.Sorted(maps.Keys(hostSet))
	hosts, err := tx.Hosts(ctx, accountID, hostIDs)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		bs.hosts[h.ID] = h
	}
	changed := map[string]bool{}
	var pools []PoolKey
	for _, p := range batch {
		if l, ok := bs.leases[p.in.AgentID]; ok {
			if l.RevokedCode != nil || !l.ExpiresAt.After(now) {
				p.alone = true // a dead lease is released on its own first
			}
			continue // a live lease is renewed: no host, no pool
		}
		pl, err := ps.resolve(p.in.LicenseKey)
		if err != nil {
			continue // decide answers UNKNOWN_LICENSE_KEY
		}
		if !slices.ContainsFunc(pools, func(k PoolKey) bool { return k.ID == pl.id() }) {
			pools = append(pools, PoolKey{Kind: pl.kind, ID: pl.id()})
		}
		seen := Host{AccountID: accountID, ID: p.in.HostID, Name: p.in.HostName, VCPU: p.in.VCPU, FirstSeenAt: now}
		stored, known := bs.hosts[seen.ID]
		if h, ch := MergeHost(stored, known, seen); ch {
			bs.hosts[h.ID] = h
			changed[h.ID] = true
		}
	}
	var save []Host
	for _, id := range slices.Sorted(maps.Keys(changed)) {
		save = append(save, bs.hosts[id])
	}
	if err := tx.SaveHosts(ctx, save, now); err != nil {
		return nil, err
	}
	slices.SortFunc(pools, func(a, b PoolKey) int { return cmp.Compare(a.ID, b.ID) })
	if bs.usage, err = tx.LockPools(ctx, accountID, pools); err != nil {
		return nil, err
	}
	poolIDs := map[string]bool{} // the locked pools and those of the leases to renew
	for _, k := range pools {
		poolIDs[k.ID] = true
	}
	for _, l := range leases {
		poolIDs[l.PoolID] = true
	}
	charges, err := tx.HostChargesOf(ctx, slices.Sorted(maps.Keys(poolIDs)), hostIDs)
	if err != nil {
		return nil, err
	}
	for _, hc := range charges {
		bs.charges[poolHost{hc.PoolID, hc.HostID}] = hc
	}
	return bs, nil
}

// MergeHost is what seeing a host does to its stored record (known tells
// whether there is one): a new host is stored as seen; a known vCPU or a new
// name replaces the stored one. It reports whether the record changed.
func MergeHost(stored Host, known bool, seen Host) (Host, bool) {
	if !known {
		return seen, true
	}
	changed := false
	if seen.VCPU != nil && (stored.VCPU == nil || *stored.VCPU != *seen.VCPU) {
		stored.VCPU, changed = seen.VCPU, true
	}
	if seen.Name != "" && seen.Name != stored.Name && seen.Name != seen.ID {
		stored.Name, changed = seen.Name, true
	}
	return stored, changed
}

type poolHost struct{ pool, host string }

// batchStore is the transaction of a batch as the counting code sees it:
// what prefetch read is served from memory, the usual writes are buffered
// and flushed in a few statements. Anything else flushes the buffers and
// from then on goes to the transaction directly.
type batchStore struct {
	Store // the batch's transaction

	accountID int64
	rev       int64
	leases    map[string]Lease // by agent id
	hosts     map[string]Host
	usage     map[string]map[string]int64 // locked pools
	charges   map[poolHost]HostCharge

	direct bool
	writes int // writes so far, buffered or not

	dirtyCharges map[poolHost]HostCharge
	deltas       map[string]map[string]int64
	newLeases    []Lease
	renewals     []renewal
	apps         map[int64]Application
	events       []Event
}

type renewal struct {
	id           string
	now, expires time.Time
}

func (b *batchStore) InTx(context.Context, func(Store) error) error {
	return errors.New("batch store: nested transaction")
}

func (b *batchStore) Licensing() licensing.Store { return b.Store.Licensing() }

func (b *batchStore) AccountRevision(context.Context, int64) (int64, error) { return b.rev, nil }

// goDirect flushes the buffers and sends every later call to the
// transaction.
func (b *batchStore) goDirect(ctx context.Context) error {
	if b.direct {
		return nil
	}
	if err := b.flush(ctx, requests{}); err != nil {
		return err
	}
	b.direct = true
	return nil
}

func (b *batchStore) FindLeaseByAgent(ctx context.Context, accountID int64, agentID string) (Lease, error) {
	if b.direct {
		return b.Store.FindLeaseByAgent(ctx, accountID, agentID)
	}
	l, ok := b.leases[agentID]
	if !ok {
		return Lease{}, fault.New(fault.ErrNotFound, "", "no lease of agent %s", agentID)
	}
	return l, nil
}

func (b *batchStore) SeeHost(ctx context.Context, h Host) (Host, error) {
	if stored, ok := b.hosts[h.ID]; ok && !b.direct {
		if _, changed := MergeHost(stored, true, h); !changed {
			return stored, nil
		}
	}
	if err := b.goDirect(ctx); err != nil {
		return Host{}, err
	}
	b.writes++
	return b.Store.SeeHost(ctx, h)
}

func (b *batchStore) LockPool(ctx context.Context, accountID int64, kind, poolID string) (map[string]int64, error) {
	if u, ok := b.usage[poolID]; ok && !b.direct {
		return maps.Clone(u), nil
	}
	if err := b.goDirect(ctx); err != nil {
		return nil, err
	}
	return b.Store.LockPool(ctx, accountID, kind, poolID)
}

func (b *batchStore) AddUsage(ctx context.Context, poolID string, deltas map[string]int64) error {
	b.writes++
	if b.direct {
		return b.Store.AddUsage(ctx, poolID, deltas)
	}
	if b.deltas[poolID] == nil {
		b.deltas[poolID] = map[string]int64{}
	}
	for item, d := range deltas {
		b.deltas[poolID][item] += d
		if u, ok := b.usage[poolID]; ok {
			u[item] += d
		}
	}
	return nil
}

func (b *batchStore) FindHostCharge(ctx context.Context, poolID, hostID string) (HostCharge, error) {
	if b.direct {
		return b.Store.FindHostCharge(ctx, poolID, hostID)
	}
	hc, ok := b.charges[poolHost{poolID, hostID}]
	if !ok {
		return HostCharge{}, fault.New(fault.ErrNotFound, "", "host %s has no charge in %s", hostID, poolID)
	}
	return hc, nil
}

func (b *batchStore) SaveHostCharge(ctx context.Context, hc HostCharge) error {
	b.writes++
	if b.direct {
		return b.Store.SaveHostCharge(ctx, hc)
	}
	k := poolHost{hc.PoolID, hc.HostID}
	b.charges[k], b.dirtyCharges[k] = hc, hc
	return nil
}

func (b *batchStore) InsertLease(ctx context.Context, l *Lease) error {
	b.writes++
	if b.direct {
		return b.Store.InsertLease(ctx, l)
	}
	b.newLeases = append(b.newLeases, *l)
	b.leases[l.AgentID] = *l
	return nil
}

func (b *batchStore) RenewLease(ctx context.Context, accountID int64, id string, now, expires time.Time) error {
	b.writes++
	if b.direct {
		return b.Store.RenewLease(ctx, accountID, id, now, expires)
	}
	b.renewals = append(b.renewals, renewal{id, now, expires})
	return nil
}

func (b *batchStore) SeeApplication(ctx context.Context, accountID int64, app Application) error {
	b.writes++
	if b.direct {
		return b.Store.SeeApplication(ctx, accountID, app)
	}
	b.apps[app.ID] = app
	return nil
}

func (b *batchStore) AddEvents(ctx context.Context, evs []Event) error {
	b.writes++
	if b.direct {
		return b.Store.AddEvents(ctx, evs)
	}
	b.events = append(b.events, evs...)
	return nil
}

// The rest of the counting code's calls are rare (pre-emption, rules,
// releases): they flush the buffers and go to the transaction.

func (b *batchStore) DeleteHostCharge(ctx context.Context, poolID, hostID string) error {
	if err := b.goDirect(ctx); err != nil {
		return err
	}
	b.writes++
	return b.Store.DeleteHostCharge(ctx, poolID, hostID)
}

func (b *batchStore) ReleaseHostCharge(ctx context.Context, poolID, hostID string) (HostCharge, bool, error) {
	if err := b.goDirect(ctx); err != nil {
		return HostCharge{}, false, err
	}
	b.writes++
	return b.Store.ReleaseHostCharge(ctx, poolID, hostID)
}

func (b *batchStore) PreemptibleHosts(ctx context.Context, poolID string) ([]HostCharge, error) {
	if err := b.goDirect(ctx); err != nil {
		return nil, err
	}
	return b.Store.PreemptibleHosts(ctx, poolID)
}

func (b *batchStore) HostLeases(ctx context.Context, poolID, hostID string) ([]Lease, error) {
	if err := b.goDirect(ctx); err != nil {
		return nil, err
	}
	return b.Store.HostLeases(ctx, poolID, hostID)
}

func (b *batchStore) HostHolds(ctx context.Context, poolID, hostID, pkg string) (bool, error) {
	if err := b.goDirect(ctx); err != nil {
		return false, err
	}
	return b.Store.HostHolds(ctx, poolID, hostID, pkg)
}

func (b *batchStore) RevokeLeases(ctx context.Context, accountID int64, ids []string, code string) error {
	if err := b.goDirect(ctx); err != nil {
		return err
	}
	b.writes++
	return b.Store.RevokeLeases(ctx, accountID, ids, code)
}

func (b *batchStore) DeleteLease(ctx context.Context, accountID int64, id string) error {
	if err := b.goDirect(ctx); err != nil {
		return err
	}
	b.writes++
	return b.Store.DeleteLease(ctx, accountID, id)
}

func (b *batchStore) SetPeakUsage(ctx context.Context, ruleID string, n int64) error {
	if err := b.goDirect(ctx); err != nil {
		return err
	}
	b.writes++
	return b.Store.SetPeakUsage(ctx, ruleID, n)
}

func (b *batchStore) FindLease(ctx context.Context, accountID int64, id string) (Lease, error) {
	if err := b.goDirect(ctx); err != nil {
		return Lease{}, err
	}
	return b.Store.FindLease(ctx, accountID, id)
}

// requests are registration requests to count in a month and shard.
type requests struct {
	month    string
	shard, n int
}

// flush writes the buffers and counts reqs (a statement per table, or on
// PostgreSQL one for all).
func (b *batchStore) flush(ctx context.Context, reqs requests) error {
	err := b.Store.WriteBatch(ctx, BatchWrites{
		AccountID: b.accountID,
		Charges: slices.SortedFunc(maps.Values(b.dirtyCharges), func(x, y HostCharge) int {
			return cmp.Or(cmp.Compare(x.PoolID, y.PoolID), cmp.Compare(x.HostID, y.HostID))
		}),
		Deltas: b.deltas,
		Leases: b.newLeases,
		Apps:   slices.SortedFunc(maps.Values(b.apps), func(x, y Application) int { return cmp.Compare(x.ID, y.ID) }),
		Events: b.events,
		Month:  reqs.month, Shard: reqs.shard, Requests: reqs.n,
	})
	if err != nil {
		return err
	}
	// After the inserts: a lease the batch granted can be renewed in it.
	for _, r := range b.renewals {
		if err := b.Store.RenewLease(ctx, b.accountID, r.id, r.now, r.expires); err != nil {
			return err
		}
	}
	clear(b.dirtyCharges)
	clear(b.deltas)
	clear(b.apps)
	b.newLeases, b.renewals, b.events = nil, nil, nil
	return nil
}
