package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/lcorp/licensing-controller/internal/usage"
)

// The leases answer of a window is the sums of its days per lease key
// (analytics_leases) merged per agent type and version, host and
// application. The keys change only when the leader saves a day, which
// moves the account's rollup state (through_day, and gen on a reopen), so
// each replica keeps them, grouped and in the answer's order, for the state
// it read them at: a window then reads only key ids and seconds.

// maxCachedLeaseKeys bounds the keys kept, all accounts together (about
// 200 bytes each). An account with more is read afresh on each request.
const maxCachedLeaseKeys = 500_000

// leaseKeyCache holds the lease key sets of the accounts read last.
type leaseKeyCache struct {
	mu       sync.Mutex
	accounts map[int64]*leaseKeySet
	keys     int    // in accounts
	clock    uint64 // moves on each use: the least recently used set goes first
}

// leaseKeySet is one account's lease keys at one rollup state. It is not
// changed once built.
type leaseKeySet struct {
	through, gen int64
	used         uint64 // guarded by the cache's mu
	index        keyIndex
	keys         []leaseKeyRef
	// groups are the leases answer's rows without figures: one per agent
	// type and version, host and application, ordered as the answer is
	// (host id, application key, agent type, version).
	groups []usage.DayLease
}

// keyIndex maps key ids to their place in keys: by a slice from the
// account's first id when its ids are dense enough (they are the table's
// serial, shared by all accounts), else by a map.
type keyIndex struct {
	first  int64
	dense  []int32 // place + 1, by id - first
	sparse map[int64]int32
}

// newKeyIndex indexes ids, the ids of keys in order.
func newKeyIndex(ids []int64) keyIndex {
	if len(ids) == 0 {
		return keyIndex{}
	}
	lo, hi := slices.Min(ids), slices.Max(ids)
	// In uint64: the span of any two int64 ids, without overflow.
	if span := uint64(hi) - uint64(lo); span < 4*uint64(len(ids))+1024 {
		x := keyIndex{first: lo, dense: make([]int32, span+1)}
		for i, id := range ids {
			x.dense[uint64(id)-uint64(lo)] = int32(i + 1)
		}
		return x
	}
	x := keyIndex{sparse: make(map[int64]int32, len(ids))}
	for i, id := range ids {
		x.sparse[id] = int32(i)
	}
	return x
}

// find is the place of key id.
func (x keyIndex) find(id int64) (int32, bool) {
	if x.sparse != nil {
		i, ok := x.sparse[id]
		return i, ok
	}
	if d := uint64(id) - uint64(x.first); d < uint64(len(x.dense)) && x.dense[d] != 0 {
		return x.dense[d] - 1, true
	}
	return 0, false
}

type leaseKeyRef struct {
	pool, pkg string
	group     int32
}

func newLeaseKeyCache() *leaseKeyCache {
	return &leaseKeyCache{accounts: map[int64]*leaseKeySet{}}
}

// get returns the account's set when it was read at this state.
func (c *leaseKeyCache) get(accountID, through, gen int64) *leaseKeySet {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.accounts[accountID]
	if s == nil || s.through != through || s.gen != gen {
		return nil
	}
	c.clock++
	s.used = c.clock
	return s
}

// put keeps s as the account's set, dropping the least recently used sets
// beyond the bound.
func (c *leaseKeyCache) put(accountID int64, s *leaseKeySet) {
	if len(s.keys) > maxCachedLeaseKeys {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.accounts[accountID]; old != nil {
		c.keys -= len(old.keys)
	}
	c.clock++
	s.used = c.clock
	c.accounts[accountID] = s
	c.keys += len(s.keys)
	for c.keys > maxCachedLeaseKeys {
		var lru int64
		var oldest uint64
		for id, set := range c.accounts {
			if id != accountID && (oldest == 0 || set.used < oldest) {
				lru, oldest = id, set.used
			}
		}
		if oldest == 0 {
			break
		}
		c.keys -= len(c.accounts[lru].keys)
		delete(c.accounts, lru)
	}
}

// leaseKeys returns the account's lease keys at its current rollup state.
func (e engineStore) leaseKeys(ctx context.Context, accountID int64) (*leaseKeySet, error) {
	var st []struct{ ThroughDay, Gen int64 }
	if err := e.s.conn(ctx).Raw("SELECT through_day, gen FROM analytics_state WHERE account_id = ?", accountID).Scan(&st).Error; err != nil {
		return nil, fmt.Errorf("analytics rollup state: %w", translate(err))
	}
	if len(st) == 0 {
		return &leaseKeySet{}, nil
	}
	cache := e.s.leaseKeys
	if s := cache.get(accountID, st[0].ThroughDay, st[0].Gen); s != nil {
		return s, nil
	}
	// Read after the state: the keys are those of that state or newer,
	// which only adds keys no day of that state refers to.
	s, err := e.readLeaseKeys(ctx, accountID)
	if err != nil {
		return nil, err
	}
	s.through, s.gen = st[0].ThroughDay, st[0].Gen
	cache.put(accountID, s)
	return s, nil
}

func (e engineStore) readLeaseKeys(ctx context.Context, accountID int64) (*leaseKeySet, error) {
	type groupKey struct{ typ, version, host, app string }
	var (
		s       *leaseKeySet
		groups  map[groupKey]int32
		ids     []int64 // the key of each group that named it (the newest)
		keyIDs  []int64 // by place in keys
		strs    map[string]string
		reading = func() {
			s = &leaseKeySet{}
			groups, ids, keyIDs, strs = map[groupKey]int32{}, nil, nil, map[string]string{}
		}
	)
	// Pools, packages, agent types and versions are few: one string each.
	intern := func(v string) string {
		if w, ok := strs[v]; ok {
			return w
		}
		strs[v] = v
		return v
	}
	reading()
	err := e.s.eachRow(ctx, `SELECT id, pool_id, agent_type, agent_version, host_id, app_key, package, app_id, app_name
		FROM analytics_lease_keys WHERE account_id = ?`, []any{accountID}, reading, func(scan func(...any) error) error {
		var (
			id                                 int64
			pool, typ, version, host, app, pkg string
			appID                              *int64
			appName                            *string
		)
		if err := scan(&id, &pool, &typ, &version, &host, &app, &pkg, &appID, &appName); err != nil {
			return err
		}
		k := groupKey{intern(typ), intern(version), host, app}
		g, ok := groups[k]
		if !ok {
			g = int32(len(s.groups))
			groups[k] = g
			s.groups = append(s.groups, usage.DayLease{AppKey: app,
				LeaseUsage: usage.LeaseUsage{AgentType: k.typ, AgentVersion: k.version, HostID: host}})
			ids = append(ids, 0)
		}
		if id > ids[g] { // the names of the newest key
			ids[g] = id
			s.groups[g].AppID, s.groups[g].AppName = appID, appName
		}
		keyIDs = append(keyIDs, id)
		s.keys = append(s.keys, leaseKeyRef{pool: intern(pool), pkg: intern(pkg), group: g})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read analytics lease keys: %w", translate(err))
	}
	s.index = newKeyIndex(keyIDs)
	// Groups in the answer's order, and the keys pointed at them.
	order := make([]int32, len(s.groups))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int {
		x, y := &s.groups[i], &s.groups[j]
		if c := strings.Compare(x.HostID, y.HostID); c != 0 {
			return c
		}
		if c := strings.Compare(x.AppKey, y.AppKey); c != 0 {
			return c
		}
		if c := strings.Compare(x.AgentType, y.AgentType); c != 0 {
			return c
		}
		return strings.Compare(x.AgentVersion, y.AgentVersion)
	})
	rank := make([]int32, len(order))
	sorted := make([]usage.DayLease, len(order))
	for r, g := range order {
		rank[g] = int32(r)
		sorted[r] = s.groups[g]
	}
	s.groups = sorted
	for i := range s.keys {
		s.keys[i].group = rank[s.keys[i].group]
	}
	return s, nil
}

// HostNames maps the account's hosts whose name is not their id to their
// name now (usage.AnalyticsStore).
func (e engineStore) HostNames(ctx context.Context, accountID int64) (map[string]string, error) {
	return e.hostNames(ctx, accountID)
}

// hostNames maps the account's hosts whose name is not their id to their
// name: hosts are named in answers as they are named now.
func (e engineStore) hostNames(ctx context.Context, accountID int64) (map[string]string, error) {
	names := map[string]string{}
	err := e.s.eachRow(ctx, "SELECT host_id, name FROM hosts WHERE account_id = ? AND name <> host_id", []any{accountID},
		func() { clear(names) }, func(scan func(...any) error) error {
			var id, name string
			if err := scan(&id, &name); err != nil {
				return err
			}
			names[id] = name
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read host names: %w", translate(err))
	}
	return names, nil
}
