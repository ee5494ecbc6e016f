package store

import (
	"math"
	"testing"
)

// A key id is found at its place whether the account's ids are dense (a
// slice) or spread over the table's serial (a map), and no other id is.
func TestKeyIndexFindsEveryIDAndNoOther(t *testing.T) {
	for name, ids := range map[string][]int64{
		"dense":  {7, 9, 8, 12, 10},
		"sparse": {5, 1 << 40, 3, 1<<40 + 2},
		"one":    {42},
		"limits": {math.MinInt64, math.MaxInt64},
		"edge":   {-2, math.MaxInt64 - 3},
		"top":    {math.MaxInt64, math.MaxInt64 - 1},
	} {
		x := newKeyIndex(ids)
		if (x.sparse != nil) != (name == "sparse" || name == "limits" || name == "edge") {
			t.Errorf("%s: sparse is %v", name, x.sparse != nil)
		}
		for i, id := range ids {
			if got, ok := x.find(id); !ok || got != int32(i) {
				t.Errorf("%s: find(%d) = %d, %v; want %d", name, id, got, ok, i)
			}
		}
		for _, id := range []int64{0, 1, 2, 4, 6, 11, 13, 41, 43, 1<<40 + 1, -1, math.MinInt64 + 1, math.MaxInt64 - 2} {
			if _, ok := x.find(id); ok {
				t.Errorf("%s: find(%d) found a key that is not there", name, id)
			}
		}
	}
	if _, ok := newKeyIndex(nil).find(0); ok {
		t.Error("an empty index found a key")
	}
}
