// Package usage holds the read models of licence usage: usage grouped by
// application or host (API.md §5) and the applications the engine has seen.
package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/lcorp/licensing-controller/internal/engine"
	"github.com/lcorp/licensing-controller/internal/fault"
)

// Store is what the read models need.
type Store interface {
	UsageByApps(ctx context.Context, accountID int64, ids []int64, names []string, now time.Time, sink engine.UsageSink) error
	UsageByHosts(ctx context.Context, accountID int64, hostIDs []string, now time.Time, sink engine.UsageSink) error
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

// keys sorts and dedups the keys of a query: the store reads each once, in order.
func keys[K cmp.Ordered](ks []K) []K { return slices.Compact(slices.Sorted(slices.Values(ks))) }

// EachApplicationByID groups live usage by application id: it hands each
// application's item to items as soon as it is built and returns the
// totals. Errors: ErrInvalid.
func (s *Service) EachApplicationByID(ctx context.Context, accountID int64, ids []int64, items ItemSink[AppItem]) (Totals, error) {
	if err := checkKeys("appId", len(ids)); err != nil {
		return Totals{}, err
	}
	ids, now := keys(ids), s.now().UTC()
	t, err := streamed(func(sink engine.UsageSink) error { return s.store.UsageByApps(ctx, accountID, ids, nil, now, sink) },
		appStream(items), wholeApps)
	if err != nil {
		return Totals{}, fmt.Errorf("usage by application id: %w", err)
	}
	return t, nil
}

// EachApplicationByName is EachApplicationByID by application name.
func (s *Service) EachApplicationByName(ctx context.Context, accountID int64, names []string, items ItemSink[AppItem]) (Totals, error) {
	if err := checkNames("appName", names); err != nil {
		return Totals{}, err
	}
	names, now := keys(names), s.now().UTC()
	t, err := streamed(func(sink engine.UsageSink) error { return s.store.UsageByApps(ctx, accountID, nil, names, now, sink) },
		appStream(items), wholeApps)
	if err != nil {
		return Totals{}, fmt.Errorf("usage by application name: %w", err)
	}
	return t, nil
}

// EachHost is EachApplicationByID by host id.
func (s *Service) EachHost(ctx context.Context, accountID int64, hostIDs []string, items ItemSink[HostItem]) (Totals, error) {
	if err := checkNames("hostId", hostIDs); err != nil {
		return Totals{}, err
	}
	hostIDs, now := keys(hostIDs), s.now().UTC()
	t, err := streamed(func(sink engine.UsageSink) error { return s.store.UsageByHosts(ctx, accountID, hostIDs, now, sink) },
		hostStream(items), wholeHosts)
	if err != nil {
		return Totals{}, fmt.Errorf("usage by host: %w", err)
	}
	return t, nil
}

// ByApplicationIDs is EachApplicationByID's whole answer at once.
func (s *Service) ByApplicationIDs(ctx context.Context, accountID int64, ids []int64) (AppGroup, error) {
	items := itemMap[AppItem]{}
	t, err := s.EachApplicationByID(ctx, accountID, ids, items)
	if err != nil {
		return AppGroup{}, err
	}
	return AppGroup{t.VCPUTotal, t.FallbackLicenseUnits, items}, nil
}

// ByHosts is EachHost's whole answer at once.
func (s *Service) ByHosts(ctx context.Context, accountID int64, hostIDs []string) (HostGroup, error) {
	items := itemMap[HostItem]{}
	t, err := s.EachHost(ctx, accountID, hostIDs, items)
	if err != nil {
		return HostGroup{}, err
	}
	return HostGroup{t.VCPUTotal, t.FallbackLicenseUnits, items}, nil
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
		fs = appendFallback(fs, r)
	}
	return sumFallback(fs)
}

// appendFallback appends the row's fallback charge, if any, to fs.
func appendFallback(fs []fallbackCharge, r *engine.UsageRow) []fallbackCharge {
	if r.PoolKind == engine.PoolAllocation && r.HostFallback {
		fs = append(fs, fallbackCharge{r.PoolID, r.HostID, r.HostPackage, r.HostUnits})
	}
	return fs
}

// sumFallback sums the distinct charges of fs per package (nil: none).
// It reorders fs.
func sumFallback(fs []fallbackCharge) map[string]int64 {
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
		it := appItem(run, top)
		g.VCPUTotal += it.VCPU
		g.Items[strconv.FormatInt(it.AppID, 10)] = it
	})
	return g
}

// appItem is the item of one application's rows, sorted by host.
func appItem(run []*engine.UsageRow, top bool) AppItem {
	last := run[len(run)-1]
	it := AppItem{AppID: *last.AppID, AppName: deref(last.AppName), Nodes: distinct(run, nodeOf),
		Containers: distinct(run, containerOf), Agents: agents(run)}
	if top {
		it.VCPU = vcpuOf(run)
		hg := groupByHost(run, false)
		it.Hosts = &hg
	}
	return it
}

// groupByHost groups rows by host; nested (inside an application) items
// have no applications. It reorders rows.
func groupByHost(rows []*engine.UsageRow, top bool) HostGroup {
	slices.SortStableFunc(rows, byHostID)
	g := HostGroup{Items: make(map[string]HostItem, countRuns(rows, sameHost)), FallbackLicenseUnits: map[string]int64{}}
	runs(rows, sameHost, func(run []*engine.UsageRow) {
		it := hostItem(run, top)
		for pkg, u := range it.FallbackLicenseUnits {
			g.FallbackLicenseUnits[pkg] += u
		}
		g.VCPUTotal += it.VCPU
		g.Items[run[0].HostID] = it
	})
	return g
}

func byHostID(a, b *engine.UsageRow) int { return cmp.Compare(a.HostID, b.HostID) }

// hostItem is the item of one host's rows.
func hostItem(run []*engine.UsageRow, top bool) HostItem {
	r := run[0]
	it := HostItem{Host: cmp.Or(r.HostName, r.HostID), Nodes: distinct(run, nodeOf), Containers: distinct(run, containerOf),
		Agents: agents(run), FallbackLicenseUnits: fallbackUnits(run), SharedByAllocations: sharedByAllocations(run)}
	if r.HostVCPU != nil {
		it.VCPU = *r.HostVCPU
	}
	if top {
		ag := groupByApp(slices.Clone(run), false)
		it.Applications = &ag
	}
	return it
}

// Totals are a grouped answer's figures besides its items.
type Totals struct {
	VCPUTotal            int64
	FallbackLicenseUnits map[string]int64
}

// ItemSink receives the items of a grouped-usage answer as they are built,
// each key once and in no particular order, while the store still reads
// the rows of the next. Reset forgets the items handed over so far: the
// rows are being read again.
type ItemSink[I any] interface {
	Reset()
	Item(key string, it I) error
}

// itemMap is an ItemSink that keeps the items.
type itemMap[I any] map[string]I

func (m itemMap[I]) Reset() { clear(m) }

func (m itemMap[I]) Item(key string, it I) error {
	m[key] = it
	return nil
}

// stream groups rows as the store hands them over (an engine.UsageSink).
// The rows of one key (an application or a host) arrive one after
// another, and a key's item is built, and handed to the sink, as soon as
// the next key's rows begin: while the database is still reading them,
// not after the last row, and from one buffer of rows reused from key to
// key. Should a key's rows come apart (a store may send them in any
// order), Row says so with errApart and the rows must be read again and
// grouped at the end.
type stream[I any] struct {
	same func(a, b *engine.UsageRow) bool
	key  func(r *engine.UsageRow) string
	item func(run []*engine.UsageRow) I
	vcpu func(it I) int64
	skip func(r *engine.UsageRow) bool // rows left out (nil: none)
	sink ItemSink[I]

	run       []engine.UsageRow // the current key's rows
	ptrs      []*engine.UsageRow
	seen      map[string]bool
	fallback  []fallbackCharge // of every row
	vcpuTotal int64
}

// errApart is Row's answer to a row of a key whose rows came before.
var errApart = errors.New("the rows of a key came apart")

func (s *stream[I]) Start() {
	s.run, s.fallback, s.vcpuTotal = s.run[:0], s.fallback[:0], 0
	clear(s.seen)
	s.sink.Reset()
}

func (s *stream[I]) Row(r *engine.UsageRow) error {
	if s.skip != nil && s.skip(r) {
		return nil
	}
	if len(s.run) > 0 && !s.same(&s.run[0], r) {
		if err := s.flush(); err != nil {
			return err
		}
		if s.seen[s.key(r)] {
			return errApart
		}
	}
	s.run = append(s.run, *r)
	s.fallback = appendFallback(s.fallback, r)
	return nil
}

// flush builds the item of the current key's rows and hands it over. An
// item keeps none of the rows (their strings only), so their buffer is
// reused.
func (s *stream[I]) flush() error {
	if len(s.run) == 0 {
		return nil
	}
	s.ptrs = s.ptrs[:0]
	for i := range s.run {
		s.ptrs = append(s.ptrs, &s.run[i])
	}
	k, it := s.key(s.ptrs[0]), s.item(s.ptrs)
	s.seen[k] = true
	s.vcpuTotal += s.vcpu(it)
	s.run = s.run[:0]
	return s.sink.Item(k, it)
}

// totals hands the last item over and returns the totals: the vCPUs of
// the items and the distinct fallback charges (per allocation and host) of
// the rows, which are the sum of the hosts' by host.
func (s *stream[I]) totals() (Totals, error) {
	if err := s.flush(); err != nil {
		return Totals{}, err
	}
	t := Totals{VCPUTotal: s.vcpuTotal, FallbackLicenseUnits: sumFallback(s.fallback)}
	if t.FallbackLicenseUnits == nil {
		t.FallbackLicenseUnits = map[string]int64{}
	}
	return t, nil
}

func appStream(sink ItemSink[AppItem]) *stream[AppItem] {
	return &stream[AppItem]{same: sameApp, key: func(r *engine.UsageRow) string { return strconv.FormatInt(*r.AppID, 10) },
		skip: func(r *engine.UsageRow) bool { return r.AppID == nil },
		item: func(run []*engine.UsageRow) AppItem {
			slices.SortFunc(run, byHostID)
			return appItem(run, true)
		},
		vcpu: func(it AppItem) int64 { return it.VCPU }, sink: sink, seen: map[string]bool{}}
}

func hostStream(sink ItemSink[HostItem]) *stream[HostItem] {
	return &stream[HostItem]{same: sameHost, key: func(r *engine.UsageRow) string { return r.HostID },
		item: func(run []*engine.UsageRow) HostItem { return hostItem(run, true) },
		vcpu: func(it HostItem) int64 { return it.VCPU }, sink: sink, seen: map[string]bool{}}
}

// streamed reads rows into s and returns the totals; should the rows come
// apart, it reads them again, groups them all at the end (whole) and hands
// the items over.
func streamed[I any](read func(engine.UsageSink) error, s *stream[I], whole func([]engine.UsageRow) (Totals, map[string]I)) (Totals, error) {
	err := read(s)
	if !errors.Is(err, errApart) {
		if err != nil {
			return Totals{}, err
		}
		return s.totals()
	}
	var rows engine.UsageRows
	if err := read(&rows); err != nil {
		return Totals{}, err
	}
	t, items := whole(rows)
	s.sink.Reset()
	for k, it := range items {
		if err := s.sink.Item(k, it); err != nil {
			return Totals{}, err
		}
	}
	return t, nil
}

func wholeApps(rows []engine.UsageRow) (Totals, map[string]AppItem) {
	g := byApp(rows, true)
	return Totals{g.VCPUTotal, g.FallbackLicenseUnits}, g.Items
}

func wholeHosts(rows []engine.UsageRow) (Totals, map[string]HostItem) {
	g := byHost(rows, true)
	return Totals{g.VCPUTotal, g.FallbackLicenseUnits}, g.Items
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
