package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"

	moderncsqlite "modernc.org/sqlite"
)

// stmtCacheSize bounds the compiled statements each embedded-store
// connection keeps. The engine's hot paths use a few dozen distinct
// statements; lists with IN (...) of varying length add more, which the
// least recently used order evicts.
const stmtCacheSize = 256

// sqliteConnector opens the embedded store's connections, each with a cache
// of compiled statements. SQLite compiles a statement's text into a program
// on every execution unless the program is kept: for a single heartbeat that
// compiling was a quarter of the service's CPU. database/sql keeps no
// programs of its own for ExecContext and QueryContext on a pool, and GORM's
// PrepareStmt mode prepares afresh in every transaction; caching in the
// connection covers both, on the one connection the store has.
// modernc.org/sqlite documents this wrapping of its connector (NewConnector).
type sqliteConnector struct {
	driver.Connector
}

func newSQLiteConnector(dsn string) (driver.Connector, error) {
	base, err := moderncsqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite connector: %w", err)
	}
	return sqliteConnector{base}, nil
}

func (c sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	for _, need := range []bool{
		implements[driver.ConnBeginTx](conn), implements[driver.ConnPrepareContext](conn),
		implements[driver.ExecerContext](conn), implements[driver.QueryerContext](conn),
		implements[driver.Pinger](conn), implements[driver.SessionResetter](conn), implements[driver.Validator](conn),
	} {
		if !need {
			_ = conn.Close()
			return nil, fmt.Errorf("sqlite connector: the driver's connection %T lacks an interface the statement cache forwards", conn)
		}
	}
	return &cachingConn{Conn: conn, lru: list.New(), byQuery: map[string]*list.Element{}}, nil
}

func implements[T any](v any) bool { _, ok := v.(T); return ok }

// cachingConn is a connection that keeps the compiled statements of its
// last stmtCacheSize distinct queries. database/sql never uses a connection
// from two goroutines at once, but within a transaction a query's rows may
// still be open when the next statement runs: a statement busy that way is
// not shared, the next one with the same text gets a fresh one.
type cachingConn struct {
	driver.Conn
	lru     *list.List // of *cachedStmt, most recently used first
	byQuery map[string]*list.Element
}

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	busy  bool
	// evicted: out of the cache while busy; closed once it is free.
	evicted bool
}

// Unwrap is the driver's connection (modernc.org/sqlite's Limit looks
// through wrappers with it).
func (c *cachingConn) Unwrap() driver.Conn { return c.Conn }

// take returns a free statement for query, compiled now or earlier.
func (c *cachingConn) take(ctx context.Context, query string) (*cachedStmt, error) {
	if e, ok := c.byQuery[query]; ok {
		cs := e.Value.(*cachedStmt)
		if !cs.busy {
			c.lru.MoveToFront(e)
			cs.busy = true
			return cs, nil
		}
	}
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{query: query, stmt: st, busy: true}
	if _, ok := c.byQuery[query]; ok {
		cs.evicted = true // the cached one is busy: this one is not kept
		return cs, nil
	}
	c.byQuery[query] = c.lru.PushFront(cs)
	for c.lru.Len() > stmtCacheSize {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.byQuery, old.query)
		if old.busy {
			old.evicted = true
		} else if err := old.stmt.Close(); err != nil {
			return nil, fmt.Errorf("close an evicted statement: %w", err)
		}
	}
	return cs, nil
}

// give marks a statement free again. One that failed is dropped: its
// program is discarded rather than trusted to be reusable.
func (c *cachingConn) give(cs *cachedStmt, failed bool) error {
	cs.busy = false
	if failed && !cs.evicted {
		if e, ok := c.byQuery[cs.query]; ok && e.Value == cs {
			c.lru.Remove(e)
			delete(c.byQuery, cs.query)
		}
		cs.evicted = true
	}
	if cs.evicted {
		return cs.stmt.Close()
	}
	return nil
}

// isStatementError tells an error of the statement (a constraint, a bad
// argument) from one of the connection: only the latter makes the
// statement's program suspect.
func isStatementError(err error) bool {
	var se *moderncsqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 19 // SQLITE_CONSTRAINT
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	res, err := cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	if gerr := c.give(cs, err != nil && !isStatementError(err)); err == nil && gerr != nil {
		return nil, gerr
	}
	return res, err
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		_ = c.give(cs, !isStatementError(err))
		return nil, err
	}
	return &cachedRows{Rows: rows, conn: c, stmt: cs}, nil
}

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	var errs []error
	for e := c.lru.Front(); e != nil; e = e.Next() {
		if err := e.Value.(*cachedStmt).stmt.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.lru.Init()
	clear(c.byQuery)
	errs = append(errs, c.Conn.Close())
	return errors.Join(errs...)
}

// The interfaces the driver's connection has, forwarded.

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachingConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *cachingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *cachingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

// cachedRows frees its statement when closed, and forwards the column type
// interfaces of the driver's rows (GORM and the driver's time conversion
// use them).
type cachedRows struct {
	driver.Rows
	conn   *cachingConn
	stmt   *cachedStmt
	closed bool
}

func (r *cachedRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close()
	return errors.Join(err, r.conn.give(r.stmt, err != nil))
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
