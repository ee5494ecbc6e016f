package licensing

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Entitlement is a rule's number of licences of one agent module.
type Entitlement struct {
	ModuleType string
	Licenses   int64
}

// Constraint is a licence rule's constraint on one entity type (API.md §3):
// AllowAll admits every agent as far as that type goes; otherwise at least
// one of the conditions, filters of Type, must match. A missing type is the
// same as AllowAll; keeping an explicit one lets a rule read back as it
// was written.
type Constraint struct {
	Type       string // FilterApplication or FilterHost
	AllowAll   bool
	Conditions []Filter
}

// ConstraintFilters flattens constraints into the filters the matcher
// compiles (the same semantics as allocation filters): ALLOW_ALL adds none.
func ConstraintFilters(cs []Constraint) []Filter {
	var out []Filter
	for _, c := range cs {
		if !c.AllowAll {
			out = append(out, c.Conditions...)
		}
	}
	return out
}

// Rule is a versioned licence rule (ABL, API.md §3).
type Rule struct {
	ID              string
	AccountID       int64
	AccountGlobalID string // the account's global id, shown as account_id
	Version         int64
	Name            string
	Description     *string
	Enabled         bool
	AccessKey       string
	Constraints     []Constraint
	Entitlements    []Entitlement
	// PeakUsage is the highest number of licences in use at once; nil
	// until first use. The usage engine maintains it.
	PeakUsage *int64
	// ChangedBy and ChangedAt say who wrote this version and when.
	ChangedBy string
	ChangedAt time.Time
	CreatedAt time.Time
}

// TotalLicenses is the sum of the entitlements.
func (r Rule) TotalLicenses() int64 {
	var n int64
	for _, e := range r.Entitlements {
		n = SatAdd(n, e.Licenses)
	}
	return n
}

// Licenses returns the entitlement of a module type and whether there is one.
func (r Rule) Licenses(module string) (int64, bool) {
	for _, e := range r.Entitlements {
		if e.ModuleType == module {
			return e.Licenses, true
		}
	}
	return 0, false
}

// RuleInput is what a client sends to create or replace a rule.
type RuleInput struct {
	ID          string // optional on create, required on update
	Version     int64
	Name        string
	Description *string
	Enabled     bool
	AccessKey   string // optional: generated when empty
	// AccountID is the account's global id as the client sent it; empty
	// when absent. When sent it must be the caller's.
	AccountID    string
	Constraints  []Constraint
	Entitlements []Entitlement
}

// Validate applies every rule of API.md §3 that a tag cannot express and
// returns all violations at once.
func (in RuleInput) Validate() error {
	var fields []fault.FieldError
	add := func(field, msg string) { fields = append(fields, fault.FieldError{Field: field, Message: msg}) }
	if in.ID != "" {
		if _, err := uuid.Parse(in.ID); err != nil {
			add("id", "must be a UUID")
		}
	}
	if n := len([]rune(in.Name)); n < 1 || n > 255 || strings.TrimSpace(in.Name) == "" {
		add("name", "must be 1-255 characters")
	} else if strings.Contains(in.Name, "/") {
		add("name", "must not contain / (rules are looked up by name in a URL path)")
	}
	if in.Description != nil && len([]rune(*in.Description)) > 4096 {
		add("description", "must be at most 4096 characters")
	}
	if in.AccessKey != "" && (len(in.AccessKey) > 255 || strings.IndexFunc(in.AccessKey, unicode.IsSpace) >= 0) {
		add("access_key", "must be at most 255 characters without spaces")
	}
	seen := map[string]bool{}
	for i, e := range in.Entitlements {
		field := fmt.Sprintf("entitlements[%d]", i)
		switch {
		case !slices.Contains(AgentModules, e.ModuleType):
			add(field+".license_module_type", "must be one of "+strings.Join(AgentModules, ", "))
		case seen[e.ModuleType]:
			add(field+".license_module_type", "has an entitlement already: one per module type")
		}
		seen[e.ModuleType] = true
		if e.Licenses < 0 || e.Licenses > MaxUnits {
			add(field+".number_of_licenses", fmt.Sprintf("must be 0-%d", MaxUnits))
		}
	}
	fields = append(fields, constraintErrors(in.Constraints)...)
	return fault.Invalids(fields)
}

// constraintErrors checks constraints, naming fields as the AppDynamics
// shape does (constraints[i].match_conditions[j].match_string).
func constraintErrors(cs []Constraint) []fault.FieldError {
	var fields []fault.FieldError
	add := func(field, msg string) { fields = append(fields, fault.FieldError{Field: field, Message: msg}) }
	seen := map[string]bool{}
	for i, c := range cs {
		field := fmt.Sprintf("constraints[%d]", i)
		switch {
		case c.Type != FilterApplication && c.Type != FilterHost:
			add(field+".entity_type_id", "must be the ApplicationEntity or the MachineEntity type")
		case seen[c.Type]:
			add(field+".entity_type_id", "has a constraint already: one per entity type")
		}
		seen[c.Type] = true
		switch {
		case c.AllowAll && len(c.Conditions) > 0:
			add(field+".match_conditions", "must be empty with ALLOW_ALL")
		case !c.AllowAll && len(c.Conditions) == 0:
			add(field+".match_conditions", "must hold at least one condition with ALLOW_SELECTED")
		}
		if len(c.Conditions) > 100 {
			add(field+".match_conditions", "must hold at most 100 conditions")
			continue
		}
		conds := slices.Clone(c.Conditions)
		for j := range conds {
			conds[j].Type = c.Type
		}
		for _, fe := range filterErrors(field+".match_conditions", conds) {
			fe.Field = strings.NewReplacer("].value", "].match_string", "].operator", "].match_type", "].type", "].attribute_type").Replace(fe.Field)
			fields = append(fields, fe)
		}
	}
	return fields
}
