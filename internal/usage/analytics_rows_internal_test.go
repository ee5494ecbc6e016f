package usage

import (
	"slices"
	"testing"
)

// The rows of a leases answer: groups of different sets (a kept day, the
// tail, a request's fork) and rolled-up rows with the same type, version,
// host and application are one row; rows sort by host, application key,
// type, then version.
func TestLeaseRowsMergeAcrossSetsAndSortByTheirStrings(t *testing.T) {
	str := func(s string) *string { return &s }
	ev := func(typ, ver, host, app string) *EventRow {
		return &EventRow{AgentType: typ, AgentVersion: str(ver), HostID: host, AppName: str(app)}
	}
	day, tail := newInterner(), newInterner()
	dayGroups := []*leaseGroup{
		attrsOf(ev("JAVA", "2", "h-b", "shop"), day).group,
		attrsOf(ev("DOTNET", "1", "h-b", "shop"), day).group,
		attrsOf(&EventRow{AgentType: "MACHINE", HostID: "h-c"}, day).group,
	}
	tailGroups := []*leaseGroup{
		attrsOf(ev("JAVA", "2", "h-b", "shop"), tail).group,
		attrsOf(ev("JAVA", "10", "h-b", "shop"), tail).group,
		attrsOf(ev("JAVA", "1", "h-a", "zoo"), tail).group,
		attrsOf(ev("JAVA", "2", "h-b", "shop"), newInterner()).group, // the same row twice in one list
	}
	rolled := []rowStrings{{"h-b", appKey(nil, str("api")), "JAVA", "1"}, {"h-b", appKey(nil, str("shop")), "JAVA", "2"}}
	var r leaseRows
	r.indexList(newRowIndex(slices.Clone(dayGroups)))
	r.indexList(newRowIndex(slices.Clone(tailGroups)))
	r.lists = append(r.lists, rowList{n: len(rolled), key: func(i int) rowStrings { return rolled[i] }})
	r.merge()

	names := map[int32]string{}
	name := func(k rowStrings) string { return k.host + "/" + k.app + "/" + k.typ + "/" + k.version }
	for j, l := range r.lists {
		for i, row := range l.row {
			k := l.key(i)
			if got, ok := names[row]; ok && got != name(k) {
				t.Errorf("list %d item %d is row %d, %s, which is also %s", j, i, row, name(k), got)
			}
			names[row] = name(k)
		}
	}
	var got []string
	for i := range int32(len(r.secs)) {
		got = append(got, names[i])
	}
	want := []string{"h-a/n:zoo/JAVA/1", "h-b/n:api/JAVA/1", "h-b/n:shop/DOTNET/1", "h-b/n:shop/JAVA/10", "h-b/n:shop/JAVA/2", "h-c/n:/MACHINE/"}
	if !slices.Equal(got, want) {
		t.Errorf("rows:\n got %v\nwant %v", got, want)
	}
	// Each list's groups are found where it put them.
	shop := newRowIndex(slices.Clone(tailGroups))
	for _, g := range tailGroups {
		if i := shop.find(g); i < 0 || shop.groups[i] != g {
			t.Errorf("find(%v) = %d", g.groupKey, i)
		}
	}
	if i := shop.find(dayGroups[0]); i >= 0 {
		t.Errorf("a group of another set found at %d", i)
	}
}
