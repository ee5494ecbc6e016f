package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// Service manages an account's endpoints and their deliveries.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service on store; now nil means time.Now.
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// Input is what a client sets on an endpoint. Nil fields keep their
// current value on update (and take their default on create).
type Input struct {
	URL        string
	Events     []string
	Thresholds []int
	Enabled    *bool
	Secret     *string
}

// Sign returns the X-LC-Signature value of body sent at timestamp (unix
// seconds): sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is body's at timestamp under secret.
func Verify(secret, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}

func newSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return "whsec_" + hex.EncodeToString(b), nil
}

// validURL checks an endpoint URL: absolute http(s), a host, no
// credentials (they would show in every listing and log).
func validURL(raw string) *fault.FieldError {
	bad := func(m string) *fault.FieldError { return &fault.FieldError{Field: "url", Message: m} }
	if raw == "" {
		return bad("is required")
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return bad("must not contain spaces or control characters")
	}
	if len(raw) > MaxURLLength {
		return bad(fmt.Sprintf("must be at most %d characters", MaxURLLength))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return bad("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return bad("must name a host")
	case u.User != nil:
		return bad("must not carry credentials; the signature authenticates deliveries")
	case u.Fragment != "":
		return bad("must not have a fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("has a port outside 1-65535")
		}
	}
	return nil
}

func (in Input) apply(w *Webhook, creating bool) error {
	var bad []fault.FieldError
	if in.URL != "" || creating {
		if fe := validURL(in.URL); fe != nil {
			bad = append(bad, *fe)
		}
		w.URL = in.URL
	}
	if in.Events != nil || creating {
		evs := slices.Clone(in.Events)
		if len(evs) == 0 {
			evs = slices.Clone(EventTypes)
		}
		for i, e := range evs {
			if !slices.Contains(EventTypes, e) {
				bad = append(bad, fault.FieldError{Field: "events[" + strconv.Itoa(i) + "]",
					Message: "must be one of " + strings.Join(EventTypes, ", ")})
			}
		}
		slices.Sort(evs)
		w.Events = slices.Compact(evs)
	}
	if in.Thresholds != nil || creating {
		ts := slices.Clone(in.Thresholds)
		if len(ts) == 0 {
			ts = slices.Clone(DefaultThresholds)
		}
		if len(ts) > MaxThresholds {
			bad = append(bad, fault.FieldError{Field: "thresholds", Message: fmt.Sprintf("must have at most %d entries", MaxThresholds)})
		}
		for i, t := range ts {
			if t < 1 || t > 100 {
				bad = append(bad, fault.FieldError{Field: "thresholds[" + strconv.Itoa(i) + "]", Message: "must be a percentage from 1 to 100"})
			}
		}
		slices.Sort(ts)
		w.Thresholds = slices.Compact(ts)
	}
	if in.Enabled != nil {
		w.Enabled = *in.Enabled
	} else if creating {
		w.Enabled = true
	}
	if in.Secret != nil {
		if n := utf8.RuneCountInString(*in.Secret); n < MinSecret || n > MaxSecret {
			bad = append(bad, fault.FieldError{Field: "secret", Message: fmt.Sprintf("must be %d to %d characters", MinSecret, MaxSecret)})
		}
		w.Secret = *in.Secret
	}
	return fault.Invalids(bad)
}

func resource(w Webhook) audit.Resource {
	return audit.Resource{Type: audit.TypeWebhook, ID: w.ID, Name: w.URL}
}

// webhookNotFound turns a store's not-found into WEBHOOK_NOT_FOUND; other
// errors (the database) stay what they are.
func webhookNotFound(id string, err error) error {
	if errors.Is(err, fault.ErrNotFound) {
		return fault.New(fault.ErrNotFound, "WEBHOOK_NOT_FOUND", "webhook %s not found", id)
	}
	return err
}

// Create registers an endpoint; generated says whether the secret was
// made here (the response then shows it, once). Errors: ErrInvalid
// (VALIDATION_FAILED), ErrConflict (TOO_MANY_WEBHOOKS), ErrNotFound.
func (s *Service) Create(ctx context.Context, accountID int64, in Input) (w Webhook, generated bool, err error) {
	now := s.now().UTC()
	w = Webhook{ID: uuid.NewString(), AccountID: accountID, CreatedAt: now, UpdatedAt: now}
	if err := in.apply(&w, true); err != nil {
		return Webhook{}, false, err
	}
	if in.Secret == nil {
		if w.Secret, err = newSecret(); err != nil {
			return Webhook{}, false, err
		}
		generated = true
	}
	err = s.store.InTx(ctx, func(tx Store) error {
		if err := tx.TouchAccount(ctx, accountID); err != nil {
			return err
		}
		all, err := tx.FindWebhooks(ctx, accountID)
		if err != nil {
			return err
		}
		if len(all) >= MaxWebhooks {
			return fault.New(fault.ErrConflict, "TOO_MANY_WEBHOOKS", "an account has at most %d webhooks", MaxWebhooks)
		}
		if err := tx.CreateWebhook(ctx, &w); err != nil {
			return err
		}
		return audit.Record(ctx, tx, accountID, now, audit.Create, resource(w), nil, w.snapshot())
	})
	if err != nil {
		return Webhook{}, false, fmt.Errorf("create webhook: %w", err)
	}
	return w, generated, nil
}

// Update changes an endpoint. Errors: ErrNotFound (WEBHOOK_NOT_FOUND), ErrInvalid.
func (s *Service) Update(ctx context.Context, accountID int64, id string, in Input) (Webhook, error) {
	var w Webhook
	err := s.store.InTx(ctx, func(tx Store) error {
		if err := tx.TouchAccount(ctx, accountID); err != nil {
			return err
		}
		before, err := tx.FindWebhook(ctx, accountID, id)
		if err != nil {
			return webhookNotFound(id, err)
		}
		w = before
		if err := in.apply(&w, false); err != nil {
			return err
		}
		w.UpdatedAt = s.now().UTC()
		if err := tx.UpdateWebhook(ctx, &w); err != nil {
			return err
		}
		after := w.snapshot()
		after.SecretChanged = in.Secret != nil && *in.Secret != before.Secret
		return audit.Record(ctx, tx, accountID, w.UpdatedAt, audit.Update, resource(w), before.snapshot(), after)
	})
	if err != nil {
		return Webhook{}, fmt.Errorf("update webhook: %w", err)
	}
	return w, nil
}

// Delete removes an endpoint with its deliveries. Errors: ErrNotFound.
func (s *Service) Delete(ctx context.Context, accountID int64, id string) error {
	err := s.store.InTx(ctx, func(tx Store) error {
		if err := tx.TouchAccount(ctx, accountID); err != nil {
			return err
		}
		w, err := tx.FindWebhook(ctx, accountID, id)
		if err != nil {
			return webhookNotFound(id, err)
		}
		if err := tx.DeleteWebhook(ctx, accountID, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, accountID, s.now(), audit.Delete, resource(w), w.snapshot(), nil)
	})
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// Webhook returns one endpoint. Errors: ErrNotFound (WEBHOOK_NOT_FOUND).
func (s *Service) Webhook(ctx context.Context, accountID int64, id string) (Webhook, error) {
	w, err := s.store.FindWebhook(ctx, accountID, id)
	if err != nil {
		return Webhook{}, fmt.Errorf("find webhook: %w", webhookNotFound(id, err))
	}
	return w, nil
}

// Webhooks lists the account's endpoints.
func (s *Service) Webhooks(ctx context.Context, accountID int64) ([]Webhook, error) {
	ws, err := s.store.FindWebhooks(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return ws, nil
}

// Deliveries pages through an endpoint's deliveries, newest first.
// Errors: ErrNotFound (WEBHOOK_NOT_FOUND).
func (s *Service) Deliveries(ctx context.Context, accountID int64, webhookID string, offset, limit int) ([]Delivery, error) {
	if _, err := s.Webhook(ctx, accountID, webhookID); err != nil {
		return nil, err
	}
	ds, err := s.store.FindDeliveries(ctx, accountID, webhookID, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return ds, nil
}

// Redeliver sends a delivery (of endpoint webhookID, when not empty)
// again now, with a new day of retries. Errors: ErrNotFound (DELIVERY_NOT_FOUND).
func (s *Service) Redeliver(ctx context.Context, accountID int64, webhookID, id string) (Delivery, error) {
	var d Delivery
	err := s.store.InTx(ctx, func(tx Store) error {
		var err error
		d, err = tx.FindDelivery(ctx, accountID, id)
		if errors.Is(err, fault.ErrNotFound) || err == nil && webhookID != "" && d.WebhookID != webhookID {
			return fault.New(fault.ErrNotFound, "DELIVERY_NOT_FOUND", "delivery %s not found", id)
		}
		if err != nil {
			return err
		}
		now := s.now().UTC()
		d.Status, d.NextAttemptAt, d.GiveUpAt, d.UpdatedAt = StatusPending, &now, now.Add(RetryFor), now
		return tx.SaveDelivery(ctx, d, nil)
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("redeliver: %w", err)
	}
	return d, nil
}

// Ping queues a ping event to the endpoint (enabled or not) and returns
// its delivery. Errors: ErrNotFound (WEBHOOK_NOT_FOUND).
func (s *Service) Ping(ctx context.Context, accountID int64, id string) (Delivery, error) {
	w, err := s.Webhook(ctx, accountID, id)
	if err != nil {
		return Delivery{}, err
	}
	n, err := s.store.CountPending(ctx, accountID, id, EventPing)
	if err != nil {
		return Delivery{}, fmt.Errorf("ping: %w", err)
	}
	if n >= MaxPendingPings {
		return Delivery{}, &fault.Error{Kind: fault.ErrThrottled, Code: "TOO_MANY_PINGS", RetryAfterSeconds: 10,
			Detail: fmt.Sprintf("%d pings to this endpoint are still pending: wait for them (see its deliveries)", n)}
	}
	now := s.now().UTC()
	ev := newEvent(EventPing, accountID, now, map[string]any{"webhookId": w.ID, "url": w.URL})
	d, err := ev.deliveryTo(w.ID, now)
	if err != nil {
		return Delivery{}, err
	}
	if err := s.store.AddDeliveries(ctx, []Delivery{d}); err != nil {
		return Delivery{}, fmt.Errorf("ping: %w", err)
	}
	return d, nil
}

// event is the body of a delivery (API.md §14).
type event struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	At        time.Time `json:"at"`
	AccountID int64     `json:"accountId"`
	Data      any       `json:"data"`
}

func newEvent(typ string, accountID int64, at time.Time, data any) event {
	return event{ID: uuid.NewString(), Type: typ, At: at.UTC(), AccountID: accountID, Data: data}
}

func (e event) deliveryTo(webhookID string, now time.Time) (Delivery, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return Delivery{}, fmt.Errorf("encode %s event: %w", e.Type, err)
	}
	return Delivery{ID: uuid.NewString(), WebhookID: webhookID, AccountID: e.AccountID, EventID: e.ID, EventType: e.Type,
		Body: body, Status: StatusPending, Attempts: []Attempt{}, NextAttemptAt: &now, GiveUpAt: now.Add(RetryFor),
		CreatedAt: now, UpdatedAt: now}, nil
}
