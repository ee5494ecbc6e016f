package store

import (
	"context"
	"strings"
	"testing"

	"github.com/lcorp/licensing-controller/internal/pgtest"
)

// Statements are prepared on the server once per connection (not parsed
// on every execution) and still planned with each execution's values; a
// URL that names either setting keeps its own.
func TestStatementsArePreparedAndPlannedPerExecution(t *testing.T) {
	ctx := context.Background()
	base := pgtest.URL(t)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	for _, tc := range []struct {
		name, url, planMode string
		prepared            bool
	}{
		{"default", base, "force_custom_plan", true},
		{"the URL's exec mode", base + sep + "default_query_exec_mode=cache_describe", "auto", false},
		{"the URL's plan mode", base + sep + "plan_cache_mode=auto", "auto", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, Options{URL: tc.url})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			db, err := s.DB()
			if err != nil {
				t.Fatal(err)
			}
			conn, err := db.Conn(ctx) // one connection for all three
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var mode string
			if err := conn.QueryRowContext(ctx, "SHOW plan_cache_mode").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != tc.planMode {
				t.Errorf("plan_cache_mode %s, want %s", mode, tc.planMode)
			}
			for range 2 {
				var n int
				if err := conn.QueryRowContext(ctx, "SELECT $1::int + 1", 41).Scan(&n); err != nil || n != 42 {
					t.Fatalf("%d %v", n, err)
				}
			}
			var prepared int
			if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int + 1'").Scan(&prepared); err != nil {
				t.Fatal(err)
			}
			if (prepared == 1) != tc.prepared {
				t.Errorf("%d prepared statements of the query, want prepared: %v", prepared, tc.prepared)
			}
		})
	}
}
