package licensing

import "math"

// Bounds of every quantity the API accepts (API.md §0). They keep sums of
// thousands of them far from int64 overflow; the domain still sums with
// the checked helpers below, so no input overflows whatever the validation
// says.
const (
	// MaxUnits bounds allocation limits, rule entitlements, a licence's
	// licenseUnits and fallback units.
	MaxUnits int64 = 1_000_000_000
	// MinVCPU and MaxVCPU bound a host's reported vCPU.
	MinVCPU int64 = 1
	MaxVCPU int64 = 65_536
)

// AddUnits returns a+b and false when the sum overflows int64.
func AddUnits(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// SatAdd returns a+b clamped to the int64 range: a total that saturates
// is larger than any licensed amount, so checks against it refuse.
func SatAdd(a, b int64) int64 {
	if s, ok := AddUnits(a, b); ok {
		return s
	}
	if b > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}

// SatSub returns a-b clamped to the int64 range.
func SatSub(a, b int64) int64 {
	if b == math.MinInt64 {
		return SatAdd(SatAdd(a, math.MaxInt64), 1)
	}
	return SatAdd(a, -b)
}
