package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/webhook"
)

type webhookRow struct {
	ID         string `gorm:"primaryKey"`
	AccountID  int64
	URL        string
	Events     string
	Thresholds string
	Enabled    bool
	Secret     string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

func (webhookRow) TableName() string { return "webhooks" }

type outboxRow struct {
	ID        int64 `gorm:"primaryKey"`
	AccountID int64
	Type      string
	At        time.Time
	Data      string
}

func (outboxRow) TableName() string { return "webhook_outbox" }

type deliveryRow struct {
	ID            string `gorm:"primaryKey"`
	WebhookID     string
	AccountID     int64
	EventID       string
	EventType     string
	Body          string
	Status        string
	Attempts      string
	NextAttemptAt *time.Time
	GiveUpAt      time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (deliveryRow) TableName() string { return "webhook_deliveries" }

type webhookStore struct{ s *Store }

var _ webhook.Store = webhookStore{}

// Webhooks returns the store of webhooks, their outbox and deliveries.
func (s *Store) Webhooks() webhook.Store { return webhookStore{s} }

func (w webhookStore) InTx(ctx context.Context, fn func(webhook.Store) error) error {
	return w.s.InTx(ctx, func(tx *Store) error { return fn(webhookStore{tx}) })
}

func (w webhookStore) AppendAudit(ctx context.Context, e audit.Entry) error {
	return w.s.appendAudit(ctx, e)
}

func (w webhookStore) TouchAccount(ctx context.Context, accountID int64) error {
	res := w.s.conn(ctx).Model(&accountRow{}).Where("id = ?", accountID).Update("revision", gorm.Expr("revision + 1"))
	w.s.afterCommit(func() { w.s.revs.forget(accountID) })
	return affectedOne(res, fmt.Sprintf("account %d", accountID))
}

func toWebhookRow(h *webhook.Webhook) (webhookRow, error) {
	evs, err := json.Marshal(h.Events)
	if err != nil {
		return webhookRow{}, fmt.Errorf("encode webhook events: %w", err)
	}
	ts, err := json.Marshal(h.Thresholds)
	if err != nil {
		return webhookRow{}, fmt.Errorf("encode webhook thresholds: %w", err)
	}
	return webhookRow{ID: h.ID, AccountID: h.AccountID, URL: h.URL, Events: string(evs), Thresholds: string(ts),
		Enabled: h.Enabled, Secret: h.Secret, CreatedAt: h.CreatedAt.UTC(), UpdatedAt: h.UpdatedAt.UTC()}, nil
}

func fromWebhookRow(r webhookRow) (webhook.Webhook, error) {
	h := webhook.Webhook{ID: r.ID, AccountID: r.AccountID, URL: r.URL, Enabled: r.Enabled, Secret: r.Secret,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Events), &h.Events); err != nil {
		return h, fmt.Errorf("decode events of webhook %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Thresholds), &h.Thresholds); err != nil {
		return h, fmt.Errorf("decode thresholds of webhook %s: %w", r.ID, err)
	}
	return h, nil
}

func (w webhookStore) CreateWebhook(ctx context.Context, h *webhook.Webhook) error {
	r, err := toWebhookRow(h)
	if err != nil {
		return err
	}
	if err := w.s.conn(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("insert webhook: %w", translate(err))
	}
	return nil
}

func (w webhookStore) UpdateWebhook(ctx context.Context, h *webhook.Webhook) error {
	r, err := toWebhookRow(h)
	if err != nil {
		return err
	}
	res := w.s.conn(ctx).Model(&webhookRow{}).Where("account_id = ? AND id = ?", h.AccountID, h.ID).
		Select("url", "events", "thresholds", "enabled", "secret", "updated_at").UpdateColumns(&r)
	return affectedOne(res, "update webhook "+h.ID)
}

func (w webhookStore) DeleteWebhook(ctx context.Context, accountID int64, id string) error {
	db := w.s.conn(ctx)
	// SQLite enforces no foreign keys here: the cascade is spelled out.
	for _, q := range []string{
		"DELETE FROM webhook_deliveries WHERE account_id = ? AND webhook_id = ?",
		"DELETE FROM webhook_fired WHERE webhook_id IN (SELECT id FROM webhooks WHERE account_id = ? AND id = ?)",
	} {
		if err := db.Exec(q, accountID, id).Error; err != nil {
			return fmt.Errorf("delete webhook %s: %w", id, translate(err))
		}
	}
	return affectedOne(db.Where("account_id = ? AND id = ?", accountID, id).Delete(&webhookRow{}), "delete webhook "+id)
}

func (w webhookStore) FindWebhook(ctx context.Context, accountID int64, id string) (webhook.Webhook, error) {
	var r webhookRow
	if err := w.s.conn(ctx).Where("account_id = ? AND id = ?", accountID, id).Take(&r).Error; err != nil {
		return webhook.Webhook{}, fmt.Errorf("find webhook %s: %w", id, translate(err))
	}
	return fromWebhookRow(r)
}

func (w webhookStore) FindWebhooks(ctx context.Context, accountID int64) ([]webhook.Webhook, error) {
	db := w.s.conn(ctx)
	if accountID != 0 {
		db = db.Where("account_id = ?", accountID)
	}
	var rows []webhookRow
	if err := db.Order("account_id, created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find webhooks: %w", translate(err))
	}
	out := make([]webhook.Webhook, 0, len(rows))
	for _, r := range rows {
		h, err := fromWebhookRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// addMessages writes outbox rows in the store's transaction.
func (s *Store) addMessages(ctx context.Context, ms []webhook.Message) error {
	if len(ms) == 0 {
		return nil
	}
	rows := make([]outboxRow, len(ms))
	for i, m := range ms {
		rows[i] = outboxRow{AccountID: m.AccountID, Type: m.Type, At: m.At.UTC(), Data: string(m.Data)}
	}
	if err := s.conn(ctx).Create(&rows).Error; err != nil {
		return fmt.Errorf("insert webhook outbox: %w", translate(err))
	}
	return nil
}

func (w webhookStore) AddMessages(ctx context.Context, ms []webhook.Message) error {
	return w.s.addMessages(ctx, ms)
}

// AddMessages writes the engine's outbox rows in its transaction.
func (e engineStore) AddMessages(ctx context.Context, ms []webhook.Message) error {
	return e.s.addMessages(ctx, ms)
}

// WebhookInterest says what the account's endpoints want recorded.
func (e engineStore) WebhookInterest(ctx context.Context, accountID int64) (webhook.Interest, error) {
	hs, err := webhookStore(e).FindWebhooks(ctx, accountID)
	if err != nil {
		return webhook.Interest{}, err
	}
	return webhook.InterestOf(hs), nil
}

// TakeMessages locks the rows it reads on PostgreSQL (skipping rows
// another dispatcher holds), so that two dispatchers of a leader hand-over
// never fan one message out twice.
func (w webhookStore) TakeMessages(ctx context.Context, limit int) ([]webhook.Message, error) {
	var rows []outboxRow
	q := w.s.conn(ctx).Order("id").Limit(limit)
	if w.s.dialect == Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read webhook outbox: %w", translate(err))
	}
	out := make([]webhook.Message, len(rows))
	for i, r := range rows {
		out[i] = webhook.Message{ID: r.ID, AccountID: r.AccountID, Type: r.Type, At: r.At.UTC(), Data: json.RawMessage(r.Data)}
	}
	return out, nil
}

func (w webhookStore) DeleteMessages(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	res := w.s.conn(ctx).Where("id IN ?", ids).Delete(&outboxRow{})
	if res.Error != nil {
		return fmt.Errorf("delete webhook outbox: %w", translate(res.Error))
	}
	if res.RowsAffected != int64(len(ids)) {
		// Another dispatcher took some of them: roll this fan-out back.
		return fmt.Errorf("delete webhook outbox: %d of %d messages gone: %w", int64(len(ids))-res.RowsAffected, len(ids), fault.ErrTransient)
	}
	return nil
}

func toDeliveryRow(d webhook.Delivery) (deliveryRow, error) {
	at, err := json.Marshal(d.Attempts)
	if err != nil {
		return deliveryRow{}, fmt.Errorf("encode delivery attempts: %w", err)
	}
	var next *time.Time
	if d.NextAttemptAt != nil {
		t := d.NextAttemptAt.UTC()
		next = &t
	}
	return deliveryRow{ID: d.ID, WebhookID: d.WebhookID, AccountID: d.AccountID, EventID: d.EventID, EventType: d.EventType,
		Body: string(d.Body), Status: d.Status, Attempts: string(at), NextAttemptAt: next, GiveUpAt: d.GiveUpAt.UTC(),
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}, nil
}

func fromDeliveryRow(r deliveryRow) (webhook.Delivery, error) {
	d := webhook.Delivery{ID: r.ID, WebhookID: r.WebhookID, AccountID: r.AccountID, EventID: r.EventID, EventType: r.EventType,
		Body: []byte(r.Body), Status: r.Status, GiveUpAt: r.GiveUpAt.UTC(), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.NextAttemptAt != nil {
		t := r.NextAttemptAt.UTC()
		d.NextAttemptAt = &t
	}
	if err := json.Unmarshal([]byte(r.Attempts), &d.Attempts); err != nil {
		return d, fmt.Errorf("decode attempts of delivery %s: %w", r.ID, err)
	}
	return d, nil
}

func (w webhookStore) AddDeliveries(ctx context.Context, ds []webhook.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	rows := make([]deliveryRow, len(ds))
	for i, d := range ds {
		r, err := toDeliveryRow(d)
		if err != nil {
			return err
		}
		rows[i] = r
	}
	if err := w.s.conn(ctx).Create(&rows).Error; err != nil {
		return fmt.Errorf("insert webhook deliveries: %w", translate(err))
	}
	return nil
}

func (w webhookStore) FindDeliveries(ctx context.Context, accountID int64, webhookID string, offset, limit int) ([]webhook.Delivery, error) {
	var rows []deliveryRow
	err := w.s.conn(ctx).Where("account_id = ? AND webhook_id = ?", accountID, webhookID).
		Order("created_at DESC, id DESC").Offset(offset).Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("find deliveries: %w", translate(err))
	}
	out := make([]webhook.Delivery, 0, len(rows))
	for _, r := range rows {
		d, err := fromDeliveryRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (w webhookStore) CountPending(ctx context.Context, accountID int64, webhookID, eventType string) (int64, error) {
	var n int64
	err := w.s.conn(ctx).Model(&deliveryRow{}).Where("account_id = ? AND webhook_id = ? AND event_type = ? AND status = ?",
		accountID, webhookID, eventType, webhook.StatusPending).Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count pending deliveries: %w", translate(err))
	}
	return n, nil
}

func (w webhookStore) FindDelivery(ctx context.Context, accountID int64, id string) (webhook.Delivery, error) {
	var r deliveryRow
	if err := w.s.conn(ctx).Where("account_id = ? AND id = ?", accountID, id).Take(&r).Error; err != nil {
		return webhook.Delivery{}, fmt.Errorf("find delivery %s: %w", id, translate(err))
	}
	return fromDeliveryRow(r)
}

// ClaimDeliveries takes the oldest due delivery of each endpoint (one per
// endpoint a round: an endpoint that hangs holds up only its own queue)
// and skips those of disabled endpoints but pings: they wait, for a day,
// for the endpoint to be enabled again.
func (w webhookStore) ClaimDeliveries(ctx context.Context, now, until time.Time, limit int) ([]webhook.Target, error) {
	var out []webhook.Target
	until = until.UTC().Truncate(time.Microsecond) // what PostgreSQL keeps: SaveDelivery compares it
	err := w.s.InTx(ctx, func(tx *Store) error {
		var heads []string
		err := tx.conn(ctx).Raw("SELECT id FROM (SELECT id, next_attempt_at, ROW_NUMBER() OVER (PARTITION BY webhook_id "+
			"ORDER BY next_attempt_at, id) AS n FROM webhook_deliveries WHERE status = ? AND next_attempt_at <= ? "+
			"AND (event_type = ? OR webhook_id IN (SELECT id FROM webhooks WHERE enabled))) due WHERE n = 1 "+
			"ORDER BY next_attempt_at LIMIT ?", webhook.StatusPending, now.UTC(), webhook.EventPing, limit).Scan(&heads).Error
		if err != nil {
			return fmt.Errorf("due deliveries: %w", translate(err))
		}
		if len(heads) == 0 {
			return nil
		}
		q := tx.conn(ctx).Where("id IN ? AND status = ? AND next_attempt_at <= ?", heads, webhook.StatusPending, now.UTC())
		if tx.dialect == Postgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
		}
		var rows []deliveryRow
		if err := q.Find(&rows).Error; err != nil {
			return fmt.Errorf("due deliveries: %w", translate(err))
		}
		if len(rows) == 0 {
			return nil
		}
		ids := make([]string, len(rows))
		hookIDs := map[string]bool{}
		for i, r := range rows {
			ids[i] = r.ID
			hookIDs[r.WebhookID] = true
		}
		if err := tx.conn(ctx).Model(&deliveryRow{}).Where("id IN ?", ids).UpdateColumn("next_attempt_at", until).Error; err != nil {
			return fmt.Errorf("claim deliveries: %w", translate(err))
		}
		var hooks []webhookRow
		keys := make([]string, 0, len(hookIDs))
		for id := range hookIDs {
			keys = append(keys, id)
		}
		if err := tx.conn(ctx).Where("id IN ?", keys).Find(&hooks).Error; err != nil {
			return fmt.Errorf("webhooks of deliveries: %w", translate(err))
		}
		byID := map[string]webhookRow{}
		for _, h := range hooks {
			byID[h.ID] = h
		}
		for _, r := range rows {
			d, err := fromDeliveryRow(r)
			if err != nil {
				return err
			}
			h := byID[r.WebhookID]
			out = append(out, webhook.Target{Delivery: d, URL: h.URL, Secret: h.Secret, Enabled: h.Enabled, ClaimedUntil: until})
		}
		return nil
	})
	return out, err
}

// SaveDelivery writes a delivery; with claimedUntil, only while that claim
// still holds (ErrConflict otherwise: another leader or a redeliver moved it).
func (w webhookStore) SaveDelivery(ctx context.Context, d webhook.Delivery, claimedUntil *time.Time) error {
	r, err := toDeliveryRow(d)
	if err != nil {
		return err
	}
	q := w.s.conn(ctx).Model(&deliveryRow{}).Where("account_id = ? AND id = ?", d.AccountID, d.ID)
	if claimedUntil != nil {
		q = q.Where("status = ? AND next_attempt_at = ?", webhook.StatusPending, claimedUntil.UTC())
	}
	res := q.Select("status", "attempts", "next_attempt_at", "give_up_at", "updated_at").UpdateColumns(&r)
	if res.Error == nil && res.RowsAffected == 0 && claimedUntil != nil {
		return fmt.Errorf("save delivery %s: its claim was taken over: %w", d.ID, fault.ErrConflict)
	}
	return affectedOne(res, "save delivery "+d.ID)
}

// PruneDeliveries fails the pending deliveries past their day of retries
// (those of an endpoint that stayed disabled) and deletes up to limit of
// the ones done longer than webhook.DeliveryRetention ago.
func (w webhookStore) PruneDeliveries(ctx context.Context, now time.Time, limit int) (int, error) {
	err := w.s.conn(ctx).Exec("UPDATE webhook_deliveries SET status = ?, next_attempt_at = NULL WHERE status = ? AND give_up_at < ?",
		webhook.StatusFailed, webhook.StatusPending, now.UTC()).Error
	if err != nil {
		return 0, fmt.Errorf("fail expired deliveries: %w", translate(err))
	}
	res := w.s.conn(ctx).Exec("DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries "+
		"WHERE status <> ? AND updated_at < ? LIMIT ?)", webhook.StatusPending, now.Add(-webhook.DeliveryRetention).UTC(), limit)
	if res.Error != nil {
		return 0, fmt.Errorf("prune deliveries: %w", translate(res.Error))
	}
	return int(res.RowsAffected), nil
}

func (w webhookStore) FiredThresholds(ctx context.Context, webhookID, scope, pkg string) (map[int]int64, error) {
	var rows []struct {
		Threshold  int
		LimitUnits int64
	}
	err := w.s.conn(ctx).Raw("SELECT threshold, limit_units FROM webhook_fired WHERE webhook_id = ? AND scope = ? AND package = ?",
		webhookID, scope, pkg).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("threshold state: %w", translate(err))
	}
	out := make(map[int]int64, len(rows))
	for _, r := range rows {
		out[r.Threshold] = r.LimitUnits
	}
	return out, nil
}

func (w webhookStore) SetFired(ctx context.Context, webhookID, scope, pkg string, threshold int, limit int64, fired bool) error {
	db := w.s.conn(ctx)
	var err error
	if fired {
		err = db.Exec("INSERT INTO webhook_fired (webhook_id, scope, package, threshold, limit_units) VALUES (?, ?, ?, ?, ?) "+
			"ON CONFLICT (webhook_id, scope, package, threshold) DO UPDATE SET limit_units = excluded.limit_units",
			webhookID, scope, pkg, threshold, limit).Error
	} else {
		err = db.Exec("DELETE FROM webhook_fired WHERE webhook_id = ? AND scope = ? AND package = ? AND threshold = ?",
			webhookID, scope, pkg, threshold).Error
	}
	if err != nil {
		return fmt.Errorf("threshold state: %w", translate(err))
	}
	return nil
}

func (w webhookStore) AddNotice(ctx context.Context, accountID int64, licenseID, notice string, at time.Time) (bool, error) {
	res := w.s.conn(ctx).Exec("INSERT INTO webhook_notices (account_id, license_id, notice, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
		accountID, licenseID, notice, at.UTC())
	if res.Error != nil {
		return false, fmt.Errorf("licence notice: %w", translate(res.Error))
	}
	return res.RowsAffected > 0, nil
}

func (w webhookStore) DigestCursor(ctx context.Context, accountID int64) (time.Time, bool, error) {
	var r struct{ Through time.Time }
	err := w.s.conn(ctx).Table("webhook_digest_cursors").Select("through").Where("account_id = ?", accountID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("digest cursor: %w", translate(err))
	}
	return r.Through.UTC(), true, nil
}

func (w webhookStore) SetDigestCursor(ctx context.Context, accountID int64, at time.Time) error {
	err := w.s.conn(ctx).Exec("INSERT INTO webhook_digest_cursors (account_id, through) VALUES (?, ?) "+
		"ON CONFLICT (account_id) DO UPDATE SET through = excluded.through", accountID, at.UTC()).Error
	if err != nil {
		return fmt.Errorf("digest cursor: %w", translate(err))
	}
	return nil
}

// Refusals reads the refusal events of the window and groups them here:
// a digest's window holds a minute or so of them.
func (w webhookStore) Refusals(ctx context.Context, accountID int64, from, to time.Time) ([]webhook.RefusalGroup, error) {
	var rows []struct {
		PoolID, Reason, AgentType, HostID *string
		At                                time.Time
	}
	err := w.s.conn(ctx).Table("usage_events").Select("pool_id, reason, agent_type, host_id, at").
		Where("account_id = ? AND kind = ? AND at >= ? AND at < ?", accountID, engine.EventRefused, from.UTC(), to.UTC()).
		Order("at").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("refusals: %w", translate(err))
	}
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	type key struct{ pool, reason string }
	var out []webhook.RefusalGroup
	index := map[key]int{}
	hosts := map[key]map[string]bool{}
	for _, r := range rows {
		k := key{str(r.PoolID), str(r.Reason)}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			hosts[k] = map[string]bool{}
			out = append(out, webhook.RefusalGroup{PoolID: k.pool, Reason: k.reason, First: r.At.UTC(), AgentTypes: map[string]int64{}})
		}
		g := &out[i]
		g.Count++
		g.Last = r.At.UTC()
		g.AgentTypes[str(r.AgentType)]++
		hosts[k][str(r.HostID)] = true
		g.Hosts = int64(len(hosts[k]))
	}
	return out, nil
}

type digestRow struct {
	AccountID int64
	PoolID    string
	Reason    string
	Since     time.Time
	SentAt    *time.Time
	Pending   bool
}

func (digestRow) TableName() string { return "webhook_digests" }

func (w webhookStore) DigestStates(ctx context.Context, accountID int64) ([]webhook.DigestState, error) {
	var rows []digestRow
	if err := w.s.conn(ctx).Where("account_id = ?", accountID).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("digest states: %w", translate(err))
	}
	out := make([]webhook.DigestState, len(rows))
	for i, r := range rows {
		out[i] = webhook.DigestState{AccountID: r.AccountID, PoolID: r.PoolID, Reason: r.Reason, From: r.Since.UTC(), Pending: r.Pending}
		if r.SentAt != nil {
			out[i].SentAt = r.SentAt.UTC()
		}
	}
	return out, nil
}

func (w webhookStore) SaveDigestState(ctx context.Context, st webhook.DigestState) error {
	var sent *time.Time
	if !st.SentAt.IsZero() {
		t := st.SentAt.UTC()
		sent = &t
	}
	err := w.s.conn(ctx).Exec("INSERT INTO webhook_digests (account_id, pool_id, reason, since, sent_at, pending) VALUES (?, ?, ?, ?, ?, ?) "+
		"ON CONFLICT (account_id, pool_id, reason) DO UPDATE SET since = excluded.since, sent_at = excluded.sent_at, pending = excluded.pending",
		st.AccountID, st.PoolID, st.Reason, st.From.UTC(), sent, st.Pending).Error
	if err != nil {
		return fmt.Errorf("digest state: %w", translate(err))
	}
	return nil
}

func (w webhookStore) AccountUsage(ctx context.Context, accountID int64) (map[string]int64, error) {
	var rows []struct {
		Item string
		Used int64
	}
	err := w.s.conn(ctx).Raw("SELECT u.item AS item, SUM(u.used) AS used FROM pool_usage u JOIN pools p ON p.id = u.pool_id "+
		"WHERE p.account_id = ? AND p.kind = ? GROUP BY u.item", accountID, engine.PoolAllocation).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("account usage: %w", translate(err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Item] = r.Used
	}
	return out, nil
}
