package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// Lint (API.md §13): what is wrong or wasteful in an account's
// allocations, from the allocations, the live host charges and the agents
// seen in the last week. Nothing is written.

// Lint codes.
const (
	LintHostCountedTwice     = "HOST_COUNTED_TWICE"
	LintFilterMatchesNothing = "FILTER_MATCHES_NOTHING"
	LintShadowedByEarlier    = "SHADOWED_BY_EARLIER"
	LintLimitBelowUsage      = "LIMIT_BELOW_USAGE"
	LintNoLimits             = "NO_LIMITS"
	LintRegexTooBroad        = "REGEX_TOO_BROAD"
	LintExpiresSoon          = "EXPIRES_SOON"
)

// Severities.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// LintSeen is how far back agents count as seen (besides the live ones).
const LintSeen = 7 * 24 * time.Hour

// Finding is one lint finding.
type Finding struct {
	Code, Severity, Message string
	Allocations             []string // ids
	Hosts                   []string
	ExtraUnits              int64
}

// HostCharge is a host's charge in one pool.
type HostCharge struct {
	PoolID, HostID, Package string
	Units                   int64
	ChargedAt               time.Time
}

// SeenAgent is where an agent ran: a live lease or an event of the week.
type SeenAgent struct {
	HostID, HostName string
	AppID            *int64
	AppName          *string
}

// LintStore is what lint reads.
type LintStore interface {
	HostCharges(ctx context.Context, accountID int64) ([]HostCharge, error)
	SeenAgents(ctx context.Context, accountID int64, since time.Time) ([]SeenAgent, error)
	// PoolUsed is the units (or licences) in use per pool and package.
	PoolUsed(ctx context.Context, accountID int64) (map[string]map[string]int64, error)
}

// Linter lints allocations.
type Linter struct {
	store LintStore
	lic   *licensing.Service
	now   func() time.Time
}

// NewLinter returns a Linter; now may be nil (time.Now).
func NewLinter(store LintStore, lic *licensing.Service, now func() time.Time) *Linter {
	if now == nil {
		now = time.Now
	}
	return &Linter{store: store, lic: lic, now: now}
}

// Lint returns the account's findings, errors first.
func (l *Linter) Lint(ctx context.Context, accountID int64) ([]Finding, error) {
	now := l.now().UTC()
	allocs, err := l.lic.Allocations(ctx, accountID, licensing.AllocationQuery{})
	if err != nil {
		return nil, fmt.Errorf("lint: %w", err)
	}
	charges, err := l.store.HostCharges(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("lint: %w", err)
	}
	seen, err := l.store.SeenAgents(ctx, accountID, now.Add(-LintSeen))
	if err != nil {
		return nil, fmt.Errorf("lint: %w", err)
	}
	used, err := l.store.PoolUsed(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("lint: %w", err)
	}
	name := map[string]string{}
	for _, a := range allocs {
		name[a.ID] = a.Name
	}
	out := []Finding{}

	// A host charged in several allocations costs its units in each.
	byHost := map[string][]HostCharge{}
	for _, c := range charges {
		if _, ok := name[c.PoolID]; ok {
			byHost[c.HostID] = append(byHost[c.HostID], c)
		}
	}
	twice := map[string]*Finding{} // by allocation set
	for host, cs := range byHost {
		if len(cs) < 2 {
			continue
		}
		slices.SortFunc(cs, func(x, y HostCharge) int { return cmp.Compare(x.PoolID, y.PoolID) })
		var ids []string
		var total, most int64
		for _, c := range cs {
			ids = append(ids, c.PoolID)
			total += c.Units
			most = max(most, c.Units)
		}
		k := strings.Join(ids, ",")
		f := twice[k]
		if f == nil {
			f = &Finding{Code: LintHostCountedTwice, Severity: SeverityWarning, Allocations: ids}
			twice[k] = f
		}
		f.Hosts = append(f.Hosts, host)
		f.ExtraUnits += total - most
	}
	for _, f := range twice {
		slices.Sort(f.Hosts)
		names := make([]string, len(f.Allocations))
		for i, id := range f.Allocations {
			names[i] = fmt.Sprintf("%q", name[id])
		}
		f.Message = fmt.Sprintf("%d host(s) are charged in each of %s: %d units counted more than once; narrow the filters so that one allocation matches them",
			len(f.Hosts), strings.Join(names, " and "), f.ExtraUnits)
		out = append(out, *f)
	}

	subjects := make([]licensing.Subject, 0, len(seen))
	apps := map[string]bool{}
	hosts := map[string]bool{}
	for _, s := range seen {
		sub := subject(s.HostID, s.HostName, s.AppID, s.AppName)
		if sub.HasApp {
			apps[appKey(s.AppID, s.AppName)] = true
		}
		hosts[s.HostID] = true
		subjects = append(subjects, sub)
	}
	filtersOf := map[string]string{} // canonical filters -> first allocation with them
	ordered := slices.Clone(allocs)
	slices.SortStableFunc(ordered, func(x, y licensing.Allocation) int { return x.CreatedAt.Compare(y.CreatedAt) })
	for _, a := range ordered {
		if a.IsDefault {
			continue
		}
		one := func(code, sev, msg string) {
			out = append(out, Finding{Code: code, Severity: sev, Message: msg, Allocations: []string{a.ID}, Hosts: []string{}})
		}
		var units int64
		for _, lim := range a.Limits {
			units += lim.Units
		}
		if units == 0 {
			one(LintNoLimits, SeverityWarning, fmt.Sprintf("allocation %q has no units: every agent that names its key is refused", a.Name))
		}
		if len(a.Filters) == 0 {
			continue
		}
		m, err := licensing.CompileFilters("filters", a.Filters)
		if err != nil {
			return nil, fmt.Errorf("lint: compile filters of %s: %w", a.ID, err)
		}
		matched := false
		for _, s := range subjects {
			if ok, _ := m.Match(s); ok {
				matched = true
				break
			}
		}
		if !matched {
			one(LintFilterMatchesNothing, SeverityWarning, fmt.Sprintf("the filters of allocation %q match no agent that ran in the last %d days", a.Name, int(LintSeen.Hours()/24)))
		}
		for _, f := range a.Filters {
			if f.Operator != licensing.OpRegex {
				continue
			}
			if all, n := everyOne(f, seen); all && n >= 2 {
				one(LintRegexTooBroad, SeverityWarning, fmt.Sprintf("the %s filter /%s/ of allocation %q matches every one of the %d %s seen",
					strings.ToLower(f.Type), f.Value, a.Name, n, map[string]string{licensing.FilterApplication: "applications", licensing.FilterHost: "hosts"}[f.Type]))
			}
		}
		key := canonicalFilters(a.Filters)
		if first, ok := filtersOf[key]; ok {
			one(LintShadowedByEarlier, SeverityInfo, fmt.Sprintf("allocation %q has the same filters as the earlier %q: it admits the same agents, and only agents that name its licence key reach it",
				a.Name, name[first]))
			out[len(out)-1].Allocations = []string{a.ID, first}
		} else {
			filtersOf[key] = a.ID
		}
	}
	for _, a := range allocs {
		for _, lim := range a.Limits {
			if u := used[a.ID][lim.Package]; u > lim.Units {
				out = append(out, Finding{Code: LintLimitBelowUsage, Severity: SeverityError, Allocations: []string{a.ID}, Hosts: []string{},
					ExtraUnits: u - lim.Units, Message: fmt.Sprintf("allocation %q uses %d %s units over a limit of %d (a smaller licence or limit since): new agents are refused until usage falls",
						a.Name, u, lim.Package, lim.Units)})
			}
		}
	}
	info, err := l.lic.AccountInfo(ctx, accountID)
	switch {
	case errors.Is(err, fault.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("lint: %w", err)
	default:
		if left := info.License.Payload.ExpirationDate.Sub(now); left < 30*24*time.Hour {
			sev := SeverityWarning
			if left < 7*24*time.Hour {
				sev = SeverityError
			}
			out = append(out, Finding{Code: LintExpiresSoon, Severity: sev, Allocations: []string{}, Hosts: []string{},
				Message: fmt.Sprintf("the licence %s expires on %s, in %d days", info.License.Payload.LicenseID,
					info.License.Payload.ExpirationDate.UTC().Format(time.DateOnly), int(max(left, 0).Hours()/24))})
		}
	}
	rank := map[string]int{SeverityError: 0, SeverityWarning: 1, SeverityInfo: 2}
	slices.SortStableFunc(out, func(x, y Finding) int {
		return cmp.Or(cmp.Compare(rank[x.Severity], rank[y.Severity]), cmp.Compare(x.Code, y.Code),
			cmp.Compare(strings.Join(x.Allocations, ","), strings.Join(y.Allocations, ",")))
	})
	return out, nil
}

// everyOne reports whether a REGEX filter matches every distinct
// application (or host) seen, and how many there are.
func everyOne(f licensing.Filter, seen []SeenAgent) (bool, int) {
	m, err := licensing.CompileFilters("f", []licensing.Filter{f})
	if err != nil {
		return false, 0
	}
	done := map[string]bool{}
	for _, s := range seen {
		sub := subject(s.HostID, s.HostName, s.AppID, s.AppName)
		k := "h:" + s.HostID
		if f.Type == licensing.FilterApplication {
			if !sub.HasApp {
				continue
			}
			k = appKey(s.AppID, s.AppName)
		}
		if done[k] {
			continue
		}
		done[k] = true
		if ok, _ := m.Match(sub); !ok {
			return false, len(done)
		}
	}
	return true, len(done)
}

func canonicalFilters(fs []licensing.Filter) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.Type + "\x00" + f.Operator + "\x00" + f.Value
	}
	slices.Sort(parts)
	return strings.Join(parts, "\x01")
}
