package store

import (
	"context"
	"testing"
	"time"
)

func TestRevisionCacheKeepsNothingItMayHaveMissed(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c := newRevisionCache()
	c.now = func() time.Time { return now }

	_, seq, _ := c.get(1)
	c.put(1, 5, seq)
	if _, _, ok := c.get(1); ok {
		t.Fatal("kept a revision while not listening")
	}

	c.reset(true)
	_, seq, _ = c.get(1)
	c.put(1, 5, seq)
	if rev, _, ok := c.get(1); !ok || rev != 5 {
		t.Fatalf("listening: got %d %t, want 5 kept", rev, ok)
	}

	// Read before a change, heard after it: not kept.
	_, seq, _ = c.get(2)
	c.heard("2")
	c.put(2, 9, seq)
	if _, _, ok := c.get(2); ok {
		t.Fatal("kept a revision read before a change that was heard since")
	}
	c.heard("account:1")
	if _, _, ok := c.get(1); ok {
		t.Fatal("an embedded-store change row did not forget the account")
	}

	_, seq, _ = c.get(3)
	c.put(3, 1, seq)
	now = now.Add(revisionTTL)
	if _, _, ok := c.get(3); ok {
		t.Fatal("served a revision older than its bound")
	}
	_, seq, _ = c.get(3)
	c.put(3, 1, seq)
	now = now.Add(-time.Minute) // the clock stepped back
	if _, _, ok := c.get(3); ok {
		t.Fatal("served a revision kept in the future")
	}

	_, seq, _ = c.get(4)
	c.put(4, 1, seq)
	c.reset(false)
	if _, _, ok := c.get(4); ok {
		t.Fatal("served a revision after the listener stopped")
	}
}

// A read the read replica may answer neither fills nor uses the cache: a
// lagging standby's revision kept there would hide a change already heard.
func TestReplicaReadsLeaveTheRevisionCacheAlone(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.conn(ctx).Exec("INSERT INTO accounts (id, name, global_id, access_key, created_at) VALUES (7, 'acme', 'g', 'k', ?)", time.Now()).Error; err != nil {
		t.Fatal(err)
	}
	s.revs.reset(true) // as ListenChanges does once it hears changes
	marked := context.WithValue(ctx, replicaKey{}, true)
	if _, err := s.Licensing().AccountRevision(marked, 7); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.revs.get(7); ok {
		t.Fatal("a replica-marked read filled the cache")
	}
	if _, err := s.Licensing().AccountRevision(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.revs.get(7); !ok {
		t.Fatal("a primary read did not fill the live cache")
	}
	s.revs.m[7] = cachedRevision{rev: 99, at: time.Now()} // a stale entry
	if rev, err := s.Licensing().AccountRevision(marked, 7); err != nil || rev == 99 {
		t.Fatalf("a replica-marked read used the cache: %d %v", rev, err)
	}
}
