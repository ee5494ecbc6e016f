package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/lcorp/licensing-controller/internal/httpapi"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// lockedBuffer is a log sink for handlers on several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestClientGoneIs499NotAnError: a request whose client went away is
// recorded as 499 at debug level, not as a server error.
func TestClientGoneIs499NotAnError(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		var logs lockedBuffer
		f := newFixtureDeps(t, st, func(d *httpapi.Deps) {
			d.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		})
		withLicence(t, f, 100)
		createAllocation(t, f, limits("team", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		gone, cancel := context.WithCancel(context.Background())
		cancel()
		// (A registration already queued is decided whatever the client
		// does: it is idempotent by agent id, and its retry is answered
		// ALREADY_LICENSED.)
		for _, r := range []req{admin("GET", allocations, nil), admin("GET", lv1+"/info", nil), admin("GET", lv1+"/audit", nil)} {
			hr := httptest.NewRequest(r.method, r.path, strings.NewReader(toJSON(t, r.body))).WithContext(gone)
			hr.Header.Set("Content-Type", "application/json")
			hr.SetBasicAuth(r.user, r.pass)
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, hr)
			if w.Code != httpapi.StatusClientClosedRequest {
				t.Errorf("%s %s after the client left: %d %s, want 499", r.method, r.path, w.Code, w.Body)
			}
		}
		if out := logs.String(); strings.Contains(out, `"level":"ERROR"`) || strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, `"status":499`) {
			t.Errorf("log of a client that left:\n%s", out)
		}
		if m := string(f.do(t, req{method: "GET", path: "/metrics"}).body); !strings.Contains(m, `status="499"`) {
			t.Error("the metrics do not count the 499")
		}
	})
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
