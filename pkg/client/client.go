// Package client is the typed Go client of the licensing-controller API:
// licences and account information, allocations, licence rules, agent
// registrations (leases) with batch heartbeats, grouped usage, usage time
// series, analytics and the AppDynamics inventory.
//
// A Client is safe for concurrent use. It authenticates with HTTP Basic
// (user@account and password) or as an OAuth API client (client
// credentials: the token is cached and renewed before it expires), passes
// the caller's context to every request, turns problem answers (RFC 9457)
// into *Error values that errors.Is can test (client.IsNoMoreUnits(err)),
// and retries with exponential back-off, honouring Retry-After, when the
// service is unavailable (503, TRY_AGAIN) or the connection fails, for
// calls that are safe to repeat: reads, replacements, deletions,
// registrations (idempotent by agentId) and heartbeats.
//
// The package has its own request and response types and imports nothing
// of the service.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Options configure a Client. BaseURL and AccountID are required, and one
// way to authenticate: User and Password, or ClientID and ClientSecret.
type Options struct {
	// BaseURL is the service's root, e.g. "http://localhost:8080".
	BaseURL string
	// AccountID is the numeric account of the paths (1 for customer1).
	AccountID int64
	// User is "user@account" (or "user" for the service's default account).
	User, Password string
	// ClientID is "client@account" of an API client, ClientSecret its secret.
	ClientID, ClientSecret string
	// HTTPClient makes the requests (default: one with a 30 s timeout).
	HTTPClient *http.Client
	// MaxRetries is how many times a retryable call is repeated (default 4;
	// negative: never).
	MaxRetries int
	// MinBackoff and MaxBackoff bound the waits between tries (defaults
	// 100 ms and 5 s); a Retry-After of the service is honoured up to
	// MaxRetryAfter (default 30 s).
	MinBackoff, MaxBackoff, MaxRetryAfter time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// Client calls one account of a licensing-controller.
type Client struct {
	opt  Options
	base *url.URL
	http *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time
}

// New returns a Client, or an error when the options are incomplete.
func New(opt Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(opt.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: BaseURL %q must be an absolute http(s) URL", opt.BaseURL)
	}
	if opt.AccountID <= 0 {
		return nil, errors.New("client: AccountID must be positive")
	}
	if (opt.User == "") == (opt.ClientID == "") {
		return nil, errors.New("client: set User and Password, or ClientID and ClientSecret")
	}
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 4
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = 100 * time.Millisecond
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 5 * time.Second
	}
	if opt.MaxRetryAfter <= 0 {
		opt.MaxRetryAfter = 30 * time.Second
	}
	if opt.UserAgent == "" {
		opt.UserAgent = "licensing-controller-go-client"
	}
	return &Client{opt: opt, base: u, http: opt.HTTPClient}, nil
}

// AccountID is the account the client calls.
func (c *Client) AccountID() int64 { return c.opt.AccountID }

// licensing is the path of the account under /controller/licensing/v1.
func (c *Client) licensing(format string, args ...any) string {
	return fmt.Sprintf("/controller/licensing/v1/account/%d", c.opt.AccountID) + fmt.Sprintf(format, args...)
}

// call is one API call.
type call struct {
	method, path string
	query        url.Values
	body         any // JSON-encoded when not nil
	// retry: the call is safe to repeat.
	retry bool
	// ok are the statuses that are success (default: any 2xx).
	ok []int
	// accept is the Accept header (default application/json).
	accept string
}

// Response is what a call answered besides its body.
type Response struct {
	Status    int
	RequestID string
	Header    http.Header
}

// do runs c, decoding a success body into out (when not nil; an io.Writer
// receives it raw), and returns the answer's status and request id.
func (c *Client) do(ctx context.Context, cl call, out any) (Response, error) {
	var payload []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return Response{}, fmt.Errorf("client: encode %s %s: %w", cl.method, cl.path, err)
		}
		payload = b
	}
	if !cl.retry || c.opt.MaxRetries < 0 {
		res, _, err := c.once(ctx, cl, payload, out)
		return res, err
	}
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval, policy.MaxInterval, policy.Multiplier = c.opt.MinBackoff, c.opt.MaxBackoff, 2
	lost := false // an earlier try may have reached the service and lost its answer
	res, err := backoff.Retry(ctx, func() (Response, error) {
		res, wait, err := c.once(ctx, cl, payload, out)
		var ce *Error
		switch {
		case err == nil:
			return res, nil
		case lost && cl.method == http.MethodDelete && errors.As(err, &ce) && ce.Status == http.StatusNotFound:
			// The deletion a lost answer belonged to took place.
			return res, nil
		case !errors.As(err, &ce) && wait == 0:
			lost = true
		case wait < 0:
			return res, backoff.Permanent(err)
		case wait > 0:
			return res, &retryAfter{err: err, after: wait}
		}
		return res, err
	}, backoff.WithBackOff(policy), backoff.WithMaxTries(uint(c.opt.MaxRetries)+1), backoff.WithMaxElapsedTime(0))
	var ra *retryAfter
	if errors.As(err, &ra) {
		err = ra.err
	}
	// backoff returns the last try's error still wrapped as permanent
	// when it stops for the number of tries.
	var pe *backoff.PermanentError
	if errors.As(err, &pe) {
		err = pe.Unwrap()
	}
	return res, err
}

// retryAfter is a retryable failure with the service's Retry-After: the
// back-off waits that long.
type retryAfter struct {
	err   error
	after time.Duration
}

func (r *retryAfter) Error() string { return r.err.Error() }

func (r *retryAfter) Unwrap() []error {
	return []error{r.err, &backoff.RetryAfterError{Duration: r.after}}
}

// once makes one try. wait says whether and when to retry: -1 never, 0
// after the back-off, > 0 after that long (the service's Retry-After).
func (c *Client) once(ctx context.Context, cl call, payload []byte, out any) (Response, time.Duration, error) {
	u := *c.base
	u.Path += cl.path
	u.RawQuery = cl.query.Encode()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return Response{}, -1, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	accept := cl.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", c.opt.UserAgent)
	if err := c.authorize(ctx, req); err != nil {
		// Bad client credentials stay bad, and every try would count as a
		// failed login: only an unreachable or unavailable token endpoint
		// is tried again.
		var ce *Error
		if errors.As(err, &ce) && ce.Status < 500 {
			return Response{}, -1, err
		}
		return Response{}, 0, err
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, -1, fmt.Errorf("client: %s %s: %w", cl.method, cl.path, ctx.Err())
		}
		return Response{}, retryableNetError(err), fmt.Errorf("client: %s %s: %w", cl.method, cl.path, err)
	}
	defer res.Body.Close()
	r := Response{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id"), Header: res.Header}
	if res.StatusCode == http.StatusUnauthorized && c.opt.ClientID != "" {
		// The token may have been revoked or expired early: renew it once.
		c.mu.Lock()
		c.token = ""
		c.mu.Unlock()
	}
	if !success(res.StatusCode, cl.ok) {
		e := problemOf(res)
		wait := time.Duration(-1)
		switch {
		case res.StatusCode == http.StatusServiceUnavailable, e.Code == "TRY_AGAIN",
			res.StatusCode == http.StatusBadGateway, res.StatusCode == http.StatusGatewayTimeout:
			wait = min(e.RetryAfter, c.opt.MaxRetryAfter)
		case res.StatusCode == http.StatusUnauthorized && c.opt.ClientID != "":
			wait = 0
		}
		return r, wait, e
	}
	switch o := out.(type) {
	case nil:
		_, err = io.Copy(io.Discard, res.Body)
	case io.Writer:
		_, err = io.Copy(o, res.Body)
	default:
		err = json.NewDecoder(res.Body).Decode(out)
	}
	if err != nil {
		// The call took place: an answer that does not decode is not
		// sent again (only a connection cut while reading it is).
		wait := time.Duration(-1)
		if !isDecodeError(err) && retryableNetError(err) == 0 {
			wait = 0
		}
		return r, wait, fmt.Errorf("client: read the answer of %s %s (request %s): %w", cl.method, cl.path, r.RequestID, err)
	}
	return r, -1, nil
}

func success(status int, ok []int) bool {
	if len(ok) == 0 {
		return status >= 200 && status < 300
	}
	for _, s := range ok {
		if s == status {
			return true
		}
	}
	return false
}

// isDecodeError reports a well-delivered answer of the wrong shape.
func isDecodeError(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te)
}

// retryableNetError: connection failures are retried; others (a bad URL,
// a certificate) are not.
func retryableNetError(err error) time.Duration {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return 0
	}
	return -1
}

// problemOf reads a non-success answer as an *Error.
func problemOf(res *http.Response) *Error {
	e := &Error{Status: res.StatusCode, Title: http.StatusText(res.StatusCode), RequestID: res.Header.Get("X-Request-Id")}
	if ra := res.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var p struct {
		Title    string       `json:"title"`
		Code     string       `json:"code"`
		Detail   string       `json:"detail"`
		Errors   []FieldError `json:"errors"`
		Decision *Decision    `json:"decision"`
		// OAuth errors (RFC 6749).
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(b, &p) == nil {
		e.Code, e.Detail, e.Fields, e.Decision = p.Code, p.Detail, p.Errors, p.Decision
		if p.Title != "" {
			e.Title = p.Title
		}
		if e.Code == "" && p.Error != "" {
			e.Code, e.Detail = strings.ToUpper(p.Error), p.ErrorDescription
		}
	} else if s := strings.TrimSpace(string(b)); s != "" && len(s) < 200 {
		e.Detail = s
	}
	return e
}

// authorize sets the request's credentials, fetching a token when needed.
func (c *Client) authorize(ctx context.Context, req *http.Request) error {
	if c.opt.ClientID == "" {
		req.SetBasicAuth(c.opt.User, c.opt.Password)
		return nil
	}
	tok, err := c.accessToken(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// tokenMargin is how long before its expiry a token is renewed.
func tokenMargin(lifetime time.Duration) time.Duration { return min(lifetime/5, 30*time.Second) }

// accessToken is the cached token, renewed when it is close to expiring.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.expires) {
		return c.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.opt.ClientID}, "client_secret": {c.opt.ClientSecret}}
	u := *c.base
	u.Path += "/controller/api/oauth/access_token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("client: access token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opt.UserAgent)
	res, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("client: access token: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("client: access token: %w", problemOf(res))
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(res.Body).Decode(&t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("client: access token: unreadable answer: %v", err)
	}
	life := time.Duration(t.ExpiresIn) * time.Second
	c.token, c.expires = t.AccessToken, time.Now().Add(life-tokenMargin(life))
	return c.token, nil
}
