package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
	"github.com/lcorp/licensing-controller/internal/ui"
)

// TestDashboardAssets: the page and its assets carry the CSP and ETags,
// answer 304 to a matching If-None-Match, and nothing else is served.
func TestDashboardAssets(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	for _, path := range []string{"/ui", "/ui/", "/ui/assets/app.js", "/ui/assets/style.css", "/ui/assets/vendor/uplot/uPlot.esm.js"} {
		r := f.do(t, req{method: "GET", path: path})
		if r.status != 200 || r.header.Get("Content-Security-Policy") != ui.CSP || r.header.Get("ETag") == "" ||
			r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Set-Cookie") != "" {
			t.Fatalf("GET %s: %d %v", path, r.status, r.header)
		}
		want := map[string]string{".js": "text/javascript", ".css": "text/css"}[filepath.Ext(path)]
		if want == "" {
			want = "text/html"
		}
		if !strings.HasPrefix(r.header.Get("Content-Type"), want) {
			t.Errorf("GET %s: Content-Type %q, want %s", path, r.header.Get("Content-Type"), want)
		}
		again := f.do(t, req{method: "GET", path: path, header: map[string]string{"If-None-Match": r.header.Get("ETag")}})
		if again.status != http.StatusNotModified || len(again.body) != 0 {
			t.Errorf("GET %s with its ETag: %d, want 304", path, again.status)
		}
	}
	page := string(f.do(t, req{method: "GET", path: "/ui/"}).body)
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") || strings.Contains(page, "onclick") {
		t.Error("the page has inline script or style: the CSP would block it")
	}
	if r := f.do(t, req{method: "GET", path: "/"}); r.status != http.StatusFound || r.header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d %v, want a redirect to /ui/", r.status, r.header)
	}
	for _, path := range []string{"/ui/assets/nope.js", "/ui/assets/../ui.go", "/ui/other"} {
		if r := f.do(t, req{method: "GET", path: path}); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
}

// chromium finds a headless-capable Chromium, or skips (fails under CI,
// which installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on this machine: CI installs it (apt-get install chromium)")
	}
	t.Skip("no Chromium on this machine: apt-get install chromium to run the browser tests")
	return ""
}

// browserTab opens a headless Chromium tab at width×height; errors
// returns the console errors and uncaught exceptions of its pages since
// the last call.
func browserTab(t *testing.T, width, height int) (ctx context.Context, errors func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.WindowSize(width, height))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	var mu sync.Mutex
	var errs []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				errs = append(errs, m.String())
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := errs
		errs = nil
		return out
	}
}

// seedEstate is three allocations and 20 registrations, sampled every 5
// minutes over the last three hours.
func seedEstate(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, storetest.Engines()[0].Open(t), func(o *engine.Options) { o.LeaseTTL = 24 * time.Hour })
	withLicence(t, f, 100)
	if _, err := f.auth.CreateUser(context.Background(), 1, "viewer", auth.RoleLicenseViewer, "viewer-password"); err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC()
	f.clock.Set(end.Add(-3 * time.Hour))
	n := 0
	for i, spec := range []struct {
		name       string
		units, reg int
	}{{"team-a", 10, 4}, {"team-b", 20, 10}, {"team-c", 30, 6}} {
		key := createAllocation(t, f, limits(spec.name, false, false, `[]`, fmt.Sprintf(`[{"package":"PREMIUM","units":%d}]`, spec.units)))
		for j := range spec.reg {
			wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("%s-%d", spec.name, j), AgentType: "APP_AGENT", LicenseKey: key,
				Host: onHost(fmt.Sprintf("host-%s-%d", spec.name, j), 1), Application: app(100+i, "shop-"+spec.name)}, ""), 201)
			n++
		}
		if spec.name == "team-a" { // full up: one refusal
			refusal(t, register(t, f, agent{AgentID: "late", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("late-host", 8)}, ""), 409, "NO_MORE_UNITS")
		}
	}
	if n != 20 {
		t.Fatalf("%d registrations", n)
	}
	for f.clock.Now().Before(end) {
		sample(t, f)
		f.clock.Advance(5 * time.Minute)
	}
	f.clock.Set(end)
	return f
}

type barFigure struct {
	Alloc   string `json:"alloc"`
	Package string `json:"package"`
	Used    int64  `json:"used"`
	Limit   int64  `json:"limit"`
	Percent int64  `json:"percent"`
}

const readBars = `[...document.querySelectorAll('#allocations-body .bar-row')].map(b => ({alloc: b.closest('.alloc').dataset.allocation,
	package: b.dataset.package, used: +b.dataset.used, limit: +b.dataset.limit, percent: +b.dataset.percent}))`

// TestDashboardInBrowser signs in (a wrong password first), sees the
// licence, one bar per allocation and package with the API's figures, a
// chart with points that follows the range buttons, the refusal; signs
// out. A viewer sees no edit buttons; the page fits a phone's width.
func TestDashboardInBrowser(t *testing.T) {
	f := seedEstate(t)
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	ctx, consoleErrors := browserTab(t, 1280, 800)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	signIn := func(login, password string) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{
			chromedp.WaitVisible(chromedp.CSS("#signin-form")),
			chromedp.SetValue(chromedp.ID("login"), login),
			chromedp.SetValue(chromedp.ID("password"), password),
			chromedp.Click(chromedp.CSS(`#signin-form button[type="submit"]`)),
		}
	}

	run("open the page", chromedp.Navigate(srv.URL+"/ui/"))
	run("wrong password", append(signIn("admin@customer1", "wrong-password"), chromedp.WaitVisible(chromedp.CSS("#signin-error")))...)
	if msg := text("#signin-error"); !strings.Contains(msg, "Wrong") {
		t.Errorf("wrong password shows %q", msg)
	}
	consoleErrors() // the 401 of the wrong password is logged by the browser itself

	run("sign in", append(signIn("admin@customer1", adminPassword), chromedp.WaitVisible(chromedp.CSS("#licence-status")),
		chromedp.WaitVisible(chromedp.CSS(`.alloc[data-allocation="team-c"] .bar-row`)))...)
	if status, expiry := text("#licence-status"), text("#licence-expiry"); status != "ACTIVE" || !strings.Contains(expiry, "days left") {
		t.Errorf("licence: %q, %q", status, expiry)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]barFigure](readBars))
	if err != nil {
		t.Fatal(err)
	}
	// The same figures as the API: used and limit of each allocation's packages.
	var want []barFigure
	for _, a := range f.do(t, admin("GET", allocations+"?includeUsage=true", nil)).jsonList(t) {
		for _, p := range a["usage"].([]any) {
			pm := p.(map[string]any)
			used, limit := int64(pm["used"].(float64)), int64(pm["limit"].(float64))
			if used == 0 && limit == 0 {
				continue // no bar for a package the allocation neither has nor uses
			}
			pct := int64(0)
			if limit > 0 {
				pct = (used*100 + limit/2) / limit
			}
			want = append(want, barFigure{a["name"].(string), pm["package"].(string), used, limit, pct})
		}
	}
	if fmt.Sprint(bars) != fmt.Sprint(want) {
		t.Errorf("bars:\n got %v\nwant %v", bars, want)
	}
	allocs := map[string]bool{}
	for _, b := range bars {
		allocs[b.Alloc] = true
		if b.Alloc == "team-b" && b.Package == "PREMIUM" && (b.Used != 10 || b.Limit != 20 || b.Percent != 50) {
			t.Errorf("team-b: %+v, want 10 of 20 (50 %%)", b)
		}
	}
	if len(allocs) != 4 || !allocs["Default"] {
		t.Errorf("allocations shown: %v, want 3 and Default", allocs)
	}

	// The chart: points for the last 24 h, and after a click for 7 days.
	run("chart", chromedp.WaitVisible(chromedp.CSS(`#chart[data-range="24h"] canvas`)))
	points, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("#chart"), "data-points"))
	if err != nil || points.Value == "" || points.Value == "0" {
		t.Errorf("chart points: %q %v", points.Value, err)
	}
	run("refusals", chromedp.WaitVisible(chromedp.CSS("#refusals-table")))
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("LC_UI_SCREENSHOT"); out != "" { // make screenshot: the README's picture
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %s", filepath.Join(dir, "dashboard.png"))
	run("7 days", chromedp.Click(chromedp.CSS(`[data-range="7d"]`)), chromedp.WaitVisible(chromedp.CSS(`#chart[data-range="7d"] canvas`)))
	run("refusals", chromedp.WaitVisible(chromedp.CSS("#refusals-table")))
	if r := text("#refusals-table"); !strings.Contains(r, "No more units") {
		t.Errorf("refusals: %q", r)
	}
	if edits, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('button.edit').length`)); err != nil || edits != 3 {
		t.Errorf("an account owner sees %d edit buttons (%v), want 3 (not the Default)", edits, err)
	}

	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}

	// Edit a limit: the API has it, the bar shows it.
	run("edit limits", chromedp.Click(chromedp.CSS(`.alloc[data-allocation="team-a"] button.edit`)),
		chromedp.WaitVisible(chromedp.CSS(`.alloc[data-allocation="team-a"] .edit-form`)),
		chromedp.SetValue(chromedp.CSS(`.alloc[data-allocation="team-a"] input[name="PREMIUM"]`), "12"),
		chromedp.Click(chromedp.CSS(`.alloc[data-allocation="team-a"] .edit-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.alloc[data-allocation="team-a"] .bar-row[data-limit="12"]`)))
	for _, a := range f.do(t, admin("GET", allocations+"?name=team-a", nil)).jsonList(t) {
		if l := a["limits"].([]any)[0].(map[string]any); l["units"] != 12.0 {
			t.Errorf("team-a after the edit: %v", a["limits"])
		}
	}

	// Sign out: the sign-in form again, nothing kept.
	run("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.CSS("#signin-form")))
	if stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("lc.authorization") || ""`)); err != nil || stored != "" {
		t.Errorf("sessionStorage keeps %q after signing out (%v)", stored, err)
	}

	// A viewer: the same page, no edit buttons.
	run("viewer", append(signIn("viewer@customer1", "viewer-password"), chromedp.WaitVisible(chromedp.CSS(`.alloc[data-allocation="team-c"] .bar-row`)))...)
	if edits, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('button.edit').length`)); err != nil || edits != 0 {
		t.Errorf("a licence viewer sees %d edit buttons (%v)", edits, err)
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors of the viewer: %v", errs)
	}

	// The window shrinks to a phone's width: the chart follows.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the resize observer redraws the chart
	if overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); err != nil || overflow {
		t.Errorf("after shrinking the window the page is wider than the screen (%v)", err)
	}

	// A phone's width from the start: nothing wider than the screen.
	phone, phoneErrors := browserTab(t, 390, 844)
	ctx = phone
	run("phone", append(append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(srv.URL + "/ui/")}, signIn("admin@customer1", adminPassword)...),
		chromedp.WaitVisible(chromedp.CSS(`.alloc[data-allocation="team-c"] .bar-row`)), chromedp.WaitVisible(chromedp.CSS(`#chart canvas`)))...)
	if overflow, err := chromedp.Run(phone, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); err != nil || overflow {
		t.Errorf("the page is wider than a phone's screen (%v)", err)
	}
	if errs := phoneErrors(); len(errs) > 0 {
		t.Errorf("console errors on a phone: %v", errs)
	}
}

func (r resp) jsonList(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("response is not a JSON array of objects: %v: %s", err, r.body)
	}
	return out
}

// TestIncludeUsage: allocations and rules answer their live usage when
// asked, and only then (the AppDynamics shape is unchanged).
func TestIncludeUsage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		withLicence(t, f, 100)
		key := createAllocation(t, f, limits("team", false, false, `[]`, `[{"package":"PREMIUM","units":10}]`))
		wantGranted(t, register(t, f, agent{AgentID: "a", AgentType: "APP_AGENT", LicenseKey: key, Host: onHost("h", 3)}, ""), 201)
		if r := f.do(t, admin("POST", rules, ruleBody("java", `,"access_key":"java-key"`))); r.status/100 != 2 {
			t.Fatalf("rule: %d %s", r.status, r.body)
		}
		wantGranted(t, register(t, f, agent{AgentID: "j", AgentType: "APP_AGENT", LicenseKey: "java-key", Host: onHost("h2", 3)}, ""), 201)
		for _, a := range f.do(t, admin("GET", allocations+"?includeUsage=true&name=team", nil)).jsonList(t) {
			if fmt.Sprint(a["usage"]) != "[map[limit:10 package:PREMIUM used:3]]" {
				t.Errorf("allocation usage: %v", a["usage"])
			}
		}
		for _, r := range f.do(t, admin("GET", rules+"?includeUsage=true", nil)).jsonList(t) {
			if fmt.Sprint(r["usage"]) != "[map[limit:2 package:JAVA used:1]]" {
				t.Errorf("rule usage: %v", r["usage"])
			}
		}
		if r := f.do(t, admin("GET", allocations, nil)); strings.Contains(string(r.body), `"usage"`) {
			t.Error("usage without being asked")
		}
		wantProblem(t, f.do(t, admin("GET", allocations+"?includeUsage=yes", nil)), 400, "VALIDATION_FAILED")
	})
}
