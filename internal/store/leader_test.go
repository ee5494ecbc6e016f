package store_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// A leader that stops, whichever way its leadership ends, leaves the lock
// free for another instance: the lock must not stay behind on a pooled
// connection of the instance that led.
func TestLeadershipIsFreeAfterTheLeaderStops(t *testing.T) {
	url := pgtest.URL(t)
	st1, st2 := storetest.Open(t, store.Options{URL: url}), storetest.Open(t, store.Options{URL: url})
	const key = 0x6c65_6164 // "lead"
	quiet := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		name string
		job  func(ctx context.Context)
	}{
		// The job returns at once when told to stop.
		{"prompt job", func(ctx context.Context) { <-ctx.Done() }},
		// The job takes a while to stop, so the leader's connection
		// check runs with the stopped context and fails.
		{"slow job", func(ctx context.Context) { <-ctx.Done(); time.Sleep(100 * time.Millisecond) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var led atomic.Bool
			ctx, cancel := context.WithCancel(context.Background())
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				st1.Lead(ctx, key, 5*time.Millisecond, quiet, func(ctx context.Context) { led.Store(true); c.job(ctx) })
			}()
			for deadline := time.Now().Add(5 * time.Second); !led.Load() && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			if !led.Load() {
				t.Fatal("instance 1 did not lead")
			}
			cancel()
			<-stopped

			var other atomic.Bool
			ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel2()
			st2.Lead(ctx2, key, 10*time.Millisecond, quiet, func(ctx context.Context) { other.Store(true); cancel2() })
			if !other.Load() {
				t.Error("instance 2 could not lead within 2 s after instance 1 stopped: the lock stayed held")
			}
		})
	}
}
