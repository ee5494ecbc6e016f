package store

import (
	"context"
	"strings"
	"testing"

	"github.com/lcorp/licensing-controller/internal/pgtest"
)

// Statements are prepared on the server once per connection (not parsed
// on every execution) and still planned with each execution's values, and
// JIT compiling is off; a URL that names any of these keeps its own.
func TestStatementsArePreparedAndPlannedPerExecution(t *testing.T) {
	ctx := context.Background()
	base := pgtest.URL(t)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	for _, tc := range []struct {
		name, url, planMode, jit string
		prepared                 bool
	}{
		{"default", base, "force_custom_plan", "off", true},
		{"the URL's exec mode", base + sep + "default_query_exec_mode=cache_describe", "auto", "off", false},
		{"the URL's plan mode", base + sep + "plan_cache_mode=auto", "auto", "off", true},
		{"the URL's JIT", base + sep + "jit=on", "force_custom_plan", "on", true},
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
			var jit string
			if err := conn.QueryRowContext(ctx, "SHOW jit").Scan(&jit); err != nil {
				t.Fatal(err)
			}
			if jit != tc.jit {
				t.Errorf("jit %s, want %s", jit, tc.jit)
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
