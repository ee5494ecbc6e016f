package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lcorp/licensing-controller/internal/audit"
)

type auditRow struct {
	ID           int64 `gorm:"primaryKey"`
	AccountID    int64
	At           time.Time
	ActorKind    string
	ActorName    string
	ActorAccount string
	Action       string
	ResourceType string
	ResourceID   string
	ResourceName string
	RequestID    string
	Before       *string
	After        *string
}

func (auditRow) TableName() string { return "audit_log" }

func rawPtr(m json.RawMessage) *string {
	if len(m) == 0 {
		return nil
	}
	s := string(m)
	return &s
}

func rawOf(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

// appendAudit writes an entry in the store's transaction; every domain
// store's AppendAudit lands here.
func (s *Store) appendAudit(ctx context.Context, e audit.Entry) error {
	r := auditRow{AccountID: e.AccountID, At: e.At.UTC(), ActorKind: e.Actor.Kind, ActorName: e.Actor.Name,
		ActorAccount: e.Actor.Account, Action: e.Action, ResourceType: e.Resource.Type, ResourceID: e.Resource.ID,
		ResourceName: e.Resource.Name, RequestID: e.RequestID, Before: rawPtr(e.Before), After: rawPtr(e.After)}
	if err := s.conn(ctx).Create(&r).Error; err != nil {
		return fmt.Errorf("insert audit entry: %w", translate(err))
	}
	return nil
}

// AppendAudit records a licence, allocation or rule write.
func (l licensingStore) AppendAudit(ctx context.Context, e audit.Entry) error {
	return l.s.appendAudit(ctx, e)
}

// AppendAudit records a user or API client write.
func (a authStore) AppendAudit(ctx context.Context, e audit.Entry) error {
	return a.s.appendAudit(ctx, e)
}

type auditStore struct{ s *Store }

var _ audit.Store = auditStore{}

// Audit returns the store of the audit trail.
func (s *Store) Audit() audit.Store { return auditStore{s} }

func (a auditStore) FindAuditEntries(ctx context.Context, accountID int64, q audit.Query) ([]audit.Entry, error) {
	db := a.s.conn(ctx).Where("account_id = ?", accountID)
	if !q.Since.IsZero() {
		db = db.Where("at >= ?", q.Since.UTC())
	}
	if !q.Until.IsZero() {
		db = db.Where("at < ?", q.Until.UTC())
	}
	if q.Actor != "" {
		if name, acct, ok := strings.Cut(q.Actor, "@"); ok {
			db = db.Where("actor_name = ? AND actor_account = ?", name, acct)
		} else {
			db = db.Where("actor_name = ?", q.Actor)
		}
	}
	if q.ResourceType != "" {
		db = db.Where("resource_type = ?", q.ResourceType)
	}
	if q.ResourceID != "" {
		db = db.Where("resource_id = ?", q.ResourceID)
	}
	if q.BeforeID > 0 {
		db = db.Where("id < ?", q.BeforeID)
	}
	var rows []auditRow
	if err := db.Order("id DESC").Offset(q.Offset).Limit(q.Limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find audit entries: %w", translate(err))
	}
	out := make([]audit.Entry, len(rows))
	for i, r := range rows {
		out[i] = audit.Entry{ID: r.ID, AccountID: r.AccountID, At: r.At.UTC(),
			Actor:  audit.Actor{Kind: r.ActorKind, Name: r.ActorName, Account: r.ActorAccount},
			Action: r.Action, Resource: audit.Resource{Type: r.ResourceType, ID: r.ResourceID, Name: r.ResourceName},
			RequestID: r.RequestID, Before: rawOf(r.Before), After: rawOf(r.After)}
	}
	return out, nil
}

// PruneAudit deletes the oldest entries first, a bounded batch per statement.
func (a auditStore) PruneAudit(ctx context.Context, before time.Time, limit int) (int, error) {
	res := a.s.conn(ctx).Exec("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)",
		before.UTC(), limit)
	if res.Error != nil {
		return 0, fmt.Errorf("prune audit entries: %w", translate(res.Error))
	}
	return int(res.RowsAffected), nil
}
