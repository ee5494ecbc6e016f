package store

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lcorp/licensing-controller/internal/usage"
)

func TestOpenSetRoundTrip(t *testing.T) {
	v, app, name := "24.1", int64(-7), "shop, \"EU\"\n"
	t0 := time.Date(2026, 11, 30, 23, 59, 59, 123456789, time.UTC)
	evs := []usage.EventRow{
		{At: t0, Kind: "GRANTED", PoolID: "p1", Package: "PREMIUM", AgentID: "a-1", AgentType: "APP_AGENT", AgentVersion: &v,
			HostID: "h1", HostName: "h1", AppID: &app, AppName: &name},
		{At: t0, Kind: "GRANTED", PoolID: "p2", Package: "PREMIUM", AgentID: "a-2", AgentType: "MACHINE_AGENT", HostID: "h2", HostName: "web-2"},
		{At: t0.Add(-90 * 24 * time.Hour), Kind: "GRANTED", PoolID: "p1", Package: "", AgentID: "ā/3 ☕", AgentType: "APP_AGENT",
			HostID: "h1", HostName: "h1", AppName: &name},
	}
	// Read back by grant time, then agent id, whatever the order saved.
	want := []usage.EventRow{evs[2], evs[0], evs[1]}
	b := encodeOpenSet(evs)
	got, err := decodeOpenSet(b, nil, map[string]string{"h2": "web-2"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
	got, err = decodeOpenSet(b, []string{"p2"}, nil)
	if err != nil || len(got) != 1 || got[0].AgentID != "a-2" || got[0].HostName != "h2" {
		t.Errorf("pool p2 only, no host names: %+v, %v", got, err)
	}
	if got, err := decodeOpenSet(encodeOpenSet(nil), nil, nil); err != nil || len(got) != 0 {
		t.Errorf("empty set: %v, %v", got, err)
	}
	// A damaged value is an error, never a panic or a wrong set.
	for n := range len(b) {
		if _, err := decodeOpenSet(b[:n], nil, nil); !errors.Is(err, errOpenSet) {
			t.Fatalf("cut to %d of %d bytes: %v, want errOpenSet", n, len(b), err)
		}
	}
}
