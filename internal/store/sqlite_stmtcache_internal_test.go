package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// openCachedSQLite is a one-connection pool over the statement cache, as
// the embedded store opens it.
func openCachedSQLite(t *testing.T) *sql.DB {
	t.Helper()
	conn, err := newSQLiteConnector(sqliteDSN(filepath.Join(t.TempDir(), "cache.db")))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// cacheOf runs fn on the pool's one connection's cache.
func cacheOf(t *testing.T, db *sql.DB, fn func(c *cachingConn)) {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		c, ok := dc.(*cachingConn)
		if !ok {
			return fmt.Errorf("driver connection is %T", dc)
		}
		fn(c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestSQLiteStatementCacheReusesPrograms(t *testing.T) {
	db := openCachedSQLite(t)
	var first *cachedStmt
	for i := range 5 {
		if _, err := db.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
		cacheOf(t, db, func(c *cachingConn) {
			cs := c.byQuery[`INSERT INTO t (id, v) VALUES (?, ?)`].Value.(*cachedStmt)
			if first == nil {
				first = cs
			} else if cs != first {
				t.Fatalf("insert %d compiled its statement again", i)
			}
		})
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("count: %d, %v", n, err)
	}
}

// Within a transaction a query's rows may be open while the same query runs
// again: each must read its own results.
func TestSQLiteStatementCacheNestedSameQuery(t *testing.T) {
	db := openCachedSQLite(t)
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	const q = `SELECT v FROM t WHERE id >= ? ORDER BY id`
	outer, err := tx.Query(q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var v string
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		var inner string
		if err := tx.QueryRow(q, 2).Scan(&inner); err != nil || inner != "v2" {
			t.Fatalf("inner query: %q, %v", inner, err)
		}
		got = append(got, v)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[v0 v1 v2]" {
		t.Fatalf("outer rows: %v, want [v0 v1 v2]", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	cacheOf(t, db, func(c *cachingConn) {
		if cs := c.byQuery[q].Value.(*cachedStmt); cs.busy {
			t.Fatal("the query's statement is still marked busy after its rows closed")
		}
	})
}

// More distinct statements than the cache holds: the oldest are closed, and
// each still answers right when it comes back.
func TestSQLiteStatementCacheEvicts(t *testing.T) {
	db := openCachedSQLite(t)
	if _, err := db.Exec(`INSERT INTO t (id, v) VALUES (1, 'one')`); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		for i := range stmtCacheSize + 20 {
			var v string
			if err := db.QueryRow(fmt.Sprintf(`SELECT v FROM t WHERE id = ? AND %d = %d`, i, i), 1).Scan(&v); err != nil || v != "one" {
				t.Fatalf("round %d statement %d: %q, %v", round, i, v, err)
			}
		}
	}
	cacheOf(t, db, func(c *cachingConn) {
		if c.lru.Len() != stmtCacheSize || len(c.byQuery) != stmtCacheSize {
			t.Fatalf("cache holds %d (%d by query), want %d", c.lru.Len(), len(c.byQuery), stmtCacheSize)
		}
	})
}

// A constraint violation is the statement's answer, not a broken program:
// the statement stays and the next execution succeeds.
func TestSQLiteStatementCacheAfterAConstraintError(t *testing.T) {
	db := openCachedSQLite(t)
	const ins = `INSERT INTO t (id, v) VALUES (?, ?)`
	if _, err := db.Exec(ins, 1, "same"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ins, 2, "same"); err == nil {
		t.Fatal("a duplicate value was inserted")
	}
	if _, err := db.Exec(ins, 3, "other"); err != nil {
		t.Fatalf("the statement after a constraint error: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows: %d, %v; want 2", n, err)
	}
	cacheOf(t, db, func(c *cachingConn) {
		if _, ok := c.byQuery[ins]; !ok {
			t.Fatal("the insert's statement was dropped after a constraint error")
		}
	})
}
