package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Every error kind maps to its status, keeps its code, and 5xx bodies carry
// no internal detail.
func TestErrorMapping(t *testing.T) {
	a := &API{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fault.Invalid("limits[0].units", "must be >= 0"), 400, "VALIDATION_FAILED"},
		{fault.New(fault.ErrUnauthenticated, "INVALID_TOKEN", "x"), 401, "INVALID_TOKEN"},
		{fault.New(fault.ErrForbidden, "DENIED_BY_FILTER", "x"), 403, "DENIED_BY_FILTER"},
		{fmt.Errorf("load allocation 7: %w", fault.New(fault.ErrNotFound, "ALLOCATION_NOT_FOUND", "x")), 404, "ALLOCATION_NOT_FOUND"},
		{fault.New(fault.ErrConflict, "NO_MORE_UNITS", "x"), 409, "NO_MORE_UNITS"},
		{fault.New(fault.ErrUnprocessable, "SOMETHING", "x"), 422, "SOMETHING"},
		{&fault.Error{Kind: fault.ErrThrottled, Code: "TOO_MANY_FAILED_LOGINS", RetryAfterSeconds: 7}, 429, "TOO_MANY_FAILED_LOGINS"},
		{fmt.Errorf("query: %w: dial tcp 10.1.2.3:5432: refused", fault.ErrUnavailable), 503, "UNAVAILABLE"},
		{fmt.Errorf("register: %w: ERROR: deadlock detected on SELECT (SQLSTATE 40P01)", fault.ErrTransient), 503, "TRY_AGAIN"},
		{errors.New(`pq: syntax error at or near "SELECT"`), 500, "INTERNAL"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest("GET", "/", nil)
			a.fail(c, tc.err)
			var p Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.status || p.Status != tc.status || p.Code != tc.code {
				t.Errorf("got %d %s, want %d %s", w.Code, p.Code, tc.status, tc.code)
			}
			if tc.status >= 500 && (strings.Contains(w.Body.String(), "10.1.2.3") || strings.Contains(w.Body.String(), "SELECT")) {
				t.Errorf("5xx body leaks internals: %s", w.Body)
			}
			if tc.status == http.StatusTooManyRequests && w.Header().Get("Retry-After") != "7" {
				t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
			}
			if tc.code == "TRY_AGAIN" && w.Header().Get("Retry-After") != "1" {
				t.Errorf("a transient failure says Retry-After %q, want 1", w.Header().Get("Retry-After"))
			}
		})
	}
}
