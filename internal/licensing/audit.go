package licensing

import (
	"time"

	"github.com/lcorp/licensing-controller/internal/audit"
)

// The audit trail's snapshots of licences, allocations and rules: what a
// reader compares between before and after, in the API's own words.

type filterSnapshot struct {
	Type     string `json:"type"`
	Operator string `json:"operator"`
	Value    string `json:"value"`
}

func filterSnapshots(fs []Filter) []filterSnapshot {
	out := make([]filterSnapshot, len(fs))
	for i, f := range fs {
		out[i] = filterSnapshot{f.Type, f.Operator, f.Value}
	}
	return out
}

type limitSnapshot struct {
	Package string `json:"package"`
	Units   int64  `json:"units"`
}

type allocationSnapshot struct {
	ID                   string           `json:"id"`
	Name                 string           `json:"name"`
	LicenseKey           string           `json:"licenseKey"`
	Limits               []limitSnapshot  `json:"limits"`
	Filters              []filterSnapshot `json:"filters"`
	Tags                 []string         `json:"tags"`
	FallbackModeDelay    bool             `json:"fallbackModeDelay"`
	MachineAgentPriority bool             `json:"machineAgentPriority"`
	Disabled             bool             `json:"disabled"`
}

func allocationAudit(a Allocation) allocationSnapshot {
	ls := make([]limitSnapshot, len(a.Limits))
	for i, l := range a.Limits {
		ls[i] = limitSnapshot{l.Package, l.Units}
	}
	tags := a.Tags
	if tags == nil {
		tags = []string{}
	}
	return allocationSnapshot{ID: a.ID, Name: a.Name, LicenseKey: a.LicenseKey, Limits: ls, Filters: filterSnapshots(a.Filters),
		Tags: tags, FallbackModeDelay: a.FallbackModeDelay, MachineAgentPriority: a.MachineAgentPriority, Disabled: a.Disabled}
}

func allocationResource(a Allocation) audit.Resource {
	return audit.Resource{Type: audit.TypeAllocation, ID: a.ID, Name: a.Name}
}

type licenseSnapshot struct {
	ID             string    `json:"id"`
	LicenseID      string    `json:"licenseId"`
	Type           string    `json:"type"`
	ExpirationDate time.Time `json:"expirationDate"`
	Packages       []Package `json:"packages"`
	Builtin        bool      `json:"builtin"`
}

func licenseAudit(l License) licenseSnapshot {
	return licenseSnapshot{ID: l.ID, LicenseID: l.Payload.LicenseID, Type: l.Payload.Type,
		ExpirationDate: l.Payload.ExpirationDate, Packages: l.Payload.Packages, Builtin: l.Builtin}
}

func licenseResource(l License) audit.Resource {
	return audit.Resource{Type: audit.TypeLicense, ID: l.ID, Name: l.Payload.LicenseID}
}

type constraintSnapshot struct {
	EntityType string           `json:"entityType"`
	AllowAll   bool             `json:"allowAll"`
	Conditions []filterSnapshot `json:"conditions"`
}

type ruleSnapshot struct {
	ID           string               `json:"id"`
	Name         string               `json:"name"`
	Version      int64                `json:"version"`
	Description  *string              `json:"description"`
	Enabled      bool                 `json:"enabled"`
	AccessKey    string               `json:"accessKey"`
	Constraints  []constraintSnapshot `json:"constraints"`
	Entitlements map[string]int64     `json:"entitlements"`
}

func ruleAudit(r Rule) ruleSnapshot {
	cs := make([]constraintSnapshot, len(r.Constraints))
	for i, c := range r.Constraints {
		cs[i] = constraintSnapshot{c.Type, c.AllowAll, filterSnapshots(c.Conditions)}
	}
	es := make(map[string]int64, len(r.Entitlements))
	for _, e := range r.Entitlements {
		es[e.ModuleType] = e.Licenses
	}
	return ruleSnapshot{ID: r.ID, Name: r.Name, Version: r.Version, Description: r.Description, Enabled: r.Enabled,
		AccessKey: r.AccessKey, Constraints: cs, Entitlements: es}
}

func ruleResource(r Rule) audit.Resource {
	return audit.Resource{Type: audit.TypeRule, ID: r.ID, Name: r.Name}
}
