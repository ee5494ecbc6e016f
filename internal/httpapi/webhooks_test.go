package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

const webhooksPath = lv1 + "/webhooks"

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
	event  map[string]any
}

// receiver is a webhook endpoint that records what it gets and answers
// with the next of its codes (200 once they run out).
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	got   []delivery
	codes []int
}

func newReceiver(t *testing.T, codes ...int) *receiver {
	t.Helper()
	rc := &receiver{codes: codes}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{header: r.Header.Clone(), body: body, event: ev})
		code := http.StatusOK
		if len(rc.codes) > 0 {
			code, rc.codes = rc.codes[0], rc.codes[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// ofType returns the deliveries of one event type.
func (rc *receiver) ofType(typ string) []delivery {
	var out []delivery
	for _, d := range rc.deliveries() {
		if d.event["type"] == typ {
			out = append(out, d)
		}
	}
	return out
}

// pump runs the leader's webhook jobs once: fan-out, then delivery.
func (f *fixture) pump(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := f.dispatcher.Dispatch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.dispatcher.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.deliverer.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
}

func createWebhook(t *testing.T, f *fixture, body map[string]any) map[string]any {
	t.Helper()
	r := f.do(t, admin("POST", webhooksPath, body))
	if r.status != http.StatusCreated {
		t.Fatalf("create webhook: %d %s", r.status, r.body)
	}
	return r.json(t)
}

// verified checks a delivery's signature with secret.
func verified(t *testing.T, d delivery, secret string) {
	t.Helper()
	ts := d.header.Get("X-LC-Timestamp")
	if !webhook.Verify(secret, ts, d.body, d.header.Get("X-LC-Signature")) {
		t.Errorf("signature %q does not verify for timestamp %q", d.header.Get("X-LC-Signature"), ts)
	}
	if webhook.Verify("not-the-secret-at-all", ts, d.body, d.header.Get("X-LC-Signature")) {
		t.Error("signature verifies with another secret")
	}
	if d.header.Get("X-LC-Delivery") == "" || d.header.Get("X-LC-Event") != d.event["type"] {
		t.Errorf("headers: %v", d.header)
	}
}

// TestThresholdFiresOncePerCrossing: 80 % fires once, not again at 81 %,
// again after usage fell to 71 % and rose to 80 % (with no look of the
// leader in between: the dip is recorded in the release's transaction).
func TestThresholdFiresOncePerCrossing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 200)
		key := createAllocation(t, f, limits("team", false, false, `[]`, `[{"package":"PREMIUM","units":100}]`))
		rc := newReceiver(t)
		hook := createWebhook(t, f, map[string]any{"url": rc.URL, "events": []string{"allocation.threshold"}})
		secret, _ := hook["secret"].(string)
		if len(secret) < 16 || hook["thresholds"] == nil {
			t.Fatalf("created webhook: %v", hook)
		}
		if r := f.do(t, admin("GET", webhooksPath+"/"+hook["id"].(string), nil)); r.status != 200 || r.json(t)["secret"] != nil {
			t.Fatalf("a read shows the secret: %d %s", r.status, r.body)
		}
		reg := func(host string, vcpu int) string {
			t.Helper()
			d := wantGranted(t, register(t, f, agent{AgentID: host, AgentType: "APP_AGENT", LicenseKey: key,
				Host: onHost(host, vcpu), Application: app(1, "shop")}, ""), 201)
			return d["registrationId"].(string)
		}
		var ids []string
		for i := range 7 {
			ids = append(ids, reg(fmt.Sprintf("h%d", i), 10))
		}
		f.pump(t)
		if got := rc.ofType("allocation.threshold"); len(got) != 0 {
			t.Fatalf("at 70 %%: %d events", len(got))
		}
		ids = append(ids, reg("h7", 10)) // 80 %
		f.pump(t)
		got := rc.ofType("allocation.threshold")
		if len(got) != 1 {
			t.Fatalf("at 80 %%: %d events, want 1", len(got))
		}
		data := got[0].event["data"].(map[string]any)
		if data["threshold"] != 80.0 || data["usedUnits"] != 80.0 || data["limitUnits"] != 100.0 || data["package"] != "PREMIUM" ||
			data["allocationName"] != "team" || data["scope"] != "allocation" || got[0].event["accountId"] != 1.0 {
			t.Errorf("event: %v", got[0].event)
		}
		verified(t, got[0], secret)
		reg("h8", 1) // 81 %
		f.pump(t)
		if n := len(rc.ofType("allocation.threshold")); n != 1 {
			t.Fatalf("at 81 %%: %d events, want still 1", n)
		}
		// Down to 71 % and back to 80 % before the leader looks again.
		if r := f.do(t, admin("DELETE", registrations+"/"+ids[0], nil)); r.status != http.StatusNoContent {
			t.Fatalf("release: %d %s", r.status, r.body)
		}
		reg("h9", 9)
		f.pump(t)
		got = rc.ofType("allocation.threshold")
		if len(got) != 2 || got[1].event["data"].(map[string]any)["threshold"] != 80.0 {
			t.Fatalf("after the dip: %d events, want 2 at 80 %%", len(got))
		}
		if got[0].event["id"] == got[1].event["id"] {
			t.Error("two crossings share an event id")
		}
		r := f.do(t, admin("GET", webhooksPath+"/"+hook["id"].(string)+"/deliveries", nil))
		list := r.json(t)["data"].([]any)
		if r.status != 200 || len(list) != 2 {
			t.Fatalf("deliveries: %d %s", r.status, r.body)
		}
		d0 := list[0].(map[string]any)
		if d0["status"] != "delivered" || d0["attemptCount"] != 1.0 || d0["attempts"].([]any)[0].(map[string]any)["statusCode"] != 200.0 {
			t.Errorf("delivery: %v", d0)
		}
	})
}

// TestDeliveryRetriesUntilItSucceeds: 500 three times, then 200; the log
// shows four attempts. A 4xx is not retried.
func TestDeliveryRetriesUntilItSucceeds(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		rc := newReceiver(t, 500, 500, 500)
		// Ping is sent whatever the endpoint subscribes to.
		hook := createWebhook(t, f, map[string]any{"url": rc.URL, "events": []string{"lease.preempted"}})
		id := hook["id"].(string)
		if r := f.do(t, admin("POST", webhooksPath+"/"+id+"/ping", nil)); r.status != http.StatusAccepted {
			t.Fatalf("ping: %d %s", r.status, r.body)
		}
		for range 4 {
			f.pump(t)
			f.clock.Advance(time.Second) // past the (millisecond) back-off of the fixture
		}
		if n := len(rc.ofType("ping")); n != 4 {
			t.Fatalf("receiver got %d pings, want 4", n)
		}
		ids := map[string]bool{}
		for _, d := range rc.ofType("ping") {
			ids[d.header.Get("X-LC-Delivery")] = true
			verified(t, d, hook["secret"].(string))
		}
		if len(ids) != 1 {
			t.Errorf("retries carry %d delivery ids, want 1", len(ids))
		}
		list := f.do(t, admin("GET", webhooksPath+"/"+id+"/deliveries", nil)).json(t)["data"].([]any)
		d := list[0].(map[string]any)
		codes := []float64{}
		for _, a := range d["attempts"].([]any) {
			codes = append(codes, a.(map[string]any)["statusCode"].(float64))
		}
		if d["status"] != "delivered" || fmt.Sprint(codes) != "[500 500 500 200]" || d["nextAttemptAt"] != nil {
			t.Errorf("delivery log: %v", d)
		}

		// A 404 fails at once; redeliver sends it again.
		rc.mu.Lock()
		rc.codes = []int{404}
		rc.mu.Unlock()
		ping := f.do(t, admin("POST", webhooksPath+"/"+id+"/ping", nil)).json(t)
		for range 3 {
			f.pump(t)
			f.clock.Advance(time.Second)
		}
		got := f.do(t, admin("GET", webhooksPath+"/"+id+"/deliveries?size=1", nil)).json(t)
		if d := got["data"].([]any)[0].(map[string]any); d["id"] != ping["id"] || d["status"] != "failed" || d["attemptCount"] != 1.0 {
			t.Fatalf("after a 404: %v", d)
		}
		if got["next"] == nil {
			t.Error("size=1 of two deliveries has no next page")
		}
		r := f.do(t, admin("POST", webhooksPath+"/deliveries/"+ping["id"].(string)+"/redeliver", nil))
		if r.status != http.StatusAccepted || r.json(t)["status"] != "pending" {
			t.Fatalf("redeliver: %d %s", r.status, r.body)
		}
		f.pump(t)
		if n := len(rc.ofType("ping")); n != 6 {
			t.Errorf("receiver got %d pings, want 6", n)
		}
	})
}

// TestLicenceExpiringNotice: a licence that expires in 6 days gives one
// license.expiring event, the 7-day notice; its expiry gives license.expired.
func TestLicenceExpiringNotice(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		// Without the trial, the signed licence stays the effective one
		// when it expires.
		for _, l := range f.do(t, admin("GET", lv1+"/licenses", nil)).json(t)["data"].([]any) {
			if r := f.do(t, admin("DELETE", lv1+"/licenses/"+l.(map[string]any)["id"].(string), nil)); r.status != 204 {
				t.Fatalf("delete trial: %d %s", r.status, r.body)
			}
		}
		exp := f.clock.Now().Add(6 * 24 * time.Hour).Truncate(time.Second)
		if r := f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": signed(t, "customer1", exp.Format(time.RFC3339), 10)})); r.status != 201 {
			t.Fatalf("licence: %d %s", r.status, r.body)
		}
		rc := newReceiver(t)
		createWebhook(t, f, map[string]any{"url": rc.URL, "events": []string{"license.expiring", "license.expired"}})
		for range 3 {
			f.pump(t)
		}
		got := rc.ofType("license.expiring")
		if len(got) != 1 {
			t.Fatalf("%d license.expiring events, want 1", len(got))
		}
		if d := got[0].event["data"].(map[string]any); d["notice"] != "7d" || d["daysLeft"] != 6.0 {
			t.Errorf("notice: %v", d)
		}
		f.clock.Advance(6*24*time.Hour + time.Minute)
		f.pump(t)
		f.pump(t)
		if n, m := len(rc.ofType("license.expiring")), len(rc.ofType("license.expired")); n != 1 || m != 1 {
			t.Errorf("after expiry: %d expiring (want 1: the 1-day notice was passed), %d expired (want 1)", n, m)
		}
	})
}

// TestWebhookCRUD: defaults, validation naming the field, PUT keeping
// what it leaves out, another account's ids not found, deletion.
func TestWebhookCRUD(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		otherAccount(t, f)
		h := createWebhook(t, f, map[string]any{"url": "https://hooks.example.com/lc"})
		if fmt.Sprint(h["thresholds"]) != "[80 90 100]" || len(h["events"].([]any)) != len(webhook.EventTypes) || h["enabled"] != true {
			t.Errorf("defaults: %v", h)
		}
		id := h["id"].(string)
		for _, bad := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"url": "ftp://x/y"}, "url"},
			{map[string]any{"url": "https://user:pw@x/y"}, "url"},
			{map[string]any{"url": "/relative"}, "url"},
			{map[string]any{"url": "https://x/y", "events": []string{"allocation.threshold", "nope"}}, "events[1]"},
			{map[string]any{"url": "https://x/y", "thresholds": []int{80, 0}}, "thresholds[1]"},
			{map[string]any{"url": "https://x/y", "thresholds": []int{101}}, "thresholds[0]"},
			{map[string]any{"url": "https://x/y", "secret": "short"}, "secret"},
			{map[string]any{"url": "https://x/y", "secret": "éééééééé"}, "secret"}, // 16 bytes, 8 characters
			{map[string]any{"url": "https://x:99999/y"}, "url"},
			{map[string]any{"url": "https://x:0/y"}, "url"},
			{map[string]any{"url": "http://h/ x"}, "url"},
		} {
			m := wantProblem(t, f.do(t, admin("POST", webhooksPath, bad.body)), 400, "VALIDATION_FAILED")
			if fs := fieldsOf(m); len(fs) != 1 || fs[0] != bad.field {
				t.Errorf("%v: fields %v, want %s", bad.body, fs, bad.field)
			}
		}
		m := wantProblem(t, f.do(t, admin("POST", webhooksPath, `{"url":"https://x/y","thresholds":[9223372036854775808]}`)), 400, "VALIDATION_FAILED")
		if fs := fieldsOf(m); len(fs) != 1 || !strings.HasPrefix(fs[0], "thresholds") {
			t.Errorf("2^63 threshold: fields %v", fs)
		}
		r := f.do(t, admin("PUT", webhooksPath+"/"+id, map[string]any{"url": "https://hooks.example.com/v2", "enabled": false, "thresholds": []int{95, 50, 95}}))
		got := r.json(t)
		if r.status != 200 || got["url"] != "https://hooks.example.com/v2" || got["enabled"] != false || fmt.Sprint(got["thresholds"]) != "[50 95]" ||
			len(got["events"].([]any)) != len(webhook.EventTypes) || got["secret"] != nil {
			t.Errorf("PUT: %d %s", r.status, r.body)
		}
		if l := f.do(t, admin("GET", webhooksPath, nil)); l.status != 200 || !strings.Contains(string(l.body), id) || strings.Contains(string(l.body), "whsec_") {
			t.Errorf("list: %d %s", l.status, l.body)
		}
		// Another account's admin finds nothing of ours and changes nothing.
		bob := func(method, path string, body any) resp {
			return f.do(t, req{method: method, path: strings.Replace(path, "/account/1/", "/account/2/", 1), body: body, user: "bob@acme", pass: "bob-password"})
		}
		wantProblem(t, bob("GET", webhooksPath+"/"+id, nil), 404, "WEBHOOK_NOT_FOUND")
		wantProblem(t, bob("PUT", webhooksPath+"/"+id, map[string]any{"url": "https://evil.example.com/"}), 404, "WEBHOOK_NOT_FOUND")
		wantProblem(t, bob("DELETE", webhooksPath+"/"+id, nil), 404, "WEBHOOK_NOT_FOUND")
		wantProblem(t, bob("POST", webhooksPath+"/"+id+"/ping", nil), 404, "WEBHOOK_NOT_FOUND")
		wantProblem(t, bob("GET", webhooksPath+"/"+id+"/deliveries", nil), 404, "WEBHOOK_NOT_FOUND")
		ping := f.do(t, admin("POST", webhooksPath+"/"+id+"/ping", nil)).json(t)
		for range webhook.MaxPendingPings - 1 {
			if r := f.do(t, admin("POST", webhooksPath+"/"+id+"/ping", nil)); r.status != http.StatusAccepted {
				t.Fatalf("ping: %d %s", r.status, r.body)
			}
		}
		if r := wantProblem(t, f.do(t, admin("POST", webhooksPath+"/"+id+"/ping", nil)), http.StatusTooManyRequests, "TOO_MANY_PINGS"); r == nil {
			t.Fatal("no problem")
		}
		wantProblem(t, bob("POST", webhooksPath+"/deliveries/"+ping["id"].(string)+"/redeliver", nil), 404, "DELIVERY_NOT_FOUND")
		wantProblem(t, f.do(t, admin("POST", webhooksPath+"/"+uuidLike+"/deliveries/"+ping["id"].(string)+"/redeliver", nil)), 404, "DELIVERY_NOT_FOUND")
		if got := f.do(t, admin("GET", webhooksPath+"/"+id, nil)).json(t); got["url"] != "https://hooks.example.com/v2" {
			t.Errorf("after bob: %v", got)
		}
		if r := f.do(t, admin("DELETE", webhooksPath+"/"+id, nil)); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, admin("GET", webhooksPath+"/"+id, nil)), 404, "WEBHOOK_NOT_FOUND")
		wantProblem(t, f.do(t, admin("POST", webhooksPath+"/deliveries/"+ping["id"].(string)+"/redeliver", nil)), 404, "DELIVERY_NOT_FOUND")
	})
}

const uuidLike = "00000000-0000-4000-8000-000000000000"

// TestPreemptionAndRefusalEvents: a pre-empted lease is announced; the
// refusals of a pool and reason come as one digest at once, then at most
// one a minute with what was refused since.
func TestPreemptionAndRefusalEvents(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		rc := newReceiver(t)
		createWebhook(t, f, map[string]any{"url": rc.URL, "events": []string{"lease.preempted", "registration.refused"}})
		f.pump(t) // the digest starts now
		prio := createAllocation(t, f, limits("prio", false, true, `[]`, `[{"package":"PREMIUM","units":20}]`))
		wantGranted(t, register(t, f, agent{AgentID: "old", AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("old-host", 10)}, ""), 201)
		f.clock.Advance(time.Second)
		victim := wantGranted(t, register(t, f, agent{AgentID: "new", AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("new-app-host", 10)}, ""), 201)
		wantGranted(t, register(t, f, agent{AgentID: "ma", AgentType: "MACHINE_AGENT", LicenseKey: prio, Host: onHost("db-host", 8)}, ""), 201)
		for i := range 3 {
			refusal(t, register(t, f, agent{AgentID: fmt.Sprintf("late%d", i), AgentType: "APP_AGENT", LicenseKey: prio,
				Host: onHost(fmt.Sprintf("late-host-%d", i%2), 20)}, ""), 409, "NO_MORE_UNITS")
		}
		f.clock.Advance(20 * time.Second) // past the digest's lag
		f.pump(t)
		pre := rc.ofType("lease.preempted")
		if len(pre) != 1 {
			t.Fatalf("%d lease.preempted events, want 1", len(pre))
		}
		if d := pre[0].event["data"].(map[string]any); d["registrationId"] != victim["registrationId"] || d["allocationName"] != "prio" || d["forHostId"] != "db-host" {
			t.Errorf("pre-emption: %v", d)
		}
		ref := rc.ofType("registration.refused")
		if len(ref) != 1 {
			t.Fatalf("%d digests, want 1", len(ref))
		}
		if d := ref[0].event["data"].(map[string]any); d["reason"] != "NO_MORE_UNITS" || d["count"] != 3.0 || d["hosts"] != 2.0 {
			t.Errorf("digest: %v", d)
		}
		// Two more refusals within the minute wait for the next digest.
		for i := range 2 {
			refusal(t, register(t, f, agent{AgentID: fmt.Sprintf("later%d", i), AgentType: "APP_AGENT", LicenseKey: prio, Host: onHost("late-host-9", 20)}, ""), 409, "NO_MORE_UNITS")
		}
		f.clock.Advance(10 * time.Second)
		f.pump(t)
		if n := len(rc.ofType("registration.refused")); n != 1 {
			t.Fatalf("%d digests within the minute, want 1", n)
		}
		f.clock.Advance(time.Minute)
		f.pump(t)
		ref = rc.ofType("registration.refused")
		if len(ref) != 2 {
			t.Fatalf("%d digests after the minute, want 2", len(ref))
		}
		if d := ref[1].event["data"].(map[string]any); d["count"] != 2.0 || d["hosts"] != 1.0 {
			t.Errorf("second digest: %v", d)
		}
	})
}

// TestThresholdRearmsOnANewLimit: a threshold that fired at one limit
// fires again when usage crosses it under a raised limit.
func TestThresholdRearmsOnANewLimit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 300)
		body := func(units int) string {
			return limits("team", false, false, `[]`, fmt.Sprintf(`[{"package":"PREMIUM","units":%d}]`, units))
		}
		r := f.do(t, admin("POST", allocations, body(100)))
		id, key := r.json(t)["id"].(string), r.json(t)["licenseKey"].(string)
		rc := newReceiver(t)
		createWebhook(t, f, map[string]any{"url": rc.URL, "events": []string{"allocation.threshold"}, "thresholds": []int{80}})
		reg := func(host string, vcpu int) {
			t.Helper()
			wantGranted(t, register(t, f, agent{AgentID: host, AgentType: "APP_AGENT", LicenseKey: key, Host: onHost(host, vcpu)}, ""), 201)
		}
		reg("a", 85) // 85 % of 100
		f.pump(t)
		if n := len(rc.ofType("allocation.threshold")); n != 1 {
			t.Fatalf("%d events at 85 %%, want 1", n)
		}
		if r := f.do(t, admin("PUT", allocations+"/"+id, body(200))); r.status != 200 {
			t.Fatalf("raise the limit: %d %s", r.status, r.body)
		}
		reg("b", 70) // 155 of 200: 77.5 %
		reg("c", 5)  // 160 of 200: 80 %
		f.pump(t)
		got := rc.ofType("allocation.threshold")
		if len(got) != 2 || got[1].event["data"].(map[string]any)["limitUnits"] != 200.0 {
			t.Fatalf("after the new limit: %d events, want 2 (the second at limit 200)", len(got))
		}
	})
}

// TestDeliveryClaims: a claimed delivery is not handed out again while
// the claim holds, and an attempt whose claim was taken over is not
// recorded over its successor's.
func TestDeliveryClaims(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		rc := newReceiver(t)
		hook := createWebhook(t, f, map[string]any{"url": rc.URL, "events": []string{"lease.preempted"}})
		f.do(t, admin("POST", webhooksPath+"/"+hook["id"].(string)+"/ping", nil))
		// A second endpoint with a backlog gets one claim a round, as the first.
		busy := createWebhook(t, f, map[string]any{"url": rc.URL, "events": []string{"lease.preempted"}})
		for range 3 {
			f.do(t, admin("POST", webhooksPath+"/"+busy["id"].(string)+"/ping", nil))
		}
		now := f.clock.Now()
		ws := st.Webhooks()
		round, err := ws.ClaimDeliveries(ctx, now, now.Add(time.Second), 10)
		if err != nil || len(round) != 2 || round[0].WebhookID == round[1].WebhookID {
			t.Fatalf("a round claimed %d deliveries (%v), want one of each endpoint", len(round), err)
		}
		now = now.Add(2 * time.Second) // that round's claims ran out
		if err := ws.DeleteWebhook(ctx, 1, busy["id"].(string)); err != nil {
			t.Fatal(err)
		}
		first, err := ws.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10)
		if err != nil || len(first) != 1 {
			t.Fatalf("claim: %v %v", first, err)
		}
		if again, err := ws.ClaimDeliveries(ctx, now.Add(30*time.Second), now.Add(time.Minute), 10); err != nil || len(again) != 0 {
			t.Fatalf("claimed twice while the claim holds: %v %v", again, err)
		}
		// The claim ran out (its leader stalled): a successor claims it.
		second, err := ws.ClaimDeliveries(ctx, now.Add(2*time.Minute), now.Add(3*time.Minute), 10)
		if err != nil || len(second) != 1 {
			t.Fatalf("successor's claim: %v %v", second, err)
		}
		d := second[0].Delivery
		d.Status, d.NextAttemptAt = webhook.StatusDelivered, nil
		if err := ws.SaveDelivery(ctx, d, &first[0].ClaimedUntil); !errors.Is(err, fault.ErrConflict) {
			t.Fatalf("the stalled leader's save: %v, want a conflict", err)
		}
		if err := ws.SaveDelivery(ctx, d, &second[0].ClaimedUntil); err != nil {
			t.Fatalf("the successor's save: %v", err)
		}
	})
}

// TestLicenceRenewedInPlaceGetsNotices: a licence replaced under its id
// with a new expiry gets the notices of its new date.
func TestLicenceRenewedInPlaceGetsNotices(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		rc := newReceiver(t)
		createWebhook(t, f, map[string]any{"url": rc.URL, "events": []string{"license.expiring"}})
		exp := func(days int) string {
			return f.clock.Now().Add(time.Duration(days) * 24 * time.Hour).Format(time.RFC3339)
		}
		r := f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": signed(t, "customer1", exp(5), 10)}))
		id := r.json(t)["id"].(string)
		f.pump(t)
		before := len(rc.ofType("license.expiring"))
		if r := f.do(t, admin("PUT", lv1+"/licenses/"+id, map[string]string{"payload": signed(t, "customer1", exp(20), 10)})); r.status != 200 {
			t.Fatalf("renew: %d %s", r.status, r.body)
		}
		f.clock.Advance(14 * 24 * time.Hour) // 6 days left of the new date
		f.pump(t)
		got := rc.ofType("license.expiring")
		if len(got) != before+1 || got[len(got)-1].event["data"].(map[string]any)["notice"] != "7d" {
			t.Fatalf("after the renewal: %d notices (before %d); want one more, the 7-day one", len(got), before)
		}
	})
}
