package store

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// revisionCache holds accounts' revisions (the number /info asks on every
// call) while the store hears of every change of them:
//   - this process's own writes forget the account when they commit
//     (Store.afterCommit), so a client reads its own write at once;
//   - other processes' writes arrive through ListenChanges: on PostgreSQL
//     the accounts trigger's NOTIFY (migration 27), on the embedded store
//     the trigger's row in credential_changes, polled every CredentialPoll.
//
// It is live only while ListenChanges is connected: before it starts, while
// it is reconnecting and after it stops, every read goes to the database.
// An entry also expires after revisionTTL, which bounds how long a lost
// notification (a half-open listening connection) can leave it stale.
type revisionCache struct {
	mu   sync.Mutex
	live bool
	// seq moves with every forget: a revision read from the database
	// before a change committed is not kept after the change was heard.
	seq uint64
	m   map[int64]cachedRevision
	now func() time.Time
}

type cachedRevision struct {
	rev int64
	at  time.Time
}

const (
	// revisionTTL bounds an entry's age.
	revisionTTL = time.Second
	// maxCachedRevisions bounds the map; at the bound it starts afresh.
	maxCachedRevisions = 100_000
	// accountChangePrefix marks an embedded-store change row of an
	// account's revision (the trigger of migration 27).
	accountChangePrefix = "account:"
)

func newRevisionCache() *revisionCache {
	return &revisionCache{m: map[int64]cachedRevision{}, now: time.Now}
}

// get returns the account's cached revision (ok), or the sequence number
// to hand to put with the revision read instead.
func (c *revisionCache) get(id int64) (rev int64, seq uint64, ok bool) {
	if c == nil {
		return 0, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, hit := c.m[id]; c.live && hit {
		if d := c.now().Sub(e.at); d >= 0 && d < revisionTTL {
			return e.rev, c.seq, true
		}
		delete(c.m, id)
	}
	return 0, c.seq, false
}

// put keeps a revision read from the database after get returned seq,
// unless a change was heard in between.
func (c *revisionCache) put(id, rev int64, seq uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || seq != c.seq {
		return
	}
	if len(c.m) >= maxCachedRevisions {
		clear(c.m)
	}
	c.m[id] = cachedRevision{rev: rev, at: c.now()}
}

// forget drops the account's revision: it changed.
func (c *revisionCache) forget(id int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	delete(c.m, id)
}

// reset drops every revision and says whether the cache may keep new ones:
// true once the listener hears every change, false when it may have missed
// some.
func (c *revisionCache) reset(live bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.live = live
	clear(c.m)
}

// heard applies one change notification's payload: an account id (the
// PostgreSQL channel) or an embedded-store change row.
func (c *revisionCache) heard(payload string) {
	if c == nil {
		return
	}
	if id, err := strconv.ParseInt(strings.TrimPrefix(payload, accountChangePrefix), 10, 64); err == nil {
		c.forget(id)
		return
	}
	c.reset(c.isLive()) // not an id: forget them all
}

func (c *revisionCache) isLive() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}
