package store

import (
	"reflect"
	"testing"
)

func TestPgxPlaceholders(t *testing.T) {
	q, args := pgxPlaceholders("SELECT x FROM t WHERE a = ? AND b IN ? AND c < ? AND d in  ?", []any{1, []string{"p", "q"}, 3, []int64{4}})
	want := "SELECT x FROM t WHERE a = $1 AND b = ANY($2) AND c < $3 AND d = ANY($4)"
	if q != want || !reflect.DeepEqual(args, []any{1, []string{"p", "q"}, 3, []int64{4}}) {
		t.Errorf("got %q %v, want %q", q, args, want)
	}
}
