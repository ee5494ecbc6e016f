package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/auth"
)

// Read replicas: the read-only endpoints mark their request's context so
// that the store may serve its reads from the read replica, unless the
// caller wrote within the replica's lag window: a client reads its own
// writes, from the primary.

// ReadReplica routes the read-only endpoints' reads (Deps.ReadReplica).
type ReadReplica struct {
	// Mark returns ctx marked for the replica, when it is in use
	// (store.Store.ReadReplica).
	Mark func(context.Context) context.Context
	// Window is how long after a write its author reads the primary: the
	// replica's largest lag plus the time between two of its checks.
	Window time.Duration
}

// writers remembers who wrote lately, per instance.
type writers struct {
	mu     sync.Mutex
	last   map[string]time.Time
	window time.Duration
}

// maxWriters bounds the writers remembered between two sweeps.
const maxWriters = 100000

func principalKey(p auth.Principal) string {
	return strconv.FormatInt(p.AccountID, 10) + "/" + string(p.Kind) + "/" + p.Name
}

func (w *writers) wrote(key string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) >= maxWriters {
		for k, t := range w.last {
			if at.Sub(t) >= w.window {
				delete(w.last, k)
			}
		}
		if len(w.last) >= maxWriters { // all recent: the window is shortened, never the guarantee widened
			clear(w.last)
		}
	}
	w.last[key] = at
}

func (w *writers) recent(key string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.last[key]
	if ok && now.Sub(t) >= w.window {
		delete(w.last, key)
		return false
	}
	return ok
}

// noteWrites, after authenticate, remembers the principal of a request
// that may have written (any method but GET, HEAD and OPTIONS).
func (a *API) noteWrites(c *gin.Context) {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		c.Next()
		return
	}
	if a.replica.Mark == nil {
		c.Next()
		return
	}
	key := principalKey(principal(c))
	// Before and after: a read racing the write also goes to the primary.
	a.writers.wrote(key, time.Now())
	c.Next()
	a.writers.wrote(key, time.Now())
}

// replicaRead lets the store serve the request's reads from the read
// replica, unless its principal wrote lately.
func (a *API) replicaRead(c *gin.Context) {
	if a.replica.Mark != nil && !a.writers.recent(principalKey(principal(c)), time.Now()) {
		c.Request = c.Request.WithContext(a.replica.Mark(c.Request.Context()))
	}
	c.Next()
}
