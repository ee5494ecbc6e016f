// Package storetest runs tests against every store engine: the embedded
// SQLite always, PostgreSQL when the harness can start one (CI requires it).
package storetest

import (
	"context"
	"testing"

	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/store"
)

// Engine opens a fresh, migrated store of one kind for a test.
type Engine struct {
	Name string
	Open func(t testing.TB) *store.Store
}

// Engines returns the embedded engine and the PostgreSQL one.
func Engines() []Engine {
	return []Engine{
		{Name: "sqlite", Open: func(t testing.TB) *store.Store {
			t.Helper()
			return Open(t, store.Options{DataDir: t.TempDir()})
		}},
		{Name: "postgres", Open: func(t testing.TB) *store.Store {
			t.Helper()
			return Open(t, store.Options{URL: pgtest.URL(t)})
		}},
	}
}

// ForEach runs fn as a subtest per engine, each with its own fresh store.
func ForEach(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(e.Name, func(t *testing.T) {
			fn(t, e.Open(t))
		})
	}
}

// Open opens and migrates a store that is closed when the test ends.
func Open(t testing.TB, opt store.Options) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, opt)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}
