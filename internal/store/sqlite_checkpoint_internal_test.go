package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A request's commit no longer checkpoints at SQLite's default 1 000 WAL
// pages; the background checkpointer has to copy the pages back, and the
// WAL restarts from its beginning instead of growing.
func TestSQLiteWALIsCheckpointedInTheBackground(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(context.Background(), Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db := st.db
	if err := db.Exec(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)`).Error; err != nil {
		t.Fatal(err)
	}
	page := strings.Repeat("x", 3000)
	const rows = 2000 // a page each: more than SQLite's default threshold, less than the writer's backstop
	for i := range rows {
		if err := db.Exec(`INSERT INTO blobs (id, b) VALUES (?, ?)`, i, page).Error; err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "licensing.db")
	deadline := time.Now().Add(5 * time.Second)
	for {
		fi, err := os.Stat(main)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= rows*3000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file holds %d bytes 5 s after %d rows of 3 000 bytes were written: the WAL was not checkpointed", fi.Size(), rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Written again, the WAL is reused from its start rather than grown.
	wal, err := os.Stat(main + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		for i := range rows {
			if err := db.Exec(`UPDATE blobs SET b = ? WHERE id = ?`, page[round:], i).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(3 * checkpointEvery)
	after, err := os.Stat(main + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if limit := 2*wal.Size() + 8<<20; after.Size() > limit {
		t.Fatalf("the WAL grew from %d to %d bytes over 3 rounds of rewriting the rows (limit %d)", wal.Size(), after.Size(), limit)
	}
}
