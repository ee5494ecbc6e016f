package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/lcorp/licensing-controller/internal/usage"
)

// A grouped-usage answer, its items encoded as they were built, is byte
// for byte what encoding/json writes for the whole DTO: keys sorted as
// strings (application 1000 before 20), HTML and control characters
// escaped.
func TestGroupedAnswerIsTheJSONOfItsDTO(t *testing.T) {
	rows, ids := estateRows()
	odd := `<b>&"odd"` + "\u2028 héte\x01"
	for i := range rows {
		if i%7 == 0 {
			rows[i].HostID += odd
			rows[i].HostName = "name " + odd
			name := "app " + odd
			rows[i].AppName = &name
		}
		if i%11 == 0 {
			rows[i].HostFallback, rows[i].HostPackage, rows[i].HostUnits = true, "PREMIUM", 4
		}
	}
	svc := usage.NewService(rowsOf(rows), nil)
	ctx := context.Background()
	for _, n := range []int{1, 5, len(ids)} {
		apps, err := svc.ByApplicationIDs(ctx, 1, ids[:n])
		if err != nil {
			t.Fatal(err)
		}
		hosts, err := svc.ByHosts(ctx, 1, []string{"any"})
		if err != nil {
			t.Fatal(err)
		}
		for _, agents := range []bool{false, true} {
			checkAnswer(t, func(w http.ResponseWriter) error {
				items := appItems(agents)
				tot, err := svc.EachApplicationByID(ctx, 1, ids[:n], items)
				if err != nil {
					return err
				}
				return groupAnswer{tot, items.encodedItems}.Render(w)
			}, appGroupDTO(apps, agents))
			checkAnswer(t, func(w http.ResponseWriter) error {
				items := hostItems(agents)
				tot, err := svc.EachHost(ctx, 1, []string{"any"}, items)
				if err != nil {
					return err
				}
				return groupAnswer{tot, items.encodedItems}.Render(w)
			}, hostGroupDTO(hosts, agents))
		}
	}
}

func checkAnswer(t *testing.T, render func(w http.ResponseWriter) error, dto any) {
	t.Helper()
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(dto); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := render(w); err != nil {
		t.Fatal(err)
	}
	if got := w.Body.Bytes(); !bytes.Equal(got, want.Bytes()) {
		i := 0
		for i < min(len(got), len(want.Bytes())) && got[i] == want.Bytes()[i] {
			i++
		}
		t.Errorf("answer of %d bytes differs from encoding/json's %d at byte %d: %.80q, want %.80q", len(got), want.Len(), i, got[i:], want.Bytes()[i:])
	}
	if ct, cl := w.Header().Get("Content-Type"), w.Header().Get("Content-Length"); ct != "application/json; charset=utf-8" || cl != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Type %q, Content-Length %s for %d bytes", ct, cl, w.Body.Len())
	}
}
