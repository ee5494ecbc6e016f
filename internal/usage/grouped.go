// Package usage holds the read models of licence usage: usage grouped by
// application or host (API.md §5) and the applications the engine has seen.
package usage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// Store is what the read models need.
type Store interface {
	UsageByApps(ctx context.Context, accountID int64, ids []int64, names []string, now time.Time) ([]engine.UsageRow, error)
	UsageByHosts(ctx context.Context, accountID int64, hostIDs []string, now time.Time) ([]engine.UsageRow, error)
	Applications(ctx context.Context, accountID int64) ([]engine.Application, error)
}

// Service answers usage questions.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service; now may be nil (time.Now).
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// MaxGroupKeys is the most ids or names one grouped-usage query may name.
const MaxGroupKeys = 1000

// Agent is one kind of licensed agent.
type Agent struct {
	Type       string
	Version    *string
	LicenseKey string
}

// AppItem is an application's usage.
type AppItem struct {
	AppID      int64
	AppName    string
	VCPU       int64
	Nodes      []string
	Containers []string
	Agents     []Agent
	Hosts      *HostGroup // nil inside a host item
}

// HostItem is a host's usage.
type HostItem struct {
	Host                 string
	VCPU                 int64
	Nodes                []string
	Containers           []string
	Agents               []Agent
	FallbackLicenseUnits map[string]int64
	// SharedByAllocations marks a host charged under several allocations
	// (each counts it; the account counts it once).
	SharedByAllocations bool
	Applications        *AppGroup // nil inside an application item
}

// AppGroup is usage by application.
type AppGroup struct {
	VCPUTotal            int64
	FallbackLicenseUnits map[string]int64
	Items                map[string]AppItem
}

// HostGroup is usage by host.
type HostGroup struct {
	VCPUTotal            int64
	FallbackLicenseUnits map[string]int64
	Items                map[string]HostItem
}

// checkNames is checkKeys for names and ids given as strings: none empty.
func checkNames(field string, keys []string) error {
	if slices.Contains(keys, "") {
		return fault.Invalid(field, "must not be empty")
	}
	return checkKeys(field, len(keys))
}

func checkKeys(field string, n int) error {
	if n == 0 {
		return fault.Invalid(field, "is required: name at least one")
	}
	if n > MaxGroupKeys {
		return fault.Invalid(field, fmt.Sprintf("may be given at most %d times", MaxGroupKeys))
	}
	return nil
}

// ByApplicationIDs groups live usage by application id. Errors: ErrInvalid.
func (s *Service) ByApplicationIDs(ctx context.Context, accountID int64, ids []int64) (AppGroup, error) {
	if err := checkKeys("appId", len(ids)); err != nil {
		return AppGroup{}, err
	}
	rows, err := s.store.UsageByApps(ctx, accountID, slices.Compact(slices.Sorted(slices.Values(ids))), nil, s.now().UTC())
	if err != nil {
		return AppGroup{}, fmt.Errorf("usage by application id: %w", err)
	}
	return byApp(rows, true), nil
}

// ByApplicationNames groups live usage by application name. Errors: ErrInvalid.
func (s *Service) ByApplicationNames(ctx context.Context, accountID int64, names []string) (AppGroup, error) {
	if err := checkNames("appName", names); err != nil {
		return AppGroup{}, err
	}
	rows, err := s.store.UsageByApps(ctx, accountID, nil, names, s.now().UTC())
	if err != nil {
		return AppGroup{}, fmt.Errorf("usage by application name: %w", err)
	}
	return byApp(rows, true), nil
}

// ByHosts groups live usage by host id. Errors: ErrInvalid.
func (s *Service) ByHosts(ctx context.Context, accountID int64, hostIDs []string) (HostGroup, error) {
	if err := checkNames("hostId", hostIDs); err != nil {
		return HostGroup{}, err
	}
	rows, err := s.store.UsageByHosts(ctx, accountID, hostIDs, s.now().UTC())
	if err != nil {
		return HostGroup{}, fmt.Errorf("usage by host: %w", err)
	}
	return byHost(rows, true), nil
}

// Applications lists the applications the engine has seen.
func (s *Service) Applications(ctx context.Context, accountID int64) ([]engine.Application, error) {
	apps, err := s.store.Applications(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return apps, nil
}

// Grouping sorts the rows (by pointer) and summarises contiguous runs: an
// application's rows, then its hosts' rows inside them. A query names up to
// a thousand applications or hosts and reads thousands of leases; sorted
// runs and distinct-by-sort lists keep that to a few allocations per item
// instead of several maps per item.

// distinct returns the sorted distinct non-nil values of a field.
func distinct(rows []*engine.UsageRow, field func(*engine.UsageRow) *string) []string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		if v := field(r); v != nil {
			out = append(out, *v)
		}
	}
	slices.Sort(out)
	return slices.Clip(slices.Compact(out))
}

func nodeOf(r *engine.UsageRow) *string      { return r.Node }
func containerOf(r *engine.UsageRow) *string { return r.ContainerID }

// compareAgents orders agents by type, version and licence key. (cmp.Or
// would compare all three every time: its arguments are evaluated first.)
func compareAgents(x, y Agent) int {
	if c := cmp.Compare(x.Type, y.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(deref(x.Version), deref(y.Version)); c != 0 {
		return c
	}
	return cmp.Compare(x.LicenseKey, y.LicenseKey)
}

// agents returns the distinct kinds of agents of the rows, sorted.
func agents(rows []*engine.UsageRow) []Agent {
	out := make([]Agent, len(rows))
	for i, r := range rows {
		out[i] = Agent{Type: r.AgentType, Version: r.AgentVersion, LicenseKey: r.LicenseKey}
	}
	slices.SortFunc(out, compareAgents)
	return slices.Clip(slices.CompactFunc(out, func(x, y Agent) bool { return compareAgents(x, y) == 0 }))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fallbackCharge is a host's fallback charge in one allocation.
type fallbackCharge struct {
	pool, host, pkg string
	units           int64
}

// fallbackUnits sums the distinct fallback charges (per allocation and
// host) of the rows per package; nil when there are none, as for most hosts.
func fallbackUnits(rows []*engine.UsageRow) map[string]int64 {
	var fs []fallbackCharge
	for _, r := range rows {
		if r.PoolKind == engine.PoolAllocation && r.HostFallback {
			fs = append(fs, fallbackCharge{r.PoolID, r.HostID, r.HostPackage, r.HostUnits})
		}
	}
	if len(fs) == 0 {
		return nil
	}
	slices.SortFunc(fs, func(x, y fallbackCharge) int { return cmp.Or(cmp.Compare(x.pool, y.pool), cmp.Compare(x.host, y.host)) })
	fs = slices.CompactFunc(fs, func(x, y fallbackCharge) bool { return x.pool == y.pool && x.host == y.host })
	out := make(map[string]int64, len(fs))
	for _, f := range fs {
		out[f.pkg] += f.units
	}
	return out
}

// countRuns counts the runs of rows with equal keys; rows are sorted by key.
func countRuns(rows []*engine.UsageRow, same func(a, b *engine.UsageRow) bool) int {
	n := 0
	runs(rows, same, func([]*engine.UsageRow) { n++ })
	return n
}

// runs calls fn for each run of rows with equal keys; rows are sorted by key.
func runs(rows []*engine.UsageRow, same func(a, b *engine.UsageRow) bool, fn func(run []*engine.UsageRow)) {
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && same(rows[i], rows[j]) {
			j++
		}
		fn(rows[i:j])
		i = j
	}
}

func sameHost(a, b *engine.UsageRow) bool { return a.HostID == b.HostID }
func sameApp(a, b *engine.UsageRow) bool  { return *a.AppID == *b.AppID }

// vcpuOf sums the vCPUs of the distinct hosts of rows sorted by host.
func vcpuOf(rows []*engine.UsageRow) int64 {
	var n int64
	runs(rows, sameHost, func(run []*engine.UsageRow) {
		if v := run[0].HostVCPU; v != nil {
			n += *v
		}
	})
	return n
}

func pointers(rows []engine.UsageRow) []*engine.UsageRow {
	out := make([]*engine.UsageRow, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	return out
}

func byApp(rows []engine.UsageRow, top bool) AppGroup { return groupByApp(pointers(rows), top) }

func byHost(rows []engine.UsageRow, top bool) HostGroup { return groupByHost(pointers(rows), top) }

// groupByApp groups rows by application; nested (inside a host) items
// carry vCPU 0 and no hosts, as the seed shows. Rows without an
// application are left out. It reorders rows.
func groupByApp(rows []*engine.UsageRow, top bool) AppGroup {
	rows = slices.DeleteFunc(rows, func(r *engine.UsageRow) bool { return r.AppID == nil })
	slices.SortFunc(rows, func(a, b *engine.UsageRow) int {
		if c := cmp.Compare(*a.AppID, *b.AppID); c != 0 {
			return c // without comparing the hosts' names
		}
		return cmp.Compare(a.HostID, b.HostID)
	})
	g := AppGroup{Items: make(map[string]AppItem, countRuns(rows, sameApp)), FallbackLicenseUnits: fallbackUnits(rows)}
	if g.FallbackLicenseUnits == nil {
		g.FallbackLicenseUnits = map[string]int64{}
	}
	runs(rows, sameApp, func(run []*engine.UsageRow) {
		last := run[len(run)-1]
		it := AppItem{AppID: *last.AppID, AppName: deref(last.AppName), Nodes: distinct(run, nodeOf),
			Containers: distinct(run, containerOf), Agents: agents(run)}
		if top {
			it.VCPU = vcpuOf(run)
			hg := groupByHost(run, false)
			it.Hosts = &hg
		}
		g.VCPUTotal += it.VCPU
		g.Items[strconv.FormatInt(it.AppID, 10)] = it
	})
	return g
}

// groupByHost groups rows by host; nested (inside an application) items
// have no applications. It reorders rows.
func groupByHost(rows []*engine.UsageRow, top bool) HostGroup {
	slices.SortStableFunc(rows, func(a, b *engine.UsageRow) int { return cmp.Compare(a.HostID, b.HostID) })
	g := HostGroup{Items: make(map[string]HostItem, countRuns(rows, sameHost)), FallbackLicenseUnits: map[string]int64{}}
	runs(rows, sameHost, func(run []*engine.UsageRow) {
		r := run[0]
		it := HostItem{Host: cmp.Or(r.HostName, r.HostID), Nodes: distinct(run, nodeOf), Containers: distinct(run, containerOf),
			Agents: agents(run), FallbackLicenseUnits: fallbackUnits(run), SharedByAllocations: sharedByAllocations(run)}
		if r.HostVCPU != nil {
			it.VCPU = *r.HostVCPU
		}
		for pkg, u := range it.FallbackLicenseUnits {
			g.FallbackLicenseUnits[pkg] += u
		}
		if top {
			ag := groupByApp(slices.Clone(run), false)
			it.Applications = &ag
		}
		g.VCPUTotal += it.VCPU
		g.Items[r.HostID] = it
	})
	return g
}

// sharedByAllocations tells whether rows belong to more than one allocation.
func sharedByAllocations(rows []*engine.UsageRow) bool {
	first := ""
	for _, r := range rows {
		switch {
		case r.PoolKind != engine.PoolAllocation:
		case first == "":
			first = r.PoolID
		case r.PoolID != first:
			return true
		}
	}
	return false
}
