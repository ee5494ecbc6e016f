package auth

import (
	"math"
	"sync"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// throttle counts failed logins per key in fixed windows. It is bounded:
// at most maxKeys keys are tracked, the oldest window is dropped first.
type throttle struct {
	mu      sync.Mutex
	window  time.Duration
	now     func() time.Time
	entries map[string]*failures
}

type failures struct {
	n     int
	start time.Time
}

const maxThrottleKeys = 100_000

func newThrottle(window time.Duration, now func() time.Time) *throttle {
	return &throttle{window: window, now: now, entries: make(map[string]*failures)}
}

// check returns ErrThrottled when key a has max failures (or key b has maxB)
// in the current window.
func (t *throttle) check(a string, maxA int, b string, maxB int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, k := range [...]struct {
		key string
		max int
	}{{a, maxA}, {b, maxB}} {
		f, ok := t.entries[k.key]
		if !ok {
			continue
		}
		if now.Sub(f.start) >= t.window {
			delete(t.entries, k.key)
			continue
		}
		if f.n >= k.max {
			retry := int(math.Ceil(f.start.Add(t.window).Sub(now).Seconds()))
			return &fault.Error{Kind: fault.ErrThrottled, Code: "TOO_MANY_FAILED_LOGINS",
				Detail: "too many failed logins; try again later", RetryAfterSeconds: max(retry, 1)}
		}
	}
	return nil
}

func (t *throttle) fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.entries) >= maxThrottleKeys {
		t.prune(now)
	}
	for _, k := range keys {
		f, ok := t.entries[k]
		if !ok || now.Sub(f.start) >= t.window {
			f = &failures{start: now}
			t.entries[k] = f
		}
		f.n++
	}
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

// prune drops expired windows, then, if still full, everything: losing
// counts is better than growing without bound.
func (t *throttle) prune(now time.Time) {
	for k, f := range t.entries {
		if now.Sub(f.start) >= t.window {
			delete(t.entries, k)
		}
	}
	if len(t.entries) >= maxThrottleKeys {
		clear(t.entries)
	}
}
