package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/pgtest"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

// hookReceiver is a real local HTTP listener that records deliveries.
type hookReceiver struct {
	srv  *http.Server
	addr string
	mu   sync.Mutex
	got  []hookDelivery
}

type hookDelivery struct {
	id, typ, ts, sig string
	body             []byte
}

// listenHooks serves a receiver on addr ("127.0.0.1:0" for any port).
func listenHooks(t *testing.T, addr string) *hookReceiver {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &hookReceiver{addr: l.Addr().String()}
	rc.srv = &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, hookDelivery{id: r.Header.Get("X-LC-Delivery"), typ: r.Header.Get("X-LC-Event"),
			ts: r.Header.Get("X-LC-Timestamp"), sig: r.Header.Get("X-LC-Signature"), body: body})
		rc.mu.Unlock()
	})}
	go func() { _ = rc.srv.Serve(l) }()
	t.Cleanup(func() { _ = rc.srv.Close() })
	return rc
}

func (rc *hookReceiver) ofType(typ string) []hookDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hookDelivery
	for _, d := range rc.got {
		if d.typ == typ {
			out = append(out, d)
		}
	}
	return out
}

func post(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest("POST", url, rd)
	req.SetBasicAuth("admin@customer1", "admin-password")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// TestWebhookOutboxSurvivesRestart: an event for a receiver that is down
// is retried, survives a restart of the service, and arrives (signed)
// once the receiver is up.
func TestWebhookOutboxSurvivesRestart(t *testing.T) {
	for name, vars := range engines(t) {
		t.Run(name, func(t *testing.T) {
			if name == "postgres" {
				vars["LC_DATABASE_URL"] = pgtest.URL(t)
			}
			vars["LC_BOOTSTRAP_ADMIN_PASSWORD"] = "admin-password"
			// A port nobody listens on, for now.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			down := l.Addr().String()
			l.Close()

			base, stop := server(t, vars)
			hooks := base + "/controller/licensing/v1/account/1/webhooks"
			code, hook := post(t, hooks, map[string]any{"url": "http://" + down + "/hook", "events": []string{"lease.preempted"}})
			if code != 201 {
				t.Fatalf("create webhook: %d %v", code, hook)
			}
			id, secret := hook["id"].(string), hook["secret"].(string)
			if code, m := post(t, hooks+"/"+id+"/ping", nil); code != 202 {
				t.Fatalf("ping: %d %v", code, m)
			}
			// The first attempt fails: nobody listens.
			if !eventually(15*time.Second, func() bool {
				_, m := get(t, hooks+"/"+id+"/deliveries", "admin@customer1", "admin-password")
				ds, _ := m["data"].([]any)
				return len(ds) == 1 && ds[0].(map[string]any)["attemptCount"].(float64) >= 1
			}) {
				t.Fatal("no failed attempt within 15 s")
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			rc := listenHooks(t, down)
			base, _ = server(t, vars)
			if !eventually(30*time.Second, func() bool { return len(rc.ofType("ping")) > 0 }) {
				t.Fatal("the ping did not arrive within 30 s of the restart")
			}
			d := rc.ofType("ping")[0]
			if !webhook.Verify(secret, d.ts, d.body, d.sig) {
				t.Errorf("signature does not verify: %+v", d)
			}
			_, m := get(t, base+"/controller/licensing/v1/account/1/webhooks/"+id+"/deliveries", "admin@customer1", "admin-password")
			dl := m["data"].([]any)[0].(map[string]any)
			if dl["status"] != "delivered" || dl["attemptCount"].(float64) < 2 {
				t.Errorf("delivery: %v", dl)
			}
		})
	}
}

// TestWebhooksOnceAcrossReplicas: two instances on one PostgreSQL; each
// event reaches the endpoint once, also across a hand-over of the leader.
func TestWebhooksOnceAcrossReplicas(t *testing.T) {
	vars := map[string]string{"LC_DATABASE_URL": pgtest.URL(t), "LC_BOOTSTRAP_ADMIN_PASSWORD": "admin-password"}
	rc := listenHooks(t, "127.0.0.1:0")
	a, stopA := server(t, vars)
	b, _ := server(t, vars)
	hooks := "/controller/licensing/v1/account/1/webhooks"
	code, hook := post(t, a+hooks, map[string]any{"url": "http://" + rc.addr + "/hook", "events": []string{"license.expiring"}})
	if code != 201 {
		t.Fatalf("create webhook: %d %v", code, hook)
	}
	id := hook["id"].(string)
	ping := func(base string, n int) {
		for range n {
			if code, m := post(t, base+hooks+"/"+id+"/ping", nil); code != 202 {
				t.Fatalf("ping: %d %v", code, m)
			}
		}
	}
	ping(a, 5) // as many as may be pending at once
	if !eventually(20*time.Second, func() bool { return len(rc.ofType("ping")) >= 5 }) {
		t.Fatalf("got %d pings, want 5", len(rc.ofType("ping")))
	}
	ping(b, 5)
	// The trial licence expires in 30 days: its 30-day notice, once.
	if !eventually(20*time.Second, func() bool { return len(rc.ofType("ping")) >= 10 && len(rc.ofType("license.expiring")) >= 1 }) {
		t.Fatalf("got %d pings and %d notices", len(rc.ofType("ping")), len(rc.ofType("license.expiring")))
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	ping(b, 5)
	if !eventually(30*time.Second, func() bool { return len(rc.ofType("ping")) >= 15 }) {
		t.Fatalf("after the hand-over: %d pings, want 15", len(rc.ofType("ping")))
	}
	time.Sleep(2 * time.Second) // would a duplicate come?
	seen := map[string]int{}
	for _, d := range rc.ofType("ping") {
		seen[d.id]++
	}
	if len(seen) != 15 || len(rc.ofType("ping")) != 15 || len(rc.ofType("license.expiring")) != 1 {
		t.Errorf("deliveries: %d pings with %d distinct ids, %d notices; want 15, 15, 1", len(rc.ofType("ping")), len(seen), len(rc.ofType("license.expiring")))
	}
}
