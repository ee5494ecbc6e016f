package licensing

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Packages are the vCPU-based packages, in ascending order.
var Packages = []string{"INFRA", "PREMIUM", "ENTERPRISE"}

// DefaultAllocationName is the name of every account's Default allocation.
const DefaultAllocationName = "Default"

// Limit caps the units of one package in an allocation.
type Limit struct {
	ID      string
	Package string
	Units   int64
}

// Allocation is a slice of the account's licensed units (API.md §2).
type Allocation struct {
	ID                   string
	AccountID            int64
	Name                 string
	LicenseKey           string
	FallbackModeDelay    bool
	MachineAgentPriority bool
	Filters              []Filter
	Limits               []Limit
	Tags                 []string
	IsDefault            bool
	// Disabled refuses new registrations; running leases are kept.
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LimitOf returns the allocation's units of pkg (0 without a limit).
func (a Allocation) LimitOf(pkg string) int64 {
	for _, l := range a.Limits {
		if l.Package == pkg {
			return l.Units
		}
	}
	return 0
}

// AllocationInput is what a client may set on create or replace.
type AllocationInput struct {
	Name                 string
	FallbackModeDelay    bool
	MachineAgentPriority bool
	Filters              []Filter
	Limits               []Limit
	Tags                 []string
	Disabled             bool
}

// Validate applies every domain rule of API.md §2 that a tag cannot express
// and returns all violations at once.
func (in AllocationInput) Validate() error {
	var fields []fault.FieldError
	add := func(field, msg string) { fields = append(fields, fault.FieldError{Field: field, Message: msg}) }
	if n := len([]rune(in.Name)); n < 1 || n > 255 || strings.TrimSpace(in.Name) == "" {
		add("name", "must be 1-255 characters")
	}
	fields = append(fields, filterErrors("filters", in.Filters)...)
	seen := map[string]bool{}
	for i, l := range in.Limits {
		switch {
		case !slices.Contains(Packages, l.Package):
			add(fmt.Sprintf("limits[%d].package", i), "must be one of INFRA, PREMIUM, ENTERPRISE")
		case seen[l.Package]:
			add(fmt.Sprintf("limits[%d].package", i), "has a limit already: one limit per package")
		}
		seen[l.Package] = true
		if l.Units < 0 || l.Units > MaxUnits {
			add(fmt.Sprintf("limits[%d].units", i), fmt.Sprintf("must be 0-%d", MaxUnits))
		}
	}
	if len(in.Tags) > 50 {
		add("tags", "must have at most 50 tags")
	}
	tags := map[string]bool{}
	for i, t := range in.Tags {
		if n := len([]rune(t)); n < 1 || n > 64 {
			add(fmt.Sprintf("tags[%d]", i), "must be 1-64 characters")
		}
		if tags[t] {
			add(fmt.Sprintf("tags[%d]", i), "is a duplicate")
		}
		tags[t] = true
	}
	return fault.Invalids(fields)
}

// DeriveDefaultLimits sets the Default allocation's limits: licensed units of
// each package minus the other allocations' limits, never below 0.
func DeriveDefaultLimits(def *Allocation, others []Allocation, licensed map[string]int64) {
	def.Limits = def.Limits[:0]
	for _, pkg := range Packages {
		free := licensed[pkg]
		for _, o := range others {
			free = SatSub(free, o.LimitOf(pkg))
		}
		def.Limits = append(def.Limits, Limit{ID: def.ID + "-" + strings.ToLower(pkg), Package: pkg, Units: max(free, 0)})
	}
}

func sumOf(explicit []Allocation, pkg string) int64 {
	var sum int64
	for _, a := range explicit {
		sum = SatAdd(sum, a.LimitOf(pkg)) // saturated: above any licence
	}
	return sum
}

// CheckOverAllocation refuses a set of explicit allocations whose limits for
// some package sum above the licensed units (409 OVER_ALLOCATION).
func CheckOverAllocation(explicit []Allocation, licensed map[string]int64) error {
	return checkTotals(explicit, licensed, func(string) int64 { return math.MinInt64 })
}

// CheckAllocationChange refuses a write that takes the explicit allocations
// from before to after when it raises the total of a package above its
// licensed units (409 OVER_ALLOCATION). A write that keeps or lowers the
// total of a package that is over already (after a smaller licence) is
// allowed, so that the operator can repair the over-allocation through the
// API.
func CheckAllocationChange(before, after []Allocation, licensed map[string]int64) error {
	return checkTotals(after, licensed, func(pkg string) int64 { return sumOf(before, pkg) })
}

// checkTotals refuses explicit allocations whose total of a package is
// above both the licensed units and the package's total was (was(pkg)).
func checkTotals(explicit []Allocation, licensed map[string]int64, was func(pkg string) int64) error {
	for _, pkg := range Packages {
		sum := sumOf(explicit, pkg)
		if sum > licensed[pkg] && sum > was(pkg) {
			return &fault.Error{Kind: fault.ErrConflict, Code: "OVER_ALLOCATION",
				Detail: fmt.Sprintf("%s limits would total %d units but the account is licensed %d", pkg, sum, licensed[pkg]),
				Extra:  map[string]any{"package": pkg, "requestedUnits": sum, "licensedUnits": licensed[pkg]}}
		}
	}
	return nil
}
