package licensing

import (
	"errors"
	"math"
	"testing"

	"github.com/lcorp/licensing-controller/internal/fault"
)

func TestSaturatingSums(t *testing.T) {
	for _, tc := range []struct {
		a, b, add, sub int64
		ok             bool
	}{
		{1, 2, 3, -1, true},
		{math.MaxInt64, 1, math.MaxInt64, math.MaxInt64 - 1, false},
		{math.MinInt64, -1, math.MinInt64, math.MinInt64 + 1, false},
		{10, math.MinInt64, math.MinInt64 + 10, math.MaxInt64, true},
	} {
		got, ok := AddUnits(tc.a, tc.b)
		if ok != tc.ok || (ok && got != tc.add) {
			t.Errorf("AddUnits(%d, %d) = %d, %v; want %d, %v", tc.a, tc.b, got, ok, tc.add, tc.ok)
		}
		if got := SatAdd(tc.a, tc.b); got != tc.add {
			t.Errorf("SatAdd(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.add)
		}
		if got := SatSub(tc.a, tc.b); got != tc.sub {
			t.Errorf("SatSub(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.sub)
		}
	}
}

// TestOverAllocationCannotWrap: limits whose sum wraps negative in int64
// (which validation refuses, but the domain must not rely on it) are over
// the licence, and the Default allocation is left nothing.
func TestOverAllocationCannotWrap(t *testing.T) {
	licensed := map[string]int64{"PREMIUM": 100}
	explicit := []Allocation{
		{Limits: []Limit{{Package: "PREMIUM", Units: 10}}},
		{Limits: []Limit{{Package: "PREMIUM", Units: math.MaxInt64}}},
	}
	err := CheckOverAllocation(explicit, licensed)
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Code != "OVER_ALLOCATION" {
		t.Fatalf("CheckOverAllocation = %v, want OVER_ALLOCATION", err)
	}
	def := Allocation{ID: "d"}
	DeriveDefaultLimits(&def, explicit, licensed)
	if got := def.LimitOf("PREMIUM"); got != 0 {
		t.Errorf("Default PREMIUM = %d, want 0", got)
	}
	r := Rule{Entitlements: []Entitlement{{"JAVA", math.MaxInt64}, {"PHP", math.MaxInt64}}}
	if got := r.TotalLicenses(); got != math.MaxInt64 {
		t.Errorf("TotalLicenses = %d, want the saturated maximum", got)
	}
}
