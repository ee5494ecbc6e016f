package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"

	"gorm.io/gorm"
)

// The statements a registration or a release runs many times over go to
// database/sql itself, in the Store's transaction or pool: GORM builds each
// statement anew by reflection and runs it through its callbacks, a fifth
// of a release's CPU. They are written with ? placeholders for scalar
// arguments, as for GORM; on PostgreSQL they become $n.

// rawExec runs a write.
func (s *Store) rawExec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.Statement.ConnPool.ExecContext(ctx, s.positional(query), args...)
}

// rawQuery runs a read (or a write with RETURNING); the caller closes the rows.
func (s *Store) rawQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.db.Statement.ConnPool.QueryContext(ctx, s.positional(query), args...)
}

// rawRows scans each row of a raw read with scan, and closes the rows.
func (s *Store) rawRows(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := s.rawQuery(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// rawOne scans the one row of a raw read with scan; no row is
// gorm.ErrRecordNotFound (translate makes it fault.ErrNotFound).
func rawOne[T any](ctx context.Context, s *Store, query string, args []any, scan func(*sql.Rows) (T, error)) (T, error) {
	var (
		v     T
		found bool
	)
	err := s.rawRows(ctx, query, args, func(rows *sql.Rows) (err error) {
		v, err = scan(rows)
		found = true
		return err
	})
	if err == nil && !found {
		err = gorm.ErrRecordNotFound
	}
	return v, err
}

// positionalQueries caches the PostgreSQL form of each raw statement.
var positionalQueries sync.Map // query → query with $n

// positional is query with PostgreSQL's $n placeholders on PostgreSQL.
func (s *Store) positional(query string) string {
	if s.dialect != Postgres {
		return query
	}
	if q, ok := positionalQueries.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	positionalQueries.Store(query, b.String())
	return b.String()
}

// valueRows is "(?, …), (?, …)": rows placeholder tuples of cols each.
func valueRows(rows, cols int) string {
	tuple := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(tuple) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	return b.String()
}

// maxRowsPerInsert bounds the rows of one multi-row INSERT (SQLite takes
// 32 766 parameters at most, PostgreSQL 65 535).
const maxRowsPerInsert = 1000

// chunks calls fn with consecutive parts of n rows, each at most
// maxRowsPerInsert long.
func chunks(n int, fn func(from, to int) error) error {
	for from := 0; from < n; from += maxRowsPerInsert {
		if err := fn(from, min(from+maxRowsPerInsert, n)); err != nil {
			return err
		}
	}
	return nil
}

// anys is ss as arguments.
func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
