package httpapi_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestPagingAtTheMaximumSize: with one item more than the largest page,
// size=1000 gives 1000 items and a next link, and that link the last one.
// (Registrations stopped early: the engine capped the size+1 the handler
// asked for at 1000, so next was null with 11 781 live leases.)
func TestPagingAtTheMaximumSize(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		const n = 1001
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					// Agents without vCPU on one host: all fit the trial licence.
					r := register(t, f, agent{AgentID: fmt.Sprintf("a%d", i), AgentType: "APP_AGENT", Host: onHost("h", nil)}, "")
					if r.status != http.StatusCreated {
						errs <- fmt.Sprintf("register %d: %d %s", i, r.status, r.body)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatal(e)
		}
		pageThrough(t, f, registrations, n)

		for i := range n - 1 { // the trial licence is one
			doc, err := licensing.Sign([]byte(fmt.Sprintf(`{"licenseId":"L-%d","accountName":"customer1","expirationDate":"2099-01-01T00:00:00Z","packages":[]}`, i)), signingKey)
			if err != nil {
				t.Fatal(err)
			}
			if r := f.do(t, admin("POST", lv1+"/licenses", map[string]string{"payload": string(doc)})); r.status != http.StatusCreated {
				t.Fatalf("licence %d: %d %s", i, r.status, r.body)
			}
		}
		pageThrough(t, f, lv1+"/licenses", n)
	})
}

// pageThrough reads list at size 1000 and checks that it holds want items.
func pageThrough(t *testing.T, f *fixture, list string, want int) {
	t.Helper()
	next, got, pages := list+"?size=1000", 0, 0
	for next != "" {
		r := f.do(t, admin("GET", next, nil))
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", next, r.status, r.body)
		}
		m := r.json(t)
		got += len(m["data"].([]any))
		pages++
		next = ""
		if s, ok := m["next"].(string); ok {
			next = s
		}
		if pages > 3 {
			t.Fatalf("%s: more pages than items allow", list)
		}
	}
	if got != want || pages != 2 {
		t.Errorf("%s: %d items in %d pages, want %d in 2", list, got, pages, want)
	}
}
