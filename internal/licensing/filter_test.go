package licensing

import (
	"errors"
	"testing"

	"github.com/lcorp/licensing-controller/internal/fault"
)

func TestFilterMatching(t *testing.T) {
	orders := Subject{HasApp: true, AppID: 18156, AppName: "Sangrah-OrderFulfillment", HostID: "ip-10-117-85-124", HostName: "ip-10-117-85-124.ec2"}
	machine := Subject{HostID: "sangrah_analytics", HostName: "sangrah_analytics"}
	f := func(typ, op, v string) Filter { return Filter{Type: typ, Operator: op, Value: v} }
	for _, tc := range []struct {
		name    string
		filters []Filter
		s       Subject
		want    bool
	}{
		{"no filters admit all", nil, orders, true},
		{"app id equals", []Filter{f("APPLICATION", "ID_EQUALS", "18156")}, orders, true},
		{"app id differs", []Filter{f("APPLICATION", "ID_EQUALS", "18157")}, orders, false},
		{"app name equals", []Filter{f("APPLICATION", "EQUALS", "Sangrah-OrderFulfillment")}, orders, true},
		{"app name equals is case-sensitive", []Filter{f("APPLICATION", "EQUALS", "sangrah-orderfulfillment")}, orders, false},
		{"app starts with", []Filter{f("APPLICATION", "STARTS_WITH", "Sangrah-")}, orders, true},
		{"app starts with miss", []Filter{f("APPLICATION", "STARTS_WITH", "Order")}, orders, false},
		{"app ends with", []Filter{f("APPLICATION", "ENDS_WITH", "Fulfillment")}, orders, true},
		{"app ends with miss", []Filter{f("APPLICATION", "ENDS_WITH", "Sangrah")}, orders, false},
		{"app contains", []Filter{f("APPLICATION", "CONTAINS", "Order")}, orders, true},
		{"app contains miss", []Filter{f("APPLICATION", "CONTAINS", "order")}, orders, false},
		{"app regex anywhere", []Filter{f("APPLICATION", "REGEX", "Order.*ment")}, orders, true},
		{"app regex anchored miss", []Filter{f("APPLICATION", "REGEX", "^Order")}, orders, false},
		{"host id equals", []Filter{f("HOST", "ID_EQUALS", "ip-10-117-85-124")}, orders, true},
		{"host equals compares the id", []Filter{f("HOST", "EQUALS", "ip-10-117-85-124")}, orders, true},
		{"host equals miss", []Filter{f("HOST", "EQUALS", "ip-10-117-85-124.ec2")}, orders, false},
		{"host starts with (name)", []Filter{f("HOST", "STARTS_WITH", "ip-10-")}, orders, true},
		{"host ends with (name)", []Filter{f("HOST", "ENDS_WITH", ".ec2")}, orders, true},
		{"host contains miss", []Filter{f("HOST", "CONTAINS", "EC2")}, orders, false},
		{"host regex", []Filter{f("HOST", "REGEX", `^ip-\d+`)}, orders, true},
		{"OR within a type", []Filter{f("APPLICATION", "ID_EQUALS", "1"), f("APPLICATION", "ID_EQUALS", "18156")}, orders, true},
		{"AND across types: both match", []Filter{f("APPLICATION", "ID_EQUALS", "18156"), f("HOST", "STARTS_WITH", "ip-")}, orders, true},
		{"AND across types: host misses", []Filter{f("APPLICATION", "ID_EQUALS", "18156"), f("HOST", "STARTS_WITH", "sangrah")}, orders, false},
		{"no app: app filters ignored", []Filter{f("APPLICATION", "ID_EQUALS", "18156")}, machine, true},
		{"no app: judged by host", []Filter{f("APPLICATION", "ID_EQUALS", "18156"), f("HOST", "EQUALS", "other")}, machine, false},
		{"no app: host matches", []Filter{f("APPLICATION", "ID_EQUALS", "18156"), f("HOST", "CONTAINS", "analytics")}, machine, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := CompileFilters("filters", tc.filters)
			if err != nil {
				t.Fatal(err)
			}
			got, matched := m.Match(tc.s)
			if got != tc.want {
				t.Errorf("Match = %v, want %v", got, tc.want)
			}
			if got && len(tc.filters) > 0 && tc.s.HasApp && len(matched) == 0 {
				t.Error("a match names no filter")
			}
		})
	}
}

func TestCompileFiltersRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     Filter
		field string
	}{
		{"bad regex", Filter{Type: "HOST", Operator: "REGEX", Value: "("}, "filters[0].value"},
		{"non-integer app id", Filter{Type: "APPLICATION", Operator: "ID_EQUALS", Value: "abc"}, "filters[0].value"},
		{"bad operator", Filter{Type: "HOST", Operator: "LIKE", Value: "x"}, "filters[0].operator"},
		{"bad type", Filter{Type: "NODE", Operator: "EQUALS", Value: "x"}, "filters[0].type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileFilters("filters", []Filter{tc.f})
			fe, ok := fault.As(err)
			if !errors.Is(err, fault.ErrInvalid) || !ok || fe.Fields[0].Field != tc.field {
				t.Errorf("got %v, want ErrInvalid on %s", err, tc.field)
			}
		})
	}
}
