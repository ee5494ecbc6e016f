package store_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// listen runs s.ListenChanges until the returned stop is called, which
// waits for it to end; listen returns once the listener hears changes.
func listen(t *testing.T, s *store.Store) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	heard, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(done)
		s.ListenChanges(ctx, slog.New(slog.DiscardHandler), func(p string) {
			if p == "*" {
				once.Do(func() { close(heard) })
			}
		})
	}()
	select {
	case <-heard:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not start")
	}
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// bump moves the account's revision as a licence write does, in a
// transaction that commits unless rollback.
func bump(t *testing.T, s *store.Store, id int64, rollback bool) {
	t.Helper()
	errRollback := context.Canceled
	err := s.Licensing().InTx(context.Background(), func(tx licensing.Store) error {
		if _, err := tx.LockAccount(context.Background(), id); err != nil {
			return err
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if rollback && err == nil || !rollback && err != nil {
		t.Fatalf("bump (rollback %t): %v", rollback, err)
	}
}

func revision(t *testing.T, s *store.Store, id int64) int64 {
	t.Helper()
	rev, err := s.Licensing().AccountRevision(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// The revision /info asks is cached per process while that process
// listens for changes. Two processes on one database: each sees its own
// writes at once and the other's as soon as the change is announced (well
// before the cache's one-second bound), never a rolled-back one, and reads
// the database again as soon as it stops listening.
func TestCachedRevisionsFollowEveryWriter(t *testing.T) {
	for _, e := range []struct {
		name string
		opt  func(t *testing.T) store.Options
		// within is how soon the other process must see a change.
		within time.Duration
	}{
		{"sqlite", func(t *testing.T) store.Options { return store.Options{DataDir: t.TempDir()} }, store.CredentialPoll + 400*time.Millisecond},
		{"postgres", func(t *testing.T) store.Options { return store.Options{URL: pgtest.URL(t)} }, 400 * time.Millisecond},
	} {
		t.Run(e.name, func(t *testing.T) {
			opt := e.opt(t)
			writer := storetest.Open(t, opt)
			reader := storetest.Open(t, opt)
			const id = 7
			if err := writer.Auth().CreateAccount(context.Background(), &auth.Account{ID: id, Name: "acme", GlobalID: "g-7", AccessKey: "k-7", CreatedAt: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
			stop := listen(t, reader)
			r0 := revision(t, reader, id) // now cached

			bump(t, writer, id, false)
			start := time.Now()
			for revision(t, reader, id) != r0+1 {
				if time.Since(start) > e.within {
					t.Fatalf("the other process's write was not seen within %s", e.within)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("the other process's write was seen after %s", time.Since(start).Round(time.Millisecond))

			bump(t, reader, id, false)
			if got := revision(t, reader, id); got != r0+2 {
				t.Fatalf("own write: revision %d, want %d at once", got, r0+2)
			}
			bump(t, reader, id, true)
			if got := revision(t, reader, id); got != r0+2 {
				t.Fatalf("after a rolled-back write: revision %d, want %d", got, r0+2)
			}

			// Many readers while the other process writes: once the writes
			// end, every reader converges on the last revision.
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var reads atomic.Int64
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						if _, err := reader.Licensing().AccountRevision(ctx, id); err != nil && ctx.Err() == nil {
							t.Error(err)
							return
						}
						reads.Add(1)
					}
				}()
			}
			for range 20 {
				bump(t, writer, id, false)
			}
			start = time.Now()
			for revision(t, reader, id) != r0+22 {
				if time.Since(start) > e.within {
					t.Fatalf("after concurrent reads, the last write was not seen within %s", e.within)
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			wg.Wait()
			t.Logf("%d concurrent reads", reads.Load())

			// Not listening: no cache, every write is seen at once.
			stop()
			revision(t, reader, id)
			bump(t, writer, id, false)
			if got := revision(t, reader, id); got != r0+23 {
				t.Fatalf("not listening: revision %d, want %d at once", got, r0+23)
			}
		})
	}
}
