package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// throttle counts failed logins in the database, so that every replica
// sees the same counts (a per-replica count lets N replicas take N times
// the guesses), and nothing grows in memory. Failures are counted per
// principal at one client address and per address: someone guessing a
// principal's password locks out only their own address, never the
// principal's correct credential from elsewhere. The checks of one
// principal at one address run one at a time (shardLocks), so parallel
// guesses cannot all pass the count before the first failure is written.
type throttle struct {
	store        Store
	window       time.Duration
	now          func() time.Time
	maxPrincipal int
	maxAddress   int
	writes       atomic.Int64
}

// pruneEvery is how many recorded failures pass between two prunes of the
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

// check returns ErrThrottled (with Retry-After) when the principal at addr,
// or addr, is over its limit in the current window; failed tells whether
// the principal at addr has failures to reset after a success.
func (t *throttle) check(ctx context.Context, principal, addr string) (failed bool, err error) {
	pk, ak := t.keys(principal, addr)
	subjects := []string{ak}
	if pk != "" {
		subjects = append(subjects, pk)
	}
	now := t.now()
	fs, err := t.store.LoginFailures(ctx, subjects, now.Add(-t.window))
	if err != nil {
		return false, fmt.Errorf("read failed logins: %w", err)
	}
	for _, f := range fs {
		limit := t.maxAddress
		if f.Subject == pk {
			limit, failed = t.maxPrincipal, true
		}
		if f.Failures >= int64(limit) {
			retry := int(math.Ceil(f.WindowStart.Add(t.window).Sub(now).Seconds()))
			return failed, &fault.Error{Kind: fault.ErrThrottled, Code: "TOO_MANY_FAILED_LOGINS",
				Detail: "too many failed logins; try again later", RetryAfterSeconds: max(retry, 1)}
		}
	}
	return failed, nil
}

// fail records a failed login of the principal ("" for none) at addr. A
// read-only database (a standby) records nothing.
func (t *throttle) fail(ctx context.Context, principal, addr string) error {
	pk, ak := t.keys(principal, addr)
	subjects := []string{ak}
	if pk != "" {
		subjects = append(subjects, pk)
	}
	now := t.now()
	if _, err := t.store.RecordLoginFailure(ctx, subjects, now, now.Add(-t.window)); err != nil && !errors.Is(err, fault.ReadOnly) {
		return fmt.Errorf("record failed login: %w", err)
	}
	if t.writes.Add(1)%pruneEvery == 0 {
		if err := t.store.PruneLoginFailures(ctx, now.Add(-t.window)); err != nil && !errors.Is(err, fault.ReadOnly) {
			return fmt.Errorf("prune failed logins: %w", err)
		}
	}
	return nil
}

// reset forgets the failures of the principal at addr after a success.
func (t *throttle) reset(ctx context.Context, principal, addr string) error {
	pk, _ := t.keys(principal, addr)
	if err := t.store.ClearLoginFailures(ctx, pk); err != nil && !errors.Is(err, fault.ReadOnly) {
		return fmt.Errorf("clear failed logins: %w", err)
	}
	return nil
}

// lockShards serialise the credential checks of one principal at one
// address (and, rarely, of others that share their shard) within a
// replica: parallel guesses are then checked one after the other, each
// seeing the failures before it, so a burst cannot outrun the count; and
// parallel correct logins wait for the first, which fills the cache.
const lockShards = 256

type shardLocks [lockShards]sync.Mutex

func (l *shardLocks) lock(parts ...string) func() {
	h := fnv.New32a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	m := &l[h.Sum32()%lockShards]
	m.Lock()
	return m.Unlock
}
