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

// Rule is a versioned licence rule (ABL, API.md §3). Constraints are
// filters with the same semantics as allocation filters.
type Rule struct {
	ID              string
	AccountID       int64
	AccountGlobalID string // the account's global id, shown as account_id
	Version         int64
	Name            string
	Description     *string
	Enabled         bool
	AccessKey       string
	Constraints     []Filter
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
	Constraints  []Filter
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
	for _, fe := range filterErrors("constraints", in.Constraints) {
		// Constraints name the filter type entity_type.
		fe.Field = strings.Replace(fe.Field, "].type", "].entity_type", 1)
		fields = append(fields, fe)
	}
	return fault.Invalids(fields)
}
