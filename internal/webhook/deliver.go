package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/jobs"
)

// Delivery timing (API.md §14).
const (
	// RetryFor is how long a delivery is retried before it fails.
	RetryFor = 24 * time.Hour
	// Timeout bounds one attempt.
	Timeout = 10 * time.Second
	// RetryBase is the wait after the first failed attempt; it doubles
	// with each further one, up to RetryCap, with jitter.
	RetryBase = time.Second
	RetryCap  = time.Hour
)

// DelivererOptions tune a Deliverer; zero values take the defaults above.
type DelivererOptions struct {
	Client    *http.Client // nil: one with Timeout that never follows redirects (see client)
	RetryBase time.Duration
	Workers   int // concurrent attempts, default 8
	UserAgent string
	Now       func() time.Time
	// DenyPrivate refuses to connect to loopback, private, link-local and
	// other non-public addresses (LC_WEBHOOK_DENY_PRIVATE): then no
	// account admin can make the service call into its own network. It is
	// checked on the address dialled, after DNS, so a name that resolves
	// to such an address is refused too.
	DenyPrivate bool
}

// errPrivateAddress is a delivery refused by DenyPrivate.
var errPrivateAddress = errors.New("the address is not public and LC_WEBHOOK_DENY_PRIVATE is set")

// public reports whether ip may be called with DenyPrivate set.
func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() &&
		!ip.IsInterfaceLocalMulticast() && !ip.IsMulticast() && !ip.IsUnspecified() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) // carrier-grade NAT
}

// client is the HTTP client of deliveries: the timeout, no redirects (a
// redirect is an answer, not a new address to sign for), no proxy from
// the environment, and with denyPrivate a dialler that checks the address.
func client(denyPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: Timeout}
	if denyPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip, err := netip.ParseAddr(host); err != nil || !public(ip) {
				return errPrivateAddress
			}
			return nil
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = dialer.DialContext
	return &http.Client{Timeout: Timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Deliverer sends due deliveries. Run it on the leader.
type Deliverer struct {
	store Store
	opt   DelivererOptions
}

// NewDeliverer returns a Deliverer.
func NewDeliverer(store Store, opt DelivererOptions) *Deliverer {
	if opt.Client == nil {
		opt.Client = client(opt.DenyPrivate)
	}
	if opt.RetryBase <= 0 {
		opt.RetryBase = RetryBase
	}
	if opt.Workers <= 0 {
		opt.Workers = 8
	}
	if opt.UserAgent == "" {
		opt.UserAgent = "licensing-controller-webhooks"
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Deliverer{store: store, opt: opt}
}

// claimMargin is how much longer than its attempts a claim lasts.
const claimMargin = 5 * time.Second

// Deliver sends the deliveries that are due, in rounds of at most one per
// endpoint and Workers in all, until none is due, and returns how many it
// tried. Each round claims only what its workers start at once, for longer than their attempts can take, and an
// attempt is recorded only while its claim holds: a leader that lost its
// lock meanwhile (its successor claimed the delivery again) records
// nothing, and no round starts once ctx ends. Attempts that started are
// recorded even when ctx ends, so that a successor does not send them
// again.
func (d *Deliverer) Deliver(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		now := d.opt.Now().UTC()
		ts, err := d.store.ClaimDeliveries(ctx, now, now.Add(2*Timeout+claimMargin), d.opt.Workers)
		if err != nil {
			return total, fmt.Errorf("claim webhook deliveries: %w", err)
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
		)
		for _, t := range ts {
			wg.Go(func() {
				if err := d.attempt(context.WithoutCancel(ctx), t); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		total += len(ts)
		if err := errors.Join(errs...); err != nil || len(ts) == 0 {
			return total, err
		}
	}
	return total, nil
}

// retryable: 5xx, 429 and no answer at all are worth another try; any
// other answer (4xx, a redirect) will not change by itself.
func retryable(code int) bool {
	return code == 0 || code == http.StatusTooManyRequests || code >= 500
}

// backoff is the wait after the n-th failed attempt: RetryBase·2^(n-1)
// capped at RetryCap, with equal jitter (half fixed, half random), so
// that endpoints that come back are not hit by every retry at once.
func (d *Deliverer) backoff(n int) time.Duration {
	w := d.opt.RetryBase << min(n-1, 30)
	if w <= 0 || w > RetryCap {
		w = RetryCap
	}
	return w/2 + rand.N(w/2+1)
}

func (d *Deliverer) attempt(ctx context.Context, t Target) error {
	start := d.opt.Now().UTC()
	a := Attempt{At: start}
	var retryAfter time.Duration
	if !t.Enabled && t.EventType != EventPing {
		a.Error = "webhook disabled"
	} else {
		a.StatusCode, retryAfter, a.Error = d.send(ctx, t, start)
	}
	a.DurationMS = d.opt.Now().Sub(start).Milliseconds()
	dl := t.Delivery
	dl.Attempts = append(dl.Attempts, a)
	dl.UpdatedAt = d.opt.Now().UTC()
	switch {
	case a.StatusCode >= 200 && a.StatusCode < 300:
		dl.Status, dl.NextAttemptAt = StatusDelivered, nil
	case a.Error == "webhook disabled" || !retryable(a.StatusCode):
		dl.Status, dl.NextAttemptAt = StatusFailed, nil
	default:
		next := dl.UpdatedAt.Add(max(d.backoff(len(dl.Attempts)), min(retryAfter, RetryCap)))
		if next.After(dl.GiveUpAt) {
			dl.Status, dl.NextAttemptAt = StatusFailed, nil
		} else {
			dl.NextAttemptAt = &next
		}
	}
	err := d.store.SaveDelivery(ctx, dl, &t.ClaimedUntil)
	switch {
	case errors.Is(err, fault.ErrConflict), errors.Is(err, fault.ErrNotFound):
		// Claimed again (a redeliver, a new leader) or deleted with its
		// endpoint meanwhile: this attempt is no longer ours to record.
		return nil
	case err != nil:
		return fmt.Errorf("record delivery %s: %w", dl.ID, err)
	}
	return nil
}

// send posts the delivery once and returns the status code (0 without an
// answer), the wait a 429 or 503 asked for, and what went wrong.
func (d *Deliverer) send(ctx context.Context, t Target, at time.Time) (int, time.Duration, string) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(t.Body))
	if err != nil {
		return 0, 0, "bad URL: " + err.Error()
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.opt.UserAgent)
	req.Header.Set("X-LC-Event", t.EventType)
	req.Header.Set("X-LC-Delivery", t.ID)
	req.Header.Set("X-LC-Timestamp", ts)
	req.Header.Set("X-LC-Signature", Sign(t.Secret, ts, t.Body))
	resp, err := d.opt.Client.Do(req)
	if err != nil {
		return 0, 0, describe(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	var wait time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		wait = time.Duration(s) * time.Second
	}
	msg := ""
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		msg = "HTTP " + resp.Status
	}
	return resp.StatusCode, wait, msg
}

// DeliveryRetention is how long delivered and failed deliveries stay
// listed.
const DeliveryRetention = 30 * 24 * time.Hour

// Jobs are the webhook jobs of the leader: fan-out of the outbox, the
// time-driven checks, delivery, and pruning of old deliveries.
func Jobs(d *Dispatcher, del *Deliverer) []jobs.Job {
	return []jobs.Job{
		{Name: JobDispatch, Interval: 500 * time.Millisecond, Run: d.Dispatch},
		{Name: JobChecks, Interval: 5 * time.Second, Run: d.Check},
		{Name: JobDeliver, Interval: 500 * time.Millisecond, Run: func(ctx context.Context) error {
			_, err := del.Deliver(ctx)
			return err
		}},
		{Name: JobPrune, Interval: time.Hour, Run: func(ctx context.Context) error {
			for {
				n, err := d.store.PruneDeliveries(ctx, d.now(), 5000)
				if err != nil || n < 5000 {
					return err
				}
			}
		}},
	}
}

// describe says why an attempt got no answer, in words that do not hand
// the endpoint's owner the service's network details (its resolver, its
// addresses).
func describe(err error) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, errPrivateAddress):
		return "refused: " + errPrivateAddress.Error()
	case errors.As(err, &dns):
		return "DNS lookup of " + dns.Name + " failed"
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return fmt.Sprintf("no answer within %s", Timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	}
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return "TLS: the endpoint's certificate is not trusted"
	}
	return "connection failed"
}
