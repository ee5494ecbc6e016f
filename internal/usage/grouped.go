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
	if err := checkKeys("appName", len(names)); err != nil {
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
	if err := checkKeys("hostId", len(hostIDs)); err != nil {
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

// set collects distinct values and returns them sorted.
type set[T cmp.Ordered] map[T]struct{}

func (s set[T]) add(v *T) {
	if v != nil {
		s[*v] = struct{}{}
	}
}

func (s set[T]) sorted() []T {
	out := make([]T, 0, len(s))
	for v := range s {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// acc accumulates the rows of one item (an application or a host).
type acc struct {
	nodes, containers set[string]
	agents            map[string]Agent
	hosts             map[string]*int64 // host id → vCPU (nil: unknown)
	fallback          map[string]map[string]int64
	pools             set[string]
}

func newAcc() *acc {
	return &acc{nodes: set[string]{}, containers: set[string]{}, agents: map[string]Agent{},
		hosts: map[string]*int64{}, fallback: map[string]map[string]int64{}, pools: set[string]{}}
}

func (a *acc) add(r engine.UsageRow) {
	a.nodes.add(r.Node)
	a.containers.add(r.ContainerID)
	a.agents[r.AgentType+"\x00"+deref(r.AgentVersion)+"\x00"+r.LicenseKey] = Agent{Type: r.AgentType,
		Version: r.AgentVersion, LicenseKey: r.LicenseKey}
	a.hosts[r.HostID] = r.HostVCPU
	if r.PoolKind == engine.PoolAllocation {
		a.pools[r.PoolID] = struct{}{}
		if r.HostFallback {
			a.fallback[r.PoolID+"\x00"+r.HostID] = map[string]int64{r.HostPackage: r.HostUnits}
		}
	}
}

func (a *acc) agentList(include bool) []Agent {
	if !include {
		return nil
	}
	out := make([]Agent, 0, len(a.agents))
	for _, ag := range a.agents {
		out = append(out, ag)
	}
	slices.SortFunc(out, func(x, y Agent) int {
		return cmp.Or(cmp.Compare(x.Type, y.Type), cmp.Compare(deref(x.Version), deref(y.Version)), cmp.Compare(x.LicenseKey, y.LicenseKey))
	})
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (a *acc) vcpu() int64 {
	var n int64
	for _, v := range a.hosts {
		if v != nil {
			n += *v
		}
	}
	return n
}

func (a *acc) fallbackUnits() map[string]int64 {
	out := map[string]int64{}
	for _, m := range a.fallback {
		for pkg, u := range m {
			out[pkg] += u
		}
	}
	return out
}

func appKey(r engine.UsageRow) (string, bool) {
	if r.AppID == nil {
		return "", false
	}
	return strconv.FormatInt(*r.AppID, 10), true
}

// byApp groups rows by application; nested (inside a host) items carry
// vCPU 0 and no hosts, as the seed shows.
func byApp(rows []engine.UsageRow, top bool) AppGroup {
	apps := map[string]*acc{}
	meta := map[string]engine.UsageRow{}
	rowsOf := map[string][]engine.UsageRow{}
	for _, r := range rows {
		k, ok := appKey(r)
		if !ok {
			continue
		}
		if apps[k] == nil {
			apps[k] = newAcc()
		}
		apps[k].add(r)
		meta[k] = r
		rowsOf[k] = append(rowsOf[k], r)
	}
	g := AppGroup{Items: map[string]AppItem{}, FallbackLicenseUnits: map[string]int64{}}
	all := newAcc()
	for k, a := range apps {
		m := meta[k]
		it := AppItem{AppID: *m.AppID, AppName: deref(m.AppName), Nodes: a.nodes.sorted(), Containers: a.containers.sorted(),
			Agents: a.agentList(true)}
		if top {
			it.VCPU = a.vcpu()
			hg := byHost(rowsOf[k], false)
			it.Hosts = &hg
		}
		g.VCPUTotal += it.VCPU
		g.Items[k] = it
		for fk, fm := range a.fallback {
			all.fallback[fk] = fm
		}
	}
	g.FallbackLicenseUnits = all.fallbackUnits()
	return g
}

// byHost groups rows by host; nested (inside an application) items have
// no applications.
func byHost(rows []engine.UsageRow, top bool) HostGroup {
	hosts := map[string]*acc{}
	rowsOf := map[string][]engine.UsageRow{}
	for _, r := range rows {
		if hosts[r.HostID] == nil {
			hosts[r.HostID] = newAcc()
		}
		hosts[r.HostID].add(r)
		rowsOf[r.HostID] = append(rowsOf[r.HostID], r)
	}
	g := HostGroup{Items: map[string]HostItem{}}
	total := map[string]int64{}
	for id, a := range hosts {
		it := HostItem{Host: id, VCPU: a.vcpu(), Nodes: a.nodes.sorted(), Containers: a.containers.sorted(),
			Agents: a.agentList(true), FallbackLicenseUnits: a.fallbackUnits(), SharedByAllocations: len(a.pools) > 1}
		if top {
			ag := byApp(rowsOf[id], false)
			it.Applications = &ag
		}
		for pkg, u := range it.FallbackLicenseUnits {
			total[pkg] += u
		}
		g.VCPUTotal += it.VCPU
		g.Items[id] = it
	}
	g.FallbackLicenseUnits = total
	return g
}
