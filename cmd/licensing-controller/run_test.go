package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// engines returns the environment selecting each store.
func engines(t *testing.T) map[string]map[string]string {
	return map[string]map[string]string{
		"sqlite":   {"LC_DATA_DIR": t.TempDir()},
		"postgres": {"LC_DATABASE_URL": ""}, // filled lazily: pgtest skips loudly without PostgreSQL
	}
}

func testEnv(vars map[string]string, stdin string) (env, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return env{
		lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		stdin:  strings.NewReader(stdin),
		stdout: out,
		stderr: io.Discard,
	}, out
}

// server runs `serve` until stop is called, which returns run's error.
func server(t *testing.T, vars map[string]string) (base string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, _ := testEnv(vars, "")
	addrc := make(chan string, 1)
	e.listening = func(a string) { addrc <- a }
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, []string{"serve", "--http-addr", "127.0.0.1:0"}, e) }()
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	var once bool
	stop = func() error {
		if once {
			return nil
		}
		once = true
		cancel()
		return <-errc
	}
	t.Cleanup(func() { _ = stop() })
	return base, stop
}

func get(t *testing.T, url, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// eventually polls cond every 20 ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// secretOf is the client_secret an api-client command printed.
func secretOf(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(l, "client_secret="); ok {
			return s
		}
	}
	t.Fatalf("no client_secret in %q", out)
	return ""
}

func tokenStatus(t *testing.T, base, id, secret string) int {
	t.Helper()
	res, err := http.PostForm(base+"/controller/api/oauth/access_token",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func token(t *testing.T, base, id, secret string) string {
	t.Helper()
	res, err := http.PostForm(base+"/controller/api/oauth/access_token",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 {
		t.Fatalf("token of %s: %d %v", id, res.StatusCode, err)
	}
	return tok.AccessToken
}

func bearer(t *testing.T, base, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/controller/licensing/v1/account/1/registrations", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func cli(t *testing.T, vars map[string]string, stdin string, args ...string) string {
	t.Helper()
	e, out := testEnv(vars, stdin)
	if err := run(context.Background(), args, e); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out.String()
}

func TestEndToEnd(t *testing.T) {
	for name, vars := range engines(t) {
		t.Run(name, func(t *testing.T) {
			if name == "postgres" {
				vars["LC_DATABASE_URL"] = pgtest.URL(t)
			}
			vars["LC_BOOTSTRAP_ADMIN_PASSWORD"] = "admin-password"
			vars["LC_USAGE_SAMPLE_INTERVAL"], vars["LC_USAGE_RETENTION"] = "1s", "30d"

			base, stop := server(t, vars)
			if code, m := get(t, base+"/controller/api/accounts/myaccount", "admin@customer1", "admin-password"); code != 200 || m["name"] != "customer1" || m["id"] != float64(1) {
				t.Fatalf("myaccount: %d %v", code, m)
			}

			// The analytics replay cache is on, and measured.
			if res, err := http.Get(base + "/metrics"); err != nil {
				t.Error(err)
			} else {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if !strings.Contains(string(body), "\nlc_analytics_cache_bytes ") {
					t.Errorf("/metrics has no lc_analytics_cache_bytes: %d %.300s", res.StatusCode, body)
				}
			}

			// The leader samples usage every second: the trial's units show.
			now := time.Now().UTC()
			series := fmt.Sprintf("%s/controller/licensing/v1/usage/account/1?dateFrom=%s&dateTo=%s&granularityMinutes=1", base,
				now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				code, m := get(t, series, "admin@customer1", "admin-password")
				if pkgs, _ := m["packages"].([]any); code == 200 && len(pkgs) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no usage sample within 10 s: %d %v", code, m)
				}
			}

			// Admin commands work on the same database while it serves.
			if out := cli(t, vars, "", "account", "create", "--name", "acme"); !strings.Contains(out, "id 2") {
				t.Errorf("account create printed %q", out)
			}
			cli(t, vars, "bob-password\n", "user", "create", "--account", "acme", "--name", "bob", "--role", "account-owner")
			pwFile := t.TempDir() + "/pw"
			if err := os.WriteFile(pwFile, []byte("carol-password\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cli(t, vars, "", "user", "create", "--account", "acme", "--name", "carol", "--password-file", pwFile)
			if out := cli(t, vars, "", "api-client", "create", "--account", "acme", "--name", "ci"); !strings.Contains(out, "client_id=ci@acme") || !strings.Contains(out, "client_secret=") {
				t.Errorf("api-client create printed %q", out)
			}
			if code, m := get(t, base+"/controller/api/accounts/myaccount", "bob@acme", "bob-password"); code != 200 || m["name"] != "acme" {
				t.Errorf("bob's myaccount: %d %v", code, m)
			}
			if code, m := get(t, base+"/controller/api/accounts/1/users", "bob@acme", "bob-password"); code != 404 || m["code"] != "ACCOUNT_NOT_FOUND" {
				t.Errorf("bob on account 1: %d %v", code, m)
			}
			if code, _ := get(t, base+"/controller/api/accounts/myaccount", "carol@acme", "carol-password"); code != 200 {
				t.Errorf("carol (password file): %d", code)
			}

			// SIGTERM (context cancelled) while a request is in flight: the
			// request completes, then run returns nil.
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", base+"/controller/api/accounts/1/users", pr)
			req.SetBasicAuth("admin@customer1", "admin-password")
			req.Header.Set("Content-Type", "application/json")
			resc := make(chan int, 1)
			go func() {
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					resc <- -1
					return
				}
				res.Body.Close()
				resc <- res.StatusCode
			}()
			fmt.Fprint(pw, `{"name":"dave","role":"license-viewer",`)
			time.Sleep(200 * time.Millisecond) // the request is being read
			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			time.Sleep(200 * time.Millisecond)
			fmt.Fprint(pw, `"password":"dave-password"}`)
			pw.Close()
			if code := <-resc; code != http.StatusCreated {
				t.Errorf("in-flight request during shutdown: %d, want 201", code)
			}
			if err := <-stopped; err != nil {
				t.Errorf("run after SIGTERM: %v", err)
			}

			// A restart on the same data keeps everything.
			base, _ = server(t, vars)
			if code, _ := get(t, base+"/controller/api/accounts/myaccount", "dave@customer1", "dave-password"); code != 200 {
				t.Errorf("user created during shutdown, after restart: %d", code)
			}
			if code, _ := get(t, base+"/controller/api/accounts/myaccount", "bob@acme", "bob-password"); code != 200 {
				t.Errorf("bob after restart: %d", code)
			}
		})
	}
}

func TestCLIErrors(t *testing.T) {
	vars := map[string]string{"LC_DATA_DIR": t.TempDir()}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no password", []string{"user", "create", "--account", "customer1", "--name", "x"}, "", "no password"},
		{"unknown account", []string{"user", "create", "--account", "nope", "--name", "x"}, "password123\n", "not found"},
		{"missing name", []string{"account", "create"}, "", "required flag"},
		{"bad config", []string{"version"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := testEnv(vars, tc.stdin)
			err := run(context.Background(), tc.args, e)
			if tc.want == "" {
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	for name, value := range map[string]string{"LC_LEASE_TTL": "soon", "LC_USAGE_SAMPLE_INTERVAL": "500ms", "LC_USAGE_RETENTION": "forever",
		"LC_HTTP_ADDR": "localhost", "LC_MAX_BODY_BYTES": "lots"} {
		e, _ := testEnv(map[string]string{name: value, "LC_DATA_DIR": t.TempDir()}, "")
		if err := run(context.Background(), []string{"account", "list"}, e); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s=%s: %v", name, value, err)
		}
		// --help and version work whatever the environment holds.
		for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"version"}, {"--version"}} {
			e, out := testEnv(map[string]string{name: value}, "")
			if err := run(context.Background(), args, e); err != nil || out.Len() == 0 {
				t.Errorf("%v with %s=%s: %v, printed %d bytes", args, name, value, err, out.Len())
			}
		}
	}
}

// TestServeHelpListsEverySetting: serve --help names every setting of
// API.md §11 with its flag, environment variable and default.
func TestServeHelpListsEverySetting(t *testing.T) {
	e, out := testEnv(map[string]string{}, "")
	if err := run(context.Background(), []string{"serve", "--help"}, e); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--http-addr", "LC_HTTP_ADDR", `(default ":8080")`, "LC_DATABASE_URL", "LC_DATA_DIR", "LC_BOOTSTRAP_ADMIN_PASSWORD",
		"LC_DEFAULT_ACCOUNT", "LC_LICENSE_PUBLIC_KEYS", "--lease-ttl", "LC_LEASE_TTL", "(default 5m)", "LC_FALLBACK_DELAY",
		"LC_USAGE_SAMPLE_INTERVAL", "LC_USAGE_RETENTION", "(default 400d)", "LC_EVENT_RETENTION", "LC_LOG_LEVEL", "LC_LOG_FORMAT",
		"LC_MAX_BODY_BYTES", "LC_REQUEST_TIMEOUT", "LC_DATABASE_WAIT", "LC_AUDIT_RETENTION", "LC_TRUSTED_PROXIES"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve --help does not mention %s:\n%s", want, out)
		}
	}
	// A flag beats the environment.
	e, _ = testEnv(map[string]string{"LC_LEASE_TTL": "soon"}, "")
	if err := run(context.Background(), []string{"account", "list", "--lease-ttl", "2m", "--data-dir", t.TempDir()}, e); err != nil {
		t.Errorf("a good flag over a bad variable: %v", err)
	}
}

// TestServeChecksBeforeWriting: a bad or busy address, or a data directory
// that cannot be written, fails before any database is created (a
// bootstrapped database with a password nobody saw was left behind).
func TestServeChecksBeforeWriting(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{busy.Addr().String(), "256.0.0.1:80"} {
		dir := t.TempDir()
		e, _ := testEnv(map[string]string{"LC_DATA_DIR": dir, "LC_HTTP_ADDR": addr}, "")
		err := run(context.Background(), []string{"serve"}, e)
		if err == nil || !strings.Contains(err.Error(), "LC_HTTP_ADDR") {
			t.Errorf("serve on %s: %v", addr, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("serve on %s left %d files in the data dir", addr, len(entries))
		}
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := t.TempDir()
		if err := os.Chmod(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		e, _ := testEnv(map[string]string{"LC_DATA_DIR": ro, "LC_HTTP_ADDR": "127.0.0.1:0"}, "")
		if err := run(context.Background(), []string{"serve"}, e); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("serve on a read-only data dir: %v", err)
		}
	}
}

// TestServeWaitsForPostgreSQL: with PostgreSQL unreachable, serve tries
// again for LC_DATABASE_WAIT, logging each attempt, then says why.
func TestServeWaitsForPostgreSQL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	e, _ := testEnv(map[string]string{"LC_DATABASE_URL": "postgres://u:p@" + dead + "/db?connect_timeout=1", "LC_DATABASE_WAIT": "2s",
		"LC_HTTP_ADDR": "127.0.0.1:0"}, "")
	var logs strings.Builder
	e.stderr = &logs
	began := time.Now()
	err = run(context.Background(), []string{"serve"}, e)
	if err == nil || time.Since(began) < time.Second || !strings.Contains(err.Error(), "LC_DATABASE_WAIT") {
		t.Fatalf("serve without PostgreSQL: %v after %s, want a failure after about 2s", err, time.Since(began))
	}
	if n := strings.Count(logs.String(), "waiting for PostgreSQL"); n < 2 {
		t.Errorf("%d attempts logged:\n%s", n, logs.String())
	}
}

// A vendor issues a licence with the CLI alone; the service trusts the
// public key file it wrote.
func TestLicenseKeygenAndSign(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{}
	cli(t, vars, "", "license", "keygen", "--out", dir)
	st, err := os.Stat(dir + "/license-signing.key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v, mode %v", err, st.Mode())
	}
	e, _ := testEnv(vars, "")
	if err := run(context.Background(), []string{"license", "keygen", "--out", dir}, e); err == nil {
		t.Error("keygen overwrote an existing signing key")
	}
	payload := dir + "/payload.json"
	if err := os.WriteFile(payload, []byte(`{"licenseId":"L9","accountName":"customer1","expirationDate":"2099-01-01T00:00:00Z",
		"packages":[{"packageName":"PREMIUM","type":"PAID","licenseUnits":100}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := cli(t, vars, "", "license", "sign", "--key", dir+"/license-signing.key", "--in", payload)
	v, err := licensing.NewVerifier([]string{dir + "/license-signing.pub"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify([]byte(strings.TrimSpace(doc)), "customer1", time.Now())
	if err != nil || p.LicenseID != "L9" {
		t.Errorf("signed licence does not verify: %v (%+v)", err, p)
	}
}

// Without GOGC the service collects at defaultGCPercent; an operator's
// GOGC is left as the runtime read it.
func TestGCPercentDefaultsUnlessGOGCIsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	tuneGC(func(string) (string, bool) { return "", false })
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GC percent without GOGC = %d, want %d", got, defaultGCPercent)
	}
	tuneGC(func(k string) (string, bool) { return "50", k == "GOGC" })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with GOGC set = %d, want it untouched (100)", got)
	}
}

// TestSlowBodiesAndHugeHeaders: a body that arrives slower than
// LC_REQUEST_TIMEOUT is a 408 without socket details (it was a 400 naming
// the addresses), and headers over 64 KiB are refused (1 MiB was taken).
func TestSlowBodiesAndHugeHeaders(t *testing.T) {
	base, _ := server(t, map[string]string{"LC_DATA_DIR": t.TempDir(), "LC_BOOTSTRAP_ADMIN_PASSWORD": "admin-password",
		"LC_REQUEST_TIMEOUT": "500ms"})
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /controller/licensing/v1/account/1/allocation HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\nAuthorization: Basic %s\r\n\r\n{\"name\":", basicToken("admin@customer1", "admin-password"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || strings.Contains(string(body), "127.0.0.1") {
		t.Errorf("slow body: %d %s", res.StatusCode, body)
	}

	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 100<<10))
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB of headers: %d, want 431", r.StatusCode)
	}
}

func basicToken(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// TestReportExportAndVerify: report export writes a report of the
// database that report verify accepts (exit 0), and an edited one it
// refuses naming the checksum (an error: exit 1).
func TestReportExportAndVerify(t *testing.T) {
	vars := map[string]string{"LC_DATA_DIR": t.TempDir(), "LC_BOOTSTRAP_ADMIN_PASSWORD": "admin-password"}
	_, stop := server(t, vars) // bootstraps the database
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := cli(t, vars, "", "report", "export", "--account", "1")
	dir := t.TempDir()
	file := dir + "/report.json"
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := cli(t, vars, "", "report", "verify", file); !strings.Contains(got, "OK") {
		t.Errorf("verify printed %q", got)
	}
	edited := strings.Replace(out, `"total_requests": 0`, `"total_requests": 1`, 1)
	if edited == out {
		t.Fatalf("nothing to edit in %s", out)
	}
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	e, _ := testEnv(vars, "")
	err := run(context.Background(), []string{"report", "verify", file}, e)
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("verify of an edited report: %v, want a checksum failure", err)
	}
}

// TestAdminCommands drives the admin CLI on both stores: account list,
// user list/passwd/delete, api-client list/delete, migrate status and the
// health check against a running service and a stopped one.
func TestAdminCommands(t *testing.T) {
	for name, vars := range engines(t) {
		t.Run(name, func(t *testing.T) {
			if name == "postgres" {
				vars["LC_DATABASE_URL"] = pgtest.URL(t)
			}
			vars["LC_BOOTSTRAP_ADMIN_PASSWORD"] = "admin-password"
			base, stop := server(t, vars)
			vars["LC_HTTP_ADDR"] = strings.TrimPrefix(base, "http://")
			if out := cli(t, vars, "", "healthcheck"); !strings.Contains(out, "ready") {
				t.Errorf("healthcheck printed %q", out)
			}
			if out := cli(t, vars, "", "account", "list"); !strings.Contains(out, "customer1") {
				t.Errorf("account list: %q", out)
			}
			cli(t, vars, "first-password\n", "user", "create", "--account", "customer1", "--name", "carol")
			if out := cli(t, vars, "", "user", "list", "--account", "customer1"); !strings.Contains(out, "carol") || !strings.Contains(out, "admin") {
				t.Errorf("user list: %q", out)
			}
			if code, _ := get(t, base+"/controller/api/accounts/myaccount", "carol@customer1", "first-password"); code != 200 {
				t.Errorf("the first password: %d", code) // and the serving process has it cached now
			}
			cli(t, vars, "second-password\n", "user", "passwd", "--account", "customer1", "--name", "carol")
			if code, _ := get(t, base+"/controller/api/accounts/myaccount", "carol@customer1", "second-password"); code != 200 {
				t.Errorf("the new password: %d", code)
			}
			// The serving process forgets the old one within a second,
			// though the CLI is another process.
			if !eventually(time.Second, func() bool {
				code, _ := get(t, base+"/controller/api/accounts/myaccount", "carol@customer1", "first-password")
				return code == 401
			}) {
				t.Error("the old password still works a second after user passwd")
			}
			cli(t, vars, "", "user", "delete", "--account", "customer1", "--name", "carol")
			if out := cli(t, vars, "", "user", "list", "--account", "customer1"); strings.Contains(out, "carol") {
				t.Errorf("carol is still listed: %q", out)
			}
			cli(t, vars, "", "api-client", "create", "--account", "customer1", "--name", "ci")
			if out := cli(t, vars, "", "api-client", "list", "--account", "customer1"); !strings.Contains(out, "ci@customer1") {
				t.Errorf("api-client list: %q", out)
			}
			// rotate: the new secret works, the old one and its tokens do not.
			out := cli(t, vars, "", "api-client", "create", "--account", "customer1", "--name", "rot")
			oldTok := token(t, base, "rot@customer1", secretOf(t, out))
			if code := bearer(t, base, oldTok); code != 200 {
				t.Fatalf("a token of the new client: %d", code)
			}
			newSecret := secretOf(t, cli(t, vars, "", "api-client", "rotate", "--account", "customer1", "--name", "rot"))
			if !eventually(time.Second, func() bool { return bearer(t, base, oldTok) == 401 }) {
				t.Error("a token issued before rotate still works")
			}
			if code := bearer(t, base, token(t, base, "rot@customer1", newSecret)); code != 200 {
				t.Errorf("a token of the rotated secret: %d", code)
			}
			if code := tokenStatus(t, base, "rot@customer1", secretOf(t, out)); code != 401 {
				t.Errorf("the old secret after rotate: %d", code)
			}
			cli(t, vars, "", "api-client", "delete", "--account", "customer1", "--name", "ci")
			if out := cli(t, vars, "", "api-client", "list", "--account", "customer1"); strings.Contains(out, "ci@customer1") {
				t.Errorf("the client is still listed: %q", out)
			}
			if out := cli(t, vars, "", "migrate", "status"); !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
				t.Errorf("migrate status: %q", out)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			e, _ := testEnv(vars, "")
			if err := run(context.Background(), []string{"healthcheck"}, e); err == nil {
				t.Error("healthcheck of a stopped service succeeded")
			}
		})
	}
}

// Two replicas on one PostgreSQL: /info keeps the account's revision in
// memory, yet a licence installed through one replica shows on the other as
// soon as PostgreSQL announces the change (well before the cache's own
// one-second bound), and on the writing replica at once.
func TestInfoFollowsALicenceInstalledOnAnotherReplica(t *testing.T) {
	keys := t.TempDir()
	cli(t, map[string]string{}, "", "license", "keygen", "--out", keys)
	db := pgtest.URL(t)
	replica := func() string {
		base, _ := server(t, map[string]string{"LC_DATABASE_URL": db, "LC_BOOTSTRAP_ADMIN_PASSWORD": "admin-password",
			"LC_DATA_DIR": t.TempDir(), "LC_LICENSE_PUBLIC_KEYS": keys + "/license-signing.pub"})
		return base
	}
	one, two := replica(), replica()
	info := func(base string) string {
		code, m := get(t, base+"/controller/licensing/v1/account/1/info", "admin@customer1", "admin-password")
		if code != 200 {
			t.Fatalf("info on %s: %d %v", base, code, m)
		}
		id, _ := m["licenseId"].(string)
		return id
	}
	install := func(base, id string) {
		payload := t.TempDir() + "/payload.json"
		if err := os.WriteFile(payload, []byte(`{"licenseId":"`+id+`","accountName":"customer1","expirationDate":"2099-01-01T00:00:00Z",
			"packages":[{"packageName":"PREMIUM","type":"PAID","licenseUnits":100}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		doc := strings.TrimSpace(cli(t, map[string]string{}, "", "license", "sign", "--key", keys+"/license-signing.key", "--in", payload))
		body, _ := json.Marshal(map[string]string{"payload": doc})
		req, _ := http.NewRequest("POST", base+"/controller/licensing/v1/account/1/licenses", bytes.NewReader(body))
		req.SetBasicAuth("admin@customer1", "admin-password")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("install %s: %d", id, res.StatusCode)
		}
	}
	before := info(two)
	for range 20 { // the revision is cached on both, freshly
		info(one)
		info(two)
	}
	install(one, "L-ONE")
	if got := info(one); got != "L-ONE" {
		t.Errorf("the writing replica shows %q, want L-ONE at once", got)
	}
	start := time.Now()
	for got := info(two); got != "L-ONE"; got = info(two) {
		if got != before || time.Since(start) > 300*time.Millisecond {
			t.Fatalf("the other replica shows %q %s after the install, want L-ONE", got, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("the other replica showed the new licence %s after the install", time.Since(start).Round(time.Microsecond))
	install(two, "L-TWO")
	if got := info(two); got != "L-TWO" {
		t.Errorf("the writing replica shows %q, want L-TWO at once", got)
	}
}
