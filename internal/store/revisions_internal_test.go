package store

import (
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
