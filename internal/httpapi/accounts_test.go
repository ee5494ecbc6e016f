package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

func TestMyAccount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		r := f.do(t, admin("GET", "/controller/api/accounts/myaccount?output=JSON", nil))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		m := r.json(t)
		if m["id"] != float64(1) || m["name"] != "customer1" || !strings.HasPrefix(m["globalAccountName"].(string), "customer1_") {
			t.Errorf("myaccount = %v", m)
		}
	})
}

func TestAuthentication(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		const path = "/controller/api/accounts/myaccount"

		r := f.do(t, req{method: "GET", path: path})
		wantProblem(t, r, http.StatusUnauthorized, "UNAUTHENTICATED")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic realm=\"controller\"") {
			t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
		}
		wantProblem(t, f.do(t, req{method: "GET", path: path, user: "admin@customer1", pass: "wrong"}), http.StatusUnauthorized, "INVALID_CREDENTIALS")

		r = f.do(t, req{method: "GET", path: path, token: "garbage"})
		wantProblem(t, r, http.StatusUnauthorized, "INVALID_TOKEN")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate for a bad token = %q", r.header.Get("WWW-Authenticate"))
		}

		var last resp
		for range 25 {
			last = f.do(t, req{method: "GET", path: path, user: "admin@customer1", pass: "wrong"})
		}
		wantProblem(t, last, http.StatusTooManyRequests, "TOO_MANY_FAILED_LOGINS")
		if last.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	})
}

func TestAPIClientsAndOAuth(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		r := f.do(t, admin("POST", "/controller/api/accounts/1/api-clients", map[string]any{"name": "x", "role": "license-viewer"}))
		if r.status != http.StatusCreated {
			t.Fatalf("create client: %d %s", r.status, r.body)
		}
		created := r.json(t)
		secret, _ := created["secret"].(string)
		if secret == "" || created["clientId"] != "x@customer1" {
			t.Fatalf("create response = %v", created)
		}
		r = f.do(t, admin("GET", "/controller/api/accounts/1/api-clients", nil))
		if r.status != http.StatusOK || strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), `"secret"`) {
			t.Errorf("list shows the secret again or failed: %d %s", r.status, r.body)
		}

		tokenReq := func(id, secret string) resp {
			return f.do(t, req{method: "POST", path: "/controller/api/oauth/access_token", body: url.Values{
				"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}})
		}
		r = tokenReq("x@customer1", "wrong")
		if r.status != http.StatusUnauthorized || r.json(t)["error"] != "invalid_client" {
			t.Errorf("bad secret: %d %s", r.status, r.body)
		}
		r = tokenReq("x@customer1", secret)
		if r.status != http.StatusOK {
			t.Fatalf("token: %d %s", r.status, r.body)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if err := json.Unmarshal(r.body, &tok); err != nil || tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 300 {
			t.Fatalf("token response %s (%v)", r.body, err)
		}

		r = f.do(t, req{method: "GET", path: "/controller/api/accounts/myaccount", token: tok.AccessToken,
			header: map[string]string{"Accept": "application/vnd.appd.cntrl+json;v=1"}})
		if r.status != http.StatusOK || r.json(t)["name"] != "customer1" {
			t.Errorf("myaccount with token: %d %s", r.status, r.body)
		}
		r = f.do(t, req{method: "POST", path: "/controller/api/accounts/1/users", token: tok.AccessToken,
			body: map[string]any{"name": "eve", "role": "account-owner", "password": "password123"}})
		m := wantProblem(t, r, http.StatusForbidden, "PERMISSION_DENIED")
		if m["permission"] != "ACCOUNT_ADMIN" || !strings.Contains(m["detail"].(string), "ACCOUNT_ADMIN") {
			t.Errorf("403 does not name the permission: %v", m)
		}

		if r := f.do(t, admin("DELETE", "/controller/api/accounts/1/api-clients/x", nil)); r.status != http.StatusNoContent {
			t.Fatalf("delete client: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, req{method: "GET", path: "/controller/api/accounts/myaccount", token: tok.AccessToken}),
			http.StatusUnauthorized, "INVALID_TOKEN")
		wantProblem(t, f.do(t, admin("DELETE", "/controller/api/accounts/1/api-clients/x", nil)), http.StatusNotFound, "CLIENT_NOT_FOUND")

		for name, form := range map[string]url.Values{
			"no grant":      {"client_id": {"x@customer1"}, "client_secret": {"s"}},
			"wrong grant":   {"grant_type": {"password"}, "client_id": {"x@customer1"}, "client_secret": {"s"}},
			"missing creds": {"grant_type": {"client_credentials"}},
		} {
			r := f.do(t, req{method: "POST", path: "/controller/api/oauth/access_token", body: form})
			if r.status != http.StatusBadRequest || r.json(t)["error"] == "" {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
	})
}

func TestUsersEndpoints(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		users := "/controller/api/accounts/1/users"
		if r := f.do(t, admin("POST", users, map[string]any{"name": "bob", "role": "license-viewer", "password": "bob-password"})); r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, admin("POST", users, map[string]any{"name": "bob", "role": "license-viewer", "password": "bob-password"})), http.StatusConflict, "USER_EXISTS")
		bob := req{method: "GET", path: "/controller/api/accounts/myaccount", user: "bob@customer1", pass: "bob-password"}
		if r := f.do(t, bob); r.status != http.StatusOK {
			t.Fatalf("bob: %d %s", r.status, r.body)
		}
		if r := f.do(t, admin("PUT", users+"/bob", map[string]any{"password": "bob-new-password"})); r.status != http.StatusOK {
			t.Fatalf("change password: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, bob), http.StatusUnauthorized, "INVALID_CREDENTIALS")
		bob.pass = "bob-new-password"
		if r := f.do(t, bob); r.status != http.StatusOK {
			t.Errorf("bob with new password: %d %s", r.status, r.body)
		}
		r := f.do(t, admin("GET", users, nil))
		var list []map[string]any
		if err := json.Unmarshal(r.body, &list); err != nil || len(list) != 2 || strings.Contains(string(r.body), "password") {
			t.Errorf("list users: %s (%v)", r.body, err)
		}
		if r := f.do(t, admin("DELETE", users+"/bob", nil)); r.status != http.StatusNoContent {
			t.Errorf("delete: %d %s", r.status, r.body)
		}
		wantProblem(t, f.do(t, bob), http.StatusUnauthorized, "INVALID_CREDENTIALS")
		wantProblem(t, f.do(t, admin("DELETE", users+"/bob", nil)), http.StatusNotFound, "USER_NOT_FOUND")
	})
}

func TestTenancy(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ctx := context.Background()
		acme, err := f.auth.CreateAccount(ctx, "acme", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.auth.CreateUser(ctx, acme.ID, "bob", auth.RoleAccountOwner, "bob-password"); err != nil {
			t.Fatal(err)
		}
		bob := func(method, path string) req {
			return req{method: method, path: path, user: "bob@acme", pass: "bob-password"}
		}
		r := f.do(t, bob("GET", "/controller/api/accounts/myaccount"))
		if r.status != http.StatusOK || r.json(t)["name"] != "acme" || r.json(t)["id"] != float64(acme.ID) {
			t.Errorf("bob's myaccount: %d %s", r.status, r.body)
		}
		for _, p := range []string{"/controller/api/accounts/1/users", "/controller/api/accounts/1/api-clients", "/controller/api/accounts/999/users"} {
			wantProblem(t, f.do(t, bob("GET", p)), http.StatusNotFound, "ACCOUNT_NOT_FOUND")
		}
		// A malformed account id is bad input (API.md §0), not an unknown account.
		wantProblem(t, f.do(t, bob("GET", "/controller/api/accounts/x/users")), http.StatusBadRequest, "VALIDATION_FAILED")
		if r := f.do(t, bob("GET", "/controller/api/accounts/2/users")); r.status != http.StatusOK {
			t.Errorf("bob on his own account: %d %s", r.status, r.body)
		}
	})
}

// countUsers returns the number of users of account 1.
func countUsers(t *testing.T, f *fixture) int {
	t.Helper()
	us, err := f.auth.Users(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return len(us)
}

func TestBadInputChangesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		users := "/controller/api/accounts/1/users"
		before := countUsers(t, f)
		big := []byte(`{"name":"` + strings.Repeat("a", 2<<20) + `"}`)
		for _, tc := range []struct {
			name   string
			r      req
			status int
			code   string
			field  string
		}{
			{"malformed JSON", admin("POST", users, `{"name":`), 400, "VALIDATION_FAILED", "body"},
			{"not JSON", admin("POST", users, `hello`), 400, "VALIDATION_FAILED", "body"},
			{"empty body", admin("POST", users, ``), 400, "VALIDATION_FAILED", "body"},
			{"unknown field", admin("POST", users, `{"name":"z","role":"license-viewer","password":"password1","nmae":"x"}`), 400, "VALIDATION_FAILED", "nmae"},
			{"wrong type", admin("POST", users, `{"name":5,"role":"license-viewer","password":"password1"}`), 400, "VALIDATION_FAILED", "name"},
			{"missing field", admin("POST", users, `{"name":"z","role":"license-viewer"}`), 400, "VALIDATION_FAILED", "password"},
			{"bad role", admin("POST", users, `{"name":"z","role":"god","password":"password1"}`), 400, "VALIDATION_FAILED", "role"},
			{"bad name", admin("POST", users, `{"name":"a b","role":"license-viewer","password":"password1"}`), 400, "VALIDATION_FAILED", "name"},
			{"2 MiB body", admin("POST", users, big), 413, "BODY_TOO_LARGE", ""},
			{"form body", req{method: "POST", path: users, user: "admin@customer1", pass: adminPassword, body: url.Values{"name": {"z"}}}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
			{"unknown route", admin("GET", "/controller/api/nope", nil), 404, "NOT_FOUND", ""},
			{"wrong method", admin("PATCH", users, nil), 405, "METHOD_NOT_ALLOWED", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := wantProblem(t, f.do(t, tc.r), tc.status, tc.code)
				if tc.field != "" && !slices.Contains(fieldsOf(m), tc.field) {
					t.Errorf("errors %v do not name %q", m["errors"], tc.field)
				}
			})
		}
		if after := countUsers(t, f); after != before {
			t.Errorf("users: %d before, %d after bad requests", before, after)
		}
	})
}

func TestRequestIDIsEchoed(t *testing.T) {
	f := newFixture(t, storetest.Engines()[0].Open(t))
	r := f.do(t, req{method: "GET", path: "/healthz", header: map[string]string{"X-Request-Id": "abc-123"}})
	if got := r.header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id = %q, want abc-123", got)
	}
}
