package store

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/usage"
)

// Events read from PostgreSQL's raw values are those rows.Scan makes, and
// the raw decoder is the one used: times to the microsecond and before
// 2000 (negative on the wire), NULL and empty strings, NULL and negative
// application ids, non-ASCII text.
func TestEventRowsDecodedRawAsScanned(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{URL: pgtest.URL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	v, app, neg, name, empty := "24.1", int64(42), int64(-7), "shop, \"EU\" ☕", ""
	t0 := time.Date(2026, 11, 30, 23, 59, 59, 123456000, time.UTC)
	evs := []engine.Event{
		{At: t0, AccountID: 1, Kind: "GRANTED", PoolKind: "ALLOCATION", PoolID: "p1", Package: "PREMIUM", Units: 4, AgentID: "a-1",
			AgentType: "APP_AGENT", AgentVersion: &v, HostID: "h1", AppID: &app, AppName: &name},
		{At: t0.Add(time.Second), AccountID: 1, Kind: "REFUSED", PoolKind: "ALLOCATION", PoolID: "p1", Package: "PREMIUM", AgentID: "ā/3",
			AgentType: "APP_AGENT", AgentVersion: &empty, HostID: "h1", AppID: &neg, AppName: &empty, Reason: "NO_MORE_UNITS"},
		{At: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), AccountID: 1, Kind: "RELEASED", AgentID: "a-2", AgentType: "MACHINE_AGENT", HostID: "h2"},
		{At: time.Date(1969, 7, 20, 20, 17, 40, 500000000, time.UTC), AccountID: 1, Kind: "EXPIRED", AgentID: "a-3"},
	}
	if err := s.Engine().(engineStore).AddEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	query := "SELECT " + analyticsColumns + ` FROM usage_events ev LEFT JOIN hosts h ON h.account_id = ev.account_id AND h.host_id = ev.host_id
		WHERE ev.account_id = ? ORDER BY ev.at, ev.id`
	read := func(raw bool) []usage.EventRow {
		var out []usage.EventRow
		var dec eventDecoder
		decoded := 0
		var rawFn func(fds []pgconn.FieldDescription, vals [][]byte) error
		if raw {
			rawFn = func(fds []pgconn.FieldDescription, vals [][]byte) error {
				var r usage.EventRow
				if err := dec.decode(fds, vals, &r); err != nil {
					return err
				}
				decoded++
				out = append(out, r)
				return nil
			}
		}
		err := s.eachRawRow(ctx, query, []any{1}, func() { out = nil }, rawFn, func(scan func(...any) error) error {
			var r usage.EventRow
			if err := scan(&r.At, &r.Kind, &r.PoolID, &r.Package, &r.Units, &r.AgentID, &r.AgentType, &r.AgentVersion,
				&r.HostID, &r.HostName, &r.AppID, &r.AppName, &r.Reason); err != nil {
				return err
			}
			r.At = r.At.UTC()
			out = append(out, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if raw && decoded != len(evs) {
			t.Fatalf("%d of %d rows decoded raw: the columns were scanned instead", decoded, len(evs))
		}
		return out
	}
	scanned, raw := read(false), read(true)
	if len(scanned) != len(evs) {
		t.Fatalf("%d rows scanned, want %d", len(scanned), len(evs))
	}
	if diff := cmp.Diff(scanned, raw); diff != "" {
		t.Errorf("raw (-scanned +raw):\n%s", diff)
	}
	if !raw[0].At.Equal(evs[3].At) || !raw[3].At.Equal(t0.Add(time.Second)) {
		t.Errorf("times %v, %v; want %v, %v", raw[0].At, raw[3].At, evs[3].At, t0.Add(time.Second))
	}
}
