package licensing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/lcorp/licensing-controller/internal/audit"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// RuleLookup selects one rule by exactly one of its unique keys.
type RuleLookup struct {
	ID, AccessKey, Name string
}

func (l RuleLookup) String() string {
	switch {
	case l.ID != "":
		return "id " + l.ID
	case l.AccessKey != "":
		return "access key " + l.AccessKey
	}
	return fmt.Sprintf("name %q", l.Name)
}

func ruleNotFound(by RuleLookup) error {
	return fault.New(fault.ErrNotFound, "RULE_NOT_FOUND", "no licence rule with %s", by)
}

// withGlobalID sets the account's global id (account_id) on rules.
func withGlobalID(acc Account, rs ...Rule) []Rule {
	for i := range rs {
		rs[i].AccountGlobalID = acc.GlobalID
	}
	return rs
}

// Rules lists the account's licence rules, oldest first.
func (s *Service) Rules(ctx context.Context, accountID int64) ([]Rule, error) {
	acc, err := s.store.FindAccount(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	rs, err := s.store.FindRules(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	return withGlobalID(acc, rs...), nil
}

// Rule returns one rule. Errors: ErrNotFound (RULE_NOT_FOUND).
func (s *Service) Rule(ctx context.Context, accountID int64, by RuleLookup) (Rule, error) {
	acc, err := s.store.FindAccount(ctx, accountID)
	if err != nil {
		return Rule{}, fmt.Errorf("find rule: %w", err)
	}
	r, err := s.store.FindRule(ctx, accountID, by)
	switch {
	case errors.Is(err, fault.ErrNotFound):
		return Rule{}, ruleNotFound(by)
	case err != nil:
		return Rule{}, fmt.Errorf("find rule by %s: %w", by, err)
	}
	return withGlobalID(acc, r)[0], nil
}

// RuleHistory returns every version of a rule, newest first: the current
// one, then the superseded ones. Errors: ErrNotFound (RULE_NOT_FOUND).
func (s *Service) RuleHistory(ctx context.Context, accountID int64, id string) ([]Rule, error) {
	var out []Rule
	err := s.store.InTx(ctx, func(tx Store) error { // one snapshot of rule and history
		acc, err := tx.FindAccount(ctx, accountID)
		if err != nil {
			return err
		}
		cur, err := tx.FindRule(ctx, accountID, RuleLookup{ID: id})
		if errors.Is(err, fault.ErrNotFound) {
			return ruleNotFound(RuleLookup{ID: id})
		} else if err != nil {
			return err
		}
		old, err := tx.FindRuleVersions(ctx, accountID, id)
		if err != nil {
			return err
		}
		out = withGlobalID(acc, append([]Rule{cur}, old...)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rule %s history: %w", id, err)
	}
	return out, nil
}

// checkRuleKeys refuses a name, id or access key that another rule (or, for
// keys, an allocation or the account) holds. self is the id of the rule
// being replaced, empty on create. The caller holds the account lock.
func checkRuleKeys(ctx context.Context, tx Store, acc Account, r Rule, self string) error {
	other := func(by RuleLookup, anyAccount bool) (bool, error) {
		owner := acc.ID
		if anyAccount {
			owner = 0
		}
		found, err := tx.FindRule(ctx, owner, by)
		switch {
		case errors.Is(err, fault.ErrNotFound):
			return false, nil
		case err != nil:
			return false, err
		}
		return found.ID != self, nil
	}
	keyTaken := fault.New(fault.ErrConflict, "ACCESS_KEY_TAKEN", "access key %q is in use", r.AccessKey)
	checks := []struct {
		by         RuleLookup
		anyAccount bool
		skip       bool
		taken      error
	}{
		{RuleLookup{Name: r.Name}, false, false, fault.New(fault.ErrConflict, "NAME_TAKEN", "a licence rule named %q exists", r.Name)},
		// Rule ids are pool ids, unique across accounts: a client-chosen id
		// that another account holds cannot be taken either.
		{RuleLookup{ID: r.ID}, true, self != "", fault.New(fault.ErrConflict, "ID_TAKEN", "the id %s cannot be used: choose another or omit it", r.ID)},
		// Access keys are unique within the account only (and never collide
		// across accounts, since registrations name their account).
		{RuleLookup{AccessKey: r.AccessKey}, false, false, keyTaken},
	}
	for _, c := range checks {
		if c.skip {
			continue
		}
		taken, err := other(c.by, c.anyAccount)
		if err != nil {
			return err
		}
		if taken {
			return c.taken
		}
	}
	if r.AccessKey == acc.AccessKey {
		return keyTaken
	}
	allocs, err := tx.FindAllocations(ctx, acc.ID)
	if err != nil {
		return fmt.Errorf("load allocations: %w", err)
	}
	if slices.ContainsFunc(allocs, func(a Allocation) bool { return a.LicenseKey == r.AccessKey }) {
		return keyTaken
	}
	return nil
}

// CreateRule stores a new rule at version 0, generating the id and access
// key when absent. actor is who creates it (user@account). Errors:
// ErrInvalid (VALIDATION_FAILED, VERSION_MUST_BE_ZERO), ErrConflict
// (NAME_TAKEN, ID_TAKEN, ACCESS_KEY_TAKEN).
func (s *Service) CreateRule(ctx context.Context, accountID int64, actor string, in RuleInput) (Rule, error) {
	if err := in.Validate(); err != nil {
		return Rule{}, err
	}
	if in.Version != 0 {
		return Rule{}, &fault.Error{Kind: fault.ErrInvalid, Code: "VERSION_MUST_BE_ZERO",
			Detail: "a new licence rule has version 0", Fields: []fault.FieldError{{Field: "version", Message: "must be 0 on create"}}}
	}
	var out Rule
	err := s.store.InTx(ctx, func(tx Store) error {
		acc, err := tx.LockAccount(ctx, accountID)
		if err != nil {
			return err
		}
		// in.AccountID is informational (the seed's own example carries
		// another controller's id): the rule belongs to the caller's account.
		now := s.now().UTC()
		r := ruleFromInput(in, Rule{ID: in.ID, AccountID: accountID, AccessKey: in.AccessKey, CreatedAt: now})
		if r.ID == "" {
			r.ID = uuid.NewString()
		}
		if r.AccessKey == "" {
			r.AccessKey = uuid.NewString()
		}
		r.ChangedBy, r.ChangedAt = actor, now
		if err := checkRuleKeys(ctx, tx, acc, r, ""); err != nil {
			return err
		}
		if err := tx.CreateRule(ctx, &r); err != nil {
			if errors.Is(err, fault.ErrConflict) { // another account won a race for the id or key
				return fault.New(fault.ErrConflict, "RULE_CONFLICT", "the id or access key was just taken: %v", err)
			}
			return err
		}
		out = withGlobalID(acc, r)[0]
		return audit.Record(ctx, tx, accountID, now, audit.Create, ruleResource(r), nil, ruleAudit(r))
	})
	if err != nil {
		return Rule{}, fmt.Errorf("create rule %q: %w", in.Name, err)
	}
	return out, nil
}

// ruleFromInput copies the client-owned fields of in onto base.
func ruleFromInput(in RuleInput, base Rule) Rule {
	base.Name, base.Description, base.Enabled = in.Name, in.Description, in.Enabled
	base.Constraints = slices.Clone(in.Constraints)
	if base.Constraints == nil {
		base.Constraints = []Constraint{}
	}
	for i := range base.Constraints {
		base.Constraints[i].Conditions = slices.Clone(base.Constraints[i].Conditions)
		for j := range base.Constraints[i].Conditions {
			base.Constraints[i].Conditions[j].Type = base.Constraints[i].Type
		}
	}
	base.Entitlements = slices.Clone(in.Entitlements)
	if base.Entitlements == nil {
		base.Entitlements = []Entitlement{}
	}
	return base
}

func versionConflict(id string, sent, stored int64) error {
	return &fault.Error{Kind: fault.ErrConflict, Code: "VERSION_CONFLICT",
		Detail: fmt.Sprintf("licence rule %s is at version %d, not %d: read it again and re-apply your change", id, stored, sent),
		Extra:  map[string]any{"currentVersion": stored}}
}

// UpdateRule replaces a rule when in.Version is the stored version: the
// version check and the write are one conditional UPDATE, and the
// superseded version goes to the history in the same transaction. An empty
// access key keeps the stored one. Errors: ErrInvalid, ErrNotFound
// (RULE_NOT_FOUND), ErrConflict (VERSION_CONFLICT, NAME_TAKEN, ACCESS_KEY_TAKEN).
func (s *Service) UpdateRule(ctx context.Context, accountID int64, actor string, in RuleInput) (Rule, error) {
	if in.ID == "" {
		return Rule{}, fault.Invalid("id", "is required: send the rule as you read it")
	}
	if err := in.Validate(); err != nil {
		return Rule{}, err
	}
	var out Rule
	err := s.store.InTx(ctx, func(tx Store) error {
		acc, err := tx.LockAccount(ctx, accountID)
		if err != nil {
			return err
		}
		cur, err := tx.FindRule(ctx, accountID, RuleLookup{ID: in.ID})
		if errors.Is(err, fault.ErrNotFound) {
			return ruleNotFound(RuleLookup{ID: in.ID})
		} else if err != nil {
			return err
		}
		if cur.Version != in.Version {
			return versionConflict(in.ID, in.Version, cur.Version)
		}
		next := ruleFromInput(in, cur)
		if in.AccessKey != "" {
			next.AccessKey = in.AccessKey
		}
		next.Version = cur.Version + 1
		next.ChangedBy, next.ChangedAt = actor, s.now().UTC()
		if err := checkRuleKeys(ctx, tx, acc, next, cur.ID); err != nil {
			return err
		}
		if err := tx.UpdateRule(ctx, &next, in.Version); err != nil {
			switch {
			case errors.Is(err, fault.ErrNotFound): // changed since we read it
				return versionConflict(in.ID, in.Version, in.Version+1)
			case errors.Is(err, fault.ErrConflict):
				return fault.New(fault.ErrConflict, "RULE_CONFLICT", "the access key was just taken: %v", err)
			}
			return err
		}
		if err := tx.AddRuleVersion(ctx, cur); err != nil {
			return err
		}
		out = withGlobalID(acc, next)[0]
		return audit.Record(ctx, tx, accountID, next.ChangedAt, audit.Update, ruleResource(next), ruleAudit(cur), ruleAudit(next))
	})
	if err != nil {
		return Rule{}, fmt.Errorf("update rule %s: %w", in.ID, err)
	}
	return out, nil
}

// DeleteRule removes a rule and its history. A rule that holds leases is
// refused unless force, which releases them. Errors: ErrNotFound
// (RULE_NOT_FOUND), ErrConflict (RULE_IN_USE).
func (s *Service) DeleteRule(ctx context.Context, accountID int64, id string, force bool) error {
	err := s.store.InTx(ctx, func(tx Store) error {
		if _, err := tx.LockAccount(ctx, accountID); err != nil {
			return err
		}
		cur, err := tx.FindRule(ctx, accountID, RuleLookup{ID: id})
		if errors.Is(err, fault.ErrNotFound) {
			return ruleNotFound(RuleLookup{ID: id})
		} else if err != nil {
			return err
		}
		if err := s.deletePool(ctx, tx, accountID, id, "RULE_IN_USE", "RULE_DELETED", "licence rule "+id, force); err != nil {
			return err
		}
		if err := tx.DeleteRule(ctx, accountID, id); errors.Is(err, fault.ErrNotFound) {
			return ruleNotFound(RuleLookup{ID: id})
		} else if err != nil {
			return err
		}
		return audit.Record(ctx, tx, accountID, s.now(), audit.Delete, ruleResource(cur), ruleAudit(cur), nil)
	})
	if err != nil {
		return fmt.Errorf("delete rule %s: %w", id, err)
	}
	return nil
}
