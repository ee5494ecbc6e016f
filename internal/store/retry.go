package store

import (
	"context"
	"database/sql"
	"strings"

	"gorm.io/gorm"
)

// retryPool is the PostgreSQL connection pool as GORM sees it. A read
// outside a transaction that fails because the server closed the
// connection under it (a restart, a failover) runs once more on a fresh
// connection, so that a database restart costs readers nothing. Writes are
// never run twice here: whether a lost one committed is unknown, and only
// callers that know an operation is idempotent (registrations) retry it.
//
// With a read replica, the reads of a context marked by MayReadReplica go
// to it while it is fresh enough, and to the primary when it fails.
type retryPool struct {
	db  *sql.DB
	rep *replica
}

var (
	_ gorm.ConnPool       = retryPool{}
	_ gorm.TxBeginner     = retryPool{}
	_ gorm.GetDBConnector = retryPool{}
)

func (p retryPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

func (p retryPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.db.PrepareContext(ctx, query)
}

func (p retryPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.db.ExecContext(ctx, query, args...)
}

func (p retryPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if p.rep.use(ctx, query) {
		rows, err := p.rep.db.QueryContext(ctx, query, args...)
		if !p.rep.failed(ctx, err) {
			return rows, err
		}
	}
	rows, err := p.db.QueryContext(ctx, query, args...)
	if err != nil && isRead(query) && isConnLost(err) && ctx.Err() == nil {
		return p.db.QueryContext(ctx, query, args...)
	}
	return rows, err
}

func (p retryPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if p.rep.use(ctx, query) {
		row := p.rep.db.QueryRowContext(ctx, query, args...)
		if !p.rep.failed(ctx, row.Err()) {
			return row
		}
	}
	row := p.db.QueryRowContext(ctx, query, args...)
	if err := row.Err(); err != nil && isRead(query) && isConnLost(err) && ctx.Err() == nil {
		return p.db.QueryRowContext(ctx, query, args...)
	}
	return row
}

// BeginTx starts a transaction; nothing has run yet when BEGIN fails, so
// it is safe to try once more.
func (p retryPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil && isConnLost(err) && ctx.Err() == nil {
		return p.db.BeginTx(ctx, opts)
	}
	return tx, err
}

// isRead reports a statement that only reads (GORM sends INSERT ...
// RETURNING through QueryContext too): a SELECT, or a WITH that names no
// INSERT, UPDATE or DELETE (a word that any other use, a column or a
// string, only makes count as a write: never the other way round).
func isRead(query string) bool {
	q := strings.TrimSpace(query)
	switch {
	case len(q) >= 6 && strings.EqualFold(q[:6], "SELECT"):
		return true
	case len(q) >= 4 && strings.EqualFold(q[:4], "WITH"):
		u := strings.ToUpper(q)
		return !strings.Contains(u, "INSERT") && !strings.Contains(u, "UPDATE") && !strings.Contains(u, "DELETE")
	}
	return false
}

// pooled returns the connection pool behind a Store that is not bound to
// a transaction.
func (s *Store) pooled() (*sql.DB, bool) {
	switch p := s.db.Statement.ConnPool.(type) {
	case *sql.DB:
		return p, true
	case retryPool:
		return p.db, true
	}
	return nil, false
}

// isPool reports a Store that is not bound to a transaction.
func (s *Store) isPool() bool {
	_, ok := s.pooled()
	return ok
}
