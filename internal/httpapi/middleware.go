package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/fault"
)

const (
	ctxRequestID = "lc.requestID"
	ctxPrincipal = "lc.principal"
)

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

func principal(c *gin.Context) auth.Principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(auth.Principal)
	return pr
}

// withRequestID echoes a sane client X-Request-Id or makes one.
func withRequestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		id = uuid.NewString()
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

// recoverPanics turns a handler panic into a 500 problem and logs the stack.
func (a *API) recoverPanics(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			a.log.ErrorContext(c.Request.Context(), "panic", "request_id", requestID(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				a.fail(c, fmt.Errorf("panic: %v", r))
			}
			c.Abort()
		}
	}()
	c.Next()
}

// accessLog writes one structured line per request.
func (a *API) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	p := principal(c)
	who := ""
	if p.Name != "" {
		who = p.String()
	}
	level := slog.LevelInfo
	if c.Writer.Status() == StatusClientClosedRequest {
		level = slog.LevelDebug // the client went away: routine, not news
	}
	a.log.Log(c.Request.Context(), level, "request",
		"request_id", requestID(c),
		"method", c.Request.Method,
		"route", c.FullPath(),
		"path", c.Request.URL.Path,
		"status", c.Writer.Status(),
		"duration_ms", float64(time.Since(start).Microseconds())/1000,
		"bytes", c.Writer.Size(),
		"principal", who,
		"remote", c.ClientIP(),
	)
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lc_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lc_http_request_duration_seconds", Help: "HTTP request duration by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *httpMetrics) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched" // bounded label values: never the raw path
	}
	m.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
	m.duration.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
}

// baseURL is the scheme and host the client used, for absolute links:
// X-Forwarded-Proto and X-Forwarded-Host count only from a trusted proxy.
func (a *API) baseURL(c *gin.Context) string {
	scheme, host := "http", c.Request.Host
	if c.Request.TLS != nil {
		scheme = "https"
	}
	if a.trustedPeer(c) {
		if p := strings.ToLower(strings.TrimSpace(strings.Split(c.GetHeader("X-Forwarded-Proto"), ",")[0])); p == "http" || p == "https" {
			scheme = p
		}
		if h := strings.TrimSpace(strings.Split(c.GetHeader("X-Forwarded-Host"), ",")[0]); h != "" && badText(h) == "" &&
			!strings.ContainsAny(h, "/\\ ") {
			host = h
		}
	}
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// trustedPeer reports whether the request comes straight from one of
// LC_TRUSTED_PROXIES.
func (a *API) trustedPeer(c *gin.Context) bool {
	if len(a.proxies) == 0 {
		return false
	}
	ip, err := netip.ParseAddr(c.RemoteIP())
	if err != nil {
		return false
	}
	for _, p := range a.proxies {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// deadline gives every request LC_REQUEST_TIMEOUT: the database calls
// under it give up then and the client gets 503 TIMEOUT, instead of
// hanging with a hung database.
func (a *API) deadline(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.timeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// limitBody refuses declared oversize bodies at once and caps the others.
func (a *API) limitBody(c *gin.Context) {
	if c.Request.ContentLength > a.maxBody {
		a.problem(c, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE",
			fmt.Sprintf("request body exceeds %d bytes", a.maxBody))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, a.maxBody)
	c.Next()
}

// cleanInput refuses, before authentication, a path parameter, path or
// query value holding NUL or invalid UTF-8 (400 naming it): such bytes
// reach neither the handlers nor the database.
func (a *API) cleanInput(c *gin.Context) {
	for _, p := range c.Params {
		if msg := badText(p.Value); msg != "" {
			a.fail(c, fault.Invalid(p.Key, msg))
			return
		}
	}
	if msg := badText(c.Request.URL.Path); msg != "" {
		a.fail(c, fault.Invalid("path", msg))
		return
	}
	if raw := c.Request.URL.RawQuery; raw != "" {
		q, err := url.ParseQuery(raw)
		if err != nil {
			a.fail(c, fault.Invalid("query", "is not a valid query string"))
			return
		}
		for k, vs := range q {
			if msg := badText(k); msg != "" {
				a.fail(c, fault.Invalid("query", "has a parameter name that "+msg))
				return
			}
			for _, v := range vs {
				if msg := badText(v); msg != "" {
					a.fail(c, fault.Invalid(k, msg))
					return
				}
			}
		}
	}
	c.Next()
}

// cleanBody checks a JSON body's hygiene (one value, no duplicate keys, no
// NUL, invalid UTF-8 or lone surrogates, a UTF-8 charset) before
// authentication, so that bad bytes are a 400 (or 415) whoever sends them;
// the handler reads the same bytes again and checks them against its type.
func (a *API) cleanBody(c *gin.Context) {
	if c.Request.Body == nil || c.Request.ContentLength == 0 || !isJSONType(c.ContentType()) {
		c.Next()
		return
	}
	if !a.jsonContentType(c) {
		return
	}
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if _, err := checkJSON(body, nil); err != nil {
			a.fail(c, err)
			return
		}
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	c.Next()
}

var errNoCredentials = fault.New(fault.ErrUnauthenticated, "UNAUTHENTICATED",
	"credentials required: basic auth user@account:password or a Bearer token")

// authenticate accepts basic auth or a Bearer token and stores the principal.
func (a *API) authenticate(c *gin.Context) {
	ctx := c.Request.Context()
	h := c.GetHeader("Authorization")
	var (
		p   auth.Principal
		err error
	)
	if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		p, err = a.auth.VerifyToken(ctx, strings.TrimSpace(token))
	} else if user, pass, ok := c.Request.BasicAuth(); ok {
		if msg := badText(user); msg != "" {
			err = a.auth.RejectMalformed(ctx, c.ClientIP(), fault.Invalid("Authorization", "user name "+msg))
		} else if msg := badText(pass); msg != "" {
			err = a.auth.RejectMalformed(ctx, c.ClientIP(), fault.Invalid("Authorization", "password "+msg))
		} else {
			p, err = a.auth.AuthenticateBasic(ctx, user, pass, c.ClientIP())
		}
	} else {
		err = errNoCredentials
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Set(ctxPrincipal, p)
	withActor(c, p)
	a.noteWrites(c)
}

// require refuses callers without permission perm.
func (a *API) require(perm auth.Permission) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !principal(c).Can(perm) {
			a.fail(c, &fault.Error{Kind: fault.ErrForbidden, Code: "PERMISSION_DENIED",
				Detail: "permission " + string(perm) + " is required", Extra: map[string]any{"permission": perm}})
			return
		}
		c.Next()
	}
}

// requireAny refuses callers that have none of perms.
func (a *API) requireAny(perms ...auth.Permission) gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range perms {
			if principal(c).Can(p) {
				c.Next()
				return
			}
		}
		a.fail(c, &fault.Error{Kind: fault.ErrForbidden, Code: "PERMISSION_DENIED",
			Detail: fmt.Sprintf("one of the permissions %v is required", perms), Extra: map[string]any{"permission": perms}})
	}
}

// ownAccount makes another account's {accountId} indistinguishable from a
// missing one (404), so that existence is never revealed.
func (a *API) ownAccount(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("accountId"), 10, 64)
	if err != nil || id < 1 {
		a.fail(c, fault.Invalid("accountId", "must be a positive integer, not "+strconv.Quote(c.Param("accountId"))))
		return
	}
	if id != principal(c).AccountID {
		a.fail(c, fault.New(fault.ErrNotFound, "ACCOUNT_NOT_FOUND", "account %q not found", c.Param("accountId")))
		return
	}
	c.Next()
}
