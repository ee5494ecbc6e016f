package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// throttle counts failed logins in the database, so that every replica
// sees the same counts (a per-replica count lets N replicas take N times
// the guesses), and nothing grows in memory. Failures are counted per
// principal at one client address and per address: someone guessing a
// principal's password locks out only their own address, never the
// principal's correct credential from elsewhere.
//
// An attempt is counted before its credential is checked, in one atomic
// upsert that returns the counts: hundreds of parallel guesses cannot all
// pass a check that reads the counts before any failure is written. A
// success takes its attempt back.
type throttle struct {
	store        Store
	window       time.Duration
	now          func() time.Time
	maxPrincipal int
	maxAddress   int
	writes       atomic.Int64
}

// pruneEvery is how many recorded attempts pass between two prunes of the
// windows that have ended.
const pruneEvery = 64

func subjectKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// keys returns the subjects of a principal ("" for none) at addr.
func (t *throttle) keys(principal, addr string) (principalKey, addrKey string) {
	addrKey = subjectKey("addr", addr)
	if principal != "" {
		principalKey = subjectKey("principal", principal, addr)
	}
	return principalKey, addrKey
}

// attempt counts an attempt of the principal ("" for none) at addr and
// returns ErrThrottled (with Retry-After) when that takes the principal at
// addr, or addr, over its limit in the current window.
func (t *throttle) attempt(ctx context.Context, principal, addr string) error {
	pk, ak := t.keys(principal, addr)
	subjects := []string{ak}
	if pk != "" {
		subjects = append(subjects, pk)
	}
	now := t.now()
	fs, err := t.store.RecordLoginFailure(ctx, subjects, now, now.Add(-t.window))
	if errors.Is(err, fault.ReadOnly) {
		// A standby takes reads: check the counts without adding to them.
		if fs, err = t.store.LoginFailures(ctx, subjects, now.Add(-t.window)); err == nil {
			for i := range fs {
				fs[i].Failures++ // as if this attempt were counted
			}
		}
	}
	if err != nil {
		return fmt.Errorf("count a login attempt: %w", err)
	}
	if t.writes.Add(1)%pruneEvery == 0 {
		if err := t.store.PruneLoginFailures(ctx, now.Add(-t.window)); err != nil {
			return fmt.Errorf("prune failed logins: %w", err)
		}
	}
	for _, f := range fs {
		limit := t.maxAddress
		if f.Subject == pk {
			limit = t.maxPrincipal
		}
		if f.Failures > int64(limit) {
			retry := int(math.Ceil(f.WindowStart.Add(t.window).Sub(now).Seconds()))
			return &fault.Error{Kind: fault.ErrThrottled, Code: "TOO_MANY_FAILED_LOGINS",
				Detail: "too many failed logins; try again later", RetryAfterSeconds: max(retry, 1)}
		}
	}
	return nil
}

// succeeded takes a successful attempt back: the principal at addr starts
// afresh, the address keeps its other failures.
func (t *throttle) succeeded(ctx context.Context, principal, addr string) error {
	pk, ak := t.keys(principal, addr)
	err := t.store.ClearLoginFailures(ctx, pk)
	if err == nil {
		err = t.store.ForgiveLoginFailure(ctx, ak)
	}
	if err != nil && !errors.Is(err, fault.ReadOnly) { // a standby counted nothing
		return fmt.Errorf("clear failed logins: %w", err)
	}
	return nil
}
