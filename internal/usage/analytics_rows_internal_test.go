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
	var nums rowNumbers
	a := nums.ofGroup(attrsOf(ev("JAVA", "2", "h-b", "shop"), day).group)
	b := nums.ofGroup(attrsOf(ev("JAVA", "2", "h-b", "shop"), tail).group)
	c := nums.of("JAVA", "2", "h-b", appKey(nil, str("shop")))
	if a != b || a != c {
		t.Fatalf("one row in three sources: %v %v %v", a, b, c)
	}
	rows := []rowKey{
		a,
		nums.ofGroup(attrsOf(ev("JAVA", "10", "h-b", "shop"), tail).group),
		nums.ofGroup(attrsOf(ev("DOTNET", "1", "h-b", "shop"), day).group),
		nums.ofGroup(attrsOf(ev("JAVA", "1", "h-a", "zoo"), tail).group),
		nums.of("JAVA", "1", "h-b", appKey(nil, str("api"))),
		nums.ofGroup(attrsOf(&EventRow{AgentType: "MACHINE", HostID: "h-c"}, day).group),
	}
	slices.SortFunc(rows, nums.order())
	var got []string
	for _, r := range rows {
		tv := nums.tvs.list[r.tv]
		got = append(got, nums.hosts.list[r.host]+"/"+nums.apps.list[r.app]+"/"+tv.typ+"/"+tv.version)
	}
	want := []string{"h-a/n:zoo/JAVA/1", "h-b/n:api/JAVA/1", "h-b/n:shop/DOTNET/1", "h-b/n:shop/JAVA/10", "h-b/n:shop/JAVA/2", "h-c/n:/MACHINE/"}
	if !slices.Equal(got, want) {
		t.Errorf("rows:\n got %v\nwant %v", got, want)
	}
}

func TestPermuteFollowsEveryCycle(t *testing.T) {
	for _, order := range [][]int{{}, {0}, {1, 0}, {2, 0, 1}, {0, 2, 1, 4, 3}, {4, 3, 2, 1, 0}, {1, 2, 3, 4, 0}} {
		xs := []string{"a", "b", "c", "d", "e"}[:len(order)]
		want := make([]string, len(order))
		for i, j := range order {
			want[i] = xs[j]
		}
		got := slices.Clone(xs)
		permute(got, slices.Clone(order))
		if !slices.Equal(got, want) {
			t.Errorf("permute(%v): %v, want %v", order, got, want)
		}
	}
}
