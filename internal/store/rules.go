package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lcorp/licensing-controller/internal/licensing"
)

// ruleFields are the columns a rule and each of its stored versions share.
type ruleFields struct {
	Version      int64
	AccountID    int64
	Name         string
	Description  *string
	Enabled      bool
	AccessKey    string
	Constraints  string // JSON: small, always read whole
	Entitlements string
	PeakUsage    *int64
	ChangedBy    string
	ChangedAt    time.Time
	CreatedAt    time.Time
}

type ruleRow struct {
	ID string     `gorm:"primaryKey"`
	F  ruleFields `gorm:"embedded"`
}

func (ruleRow) TableName() string { return "license_rules" }

type ruleVersionRow struct {
	RuleID string     `gorm:"primaryKey"`
	F      ruleFields `gorm:"embedded"`
}

func (ruleVersionRow) TableName() string { return "license_rule_versions" }

// constraintJSON is a stored constraint (since migration 13): an entity
// type with ALLOW_ALL or its conditions.
type constraintJSON struct {
	Type       string
	AllowAll   bool
	Conditions []conditionJSON
}

type conditionJSON struct {
	Operator, Value string
}

type entitlementJSON struct {
	ModuleType string
	Licenses   int64
}

func ruleToFields(r licensing.Rule) (ruleFields, error) {
	cs := make([]constraintJSON, len(r.Constraints))
	for i, c := range r.Constraints {
		cs[i] = constraintJSON{Type: c.Type, AllowAll: c.AllowAll, Conditions: make([]conditionJSON, len(c.Conditions))}
		for j, f := range c.Conditions {
			cs[i].Conditions[j] = conditionJSON{Operator: f.Operator, Value: f.Value}
		}
	}
	es := make([]entitlementJSON, len(r.Entitlements))
	for i, e := range r.Entitlements {
		es[i] = entitlementJSON(e)
	}
	cb, err1 := json.Marshal(cs)
	eb, err2 := json.Marshal(es)
	if err := firstErr(err1, err2); err != nil {
		return ruleFields{}, fmt.Errorf("encode rule %s: %w", r.ID, err)
	}
	return ruleFields{Version: r.Version, AccountID: r.AccountID, Name: r.Name, Description: r.Description,
		Enabled: r.Enabled, AccessKey: r.AccessKey, Constraints: string(cb), Entitlements: string(eb),
		PeakUsage: r.PeakUsage, ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt, CreatedAt: r.CreatedAt}, nil
}

func ruleFromFields(id string, f ruleFields) (licensing.Rule, error) {
	var (
		cs []constraintJSON
		es []entitlementJSON
	)
	if err := firstErr(json.Unmarshal([]byte(f.Constraints), &cs), json.Unmarshal([]byte(f.Entitlements), &es)); err != nil {
		return licensing.Rule{}, fmt.Errorf("decode rule %s: %w", id, err)
	}
	r := licensing.Rule{ID: id, AccountID: f.AccountID, Version: f.Version, Name: f.Name, Description: f.Description,
		Enabled: f.Enabled, AccessKey: f.AccessKey, PeakUsage: f.PeakUsage, ChangedBy: f.ChangedBy,
		ChangedAt: f.ChangedAt.UTC(), CreatedAt: f.CreatedAt.UTC(),
		Constraints: make([]licensing.Constraint, len(cs)), Entitlements: make([]licensing.Entitlement, len(es))}
	for i, c := range cs {
		r.Constraints[i] = licensing.Constraint{Type: c.Type, AllowAll: c.AllowAll, Conditions: make([]licensing.Filter, len(c.Conditions))}
		for j, f := range c.Conditions {
			r.Constraints[i].Conditions[j] = licensing.Filter{Type: c.Type, Operator: f.Operator, Value: f.Value}
		}
	}
	for i, e := range es {
		r.Entitlements[i] = licensing.Entitlement(e)
	}
	return r, nil
}

func (l licensingStore) CreateRule(ctx context.Context, r *licensing.Rule) error {
	f, err := ruleToFields(*r)
	if err != nil {
		return err
	}
	if err := l.s.conn(ctx).Create(&ruleRow{ID: r.ID, F: f}).Error; err != nil {
		return fmt.Errorf("insert rule %s: %w", r.Name, translate(err))
	}
	return nil
}

// UpdateRule is the optimistic write: the version check is part of the
// UPDATE's WHERE clause, so a concurrent writer cannot slip in between.
func (l licensingStore) UpdateRule(ctx context.Context, r *licensing.Rule, version int64) error {
	f, err := ruleToFields(*r)
	if err != nil {
		return err
	}
	res := l.s.conn(ctx).Model(&ruleRow{}).Where("account_id = ? AND id = ? AND version = ?", r.AccountID, r.ID, version).
		Select("version", "name", "description", "enabled", "access_key", "constraints", "entitlements",
			"changed_by", "changed_at").
		Updates(&ruleRow{ID: r.ID, F: f})
	return affectedOne(res, fmt.Sprintf("update rule %s at version %d", r.ID, version))
}

func (l licensingStore) DeleteRule(ctx context.Context, accountID int64, id string) error {
	db := l.s.conn(ctx)
	if err := db.Where("account_id = ? AND rule_id = ?", accountID, id).Delete(&ruleVersionRow{}).Error; err != nil {
		return fmt.Errorf("delete rule %s history: %w", id, translate(err))
	}
	return affectedOne(db.Where("account_id = ? AND id = ?", accountID, id).Delete(&ruleRow{}), "delete rule "+id)
}

func (l licensingStore) FindRules(ctx context.Context, accountID int64) ([]licensing.Rule, error) {
	var rows []ruleRow
	if err := l.s.conn(ctx).Where("account_id = ?", accountID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find rules: %w", translate(err))
	}
	out := make([]licensing.Rule, 0, len(rows))
	for _, row := range rows {
		r, err := ruleFromFields(row.ID, row.F)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (l licensingStore) FindRule(ctx context.Context, accountID int64, by licensing.RuleLookup) (licensing.Rule, error) {
	q := l.s.conn(ctx)
	if accountID != 0 {
		q = q.Where("account_id = ?", accountID)
	}
	switch {
	case by.ID != "":
		q = q.Where("id = ?", by.ID)
	case by.AccessKey != "":
		q = q.Where("access_key = ?", by.AccessKey)
	default:
		q = q.Where("name = ?", by.Name)
	}
	var row ruleRow
	if err := q.Take(&row).Error; err != nil {
		return licensing.Rule{}, fmt.Errorf("find rule by %s: %w", by, translate(err))
	}
	return ruleFromFields(row.ID, row.F)
}

func (l licensingStore) AddRuleVersion(ctx context.Context, r licensing.Rule) error {
	f, err := ruleToFields(r)
	if err != nil {
		return err
	}
	if err := l.s.conn(ctx).Create(&ruleVersionRow{RuleID: r.ID, F: f}).Error; err != nil {
		return fmt.Errorf("store rule %s version %d: %w", r.ID, r.Version, translate(err))
	}
	return nil
}

func (l licensingStore) FindRuleVersions(ctx context.Context, accountID int64, id string) ([]licensing.Rule, error) {
	var rows []ruleVersionRow
	err := l.s.conn(ctx).Where("account_id = ? AND rule_id = ?", accountID, id).Order("version DESC").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("find rule %s versions: %w", id, translate(err))
	}
	out := make([]licensing.Rule, 0, len(rows))
	for _, row := range rows {
		r, err := ruleFromFields(row.RuleID, row.F)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
