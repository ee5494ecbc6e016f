package engine

import (
	"errors"
	"testing"
	"time"
)

// After a pass the reaper waits for the earliest expiry it saw, for at most
// a minute (or the TTL when shorter), and looks again at once after an
// error.
func TestReapDue(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name         string
		next         time.Time
		ttl          time.Duration
		err          error
		due          time.Time
		wantExpiring bool
	}{
		{"no leases", time.Time{}, 5 * time.Minute, nil, now.Add(time.Minute), false},
		{"a lease expires in 5 s", now.Add(5 * time.Second), 5 * time.Minute, nil, now.Add(5 * time.Second), true},
		{"a lease expires in exactly a minute", now.Add(time.Minute), 5 * time.Minute, nil, now.Add(time.Minute), true},
		{"the earliest expiry is 4 min away", now.Add(4 * time.Minute), 5 * time.Minute, nil, now.Add(time.Minute), false},
		{"a TTL under a minute bounds the wait", time.Time{}, 10 * time.Second, nil, now.Add(10 * time.Second), false},
		{"after an error", now.Add(5 * time.Second), 5 * time.Minute, errors.New("connection refused"), time.Time{}, false},
	} {
		due, expiring := reapDue(now, tc.next, tc.ttl, tc.err)
		if !due.Equal(tc.due) || expiring != tc.wantExpiring {
			t.Errorf("%s: due %v expiring %v, want %v %v", tc.name, due, expiring, tc.due, tc.wantExpiring)
		}
	}
}
