package httpapi_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/auth"
	"github.com/lcorp/licensing-controller/internal/licensing"
	"github.com/lcorp/licensing-controller/internal/report"
	"github.com/lcorp/licensing-controller/internal/store"
	"github.com/lcorp/licensing-controller/internal/store/storetest"
)

// TestLicenceReport: the report counts registration requests per month
// (surviving event retention), downloads as JSON or a tar holding
// report.json, verifies, and fails verification naming the check when
// edited.
func TestLicenceReport(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		nov := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
		f.clock.Set(nov)
		for i := range 3 {
			wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("n%d", i), AgentType: "MACHINE_AGENT", Host: onHost(fmt.Sprintf("h%d", i), 1)}, ""), http.StatusCreated)
		}
		f.clock.Set(nov.AddDate(0, 1, 0))
		for i := range 5 {
			wantGranted(t, register(t, f, agent{AgentID: fmt.Sprintf("d%d", i), AgentType: "MACHINE_AGENT", Host: onHost(fmt.Sprintf("h%d", i), 1)}, ""), http.StatusCreated)
		}
		// The events go; the counters stay.
		f.clock.Set(nov.AddDate(0, 3, 0))
		if _, err := f.eng.PruneEvents(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}

		r := f.do(t, admin("GET", lv1+"/report", nil))
		if r.status != http.StatusOK {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		var rep struct {
			Counters struct {
				Buckets []struct {
					Bucket       string
					RequestCount int64 `json:"request_count"`
				}
				TotalRequests int64 `json:"total_requests"`
			}
			License struct {
				LicenseKey string `json:"license_key"`
			}
			SystemInfo  struct{ Hostname string } `json:"system_info"`
			AgentsCount int64                     `json:"agents_count"`
			HostsCount  int64                     `json:"hosts_count"`
		}
		if err := json.Unmarshal(r.body, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Counters.Buckets) != 2 || rep.Counters.Buckets[0].Bucket != "2026-11" || rep.Counters.Buckets[0].RequestCount != 3 ||
			rep.Counters.Buckets[1].Bucket != "2026-12" || rep.Counters.Buckets[1].RequestCount != 5 || rep.Counters.TotalRequests != 8 {
			t.Errorf("counters: %+v", rep.Counters)
		}
		if !strings.Contains(rep.License.LicenseKey, "****") || len(rep.SystemInfo.Hostname) != 64 || rep.HostsCount != 5 {
			t.Errorf("masking and counts: %+v", rep)
		}
		if err := report.Verify(r.body, nil); err != nil {
			t.Errorf("the JSON does not verify: %v", err)
		}

		// The tar holds exactly report.json, which verifies.
		tr := f.do(t, admin("GET", lv1+"/report?format=tar", nil))
		if tr.status != http.StatusOK || tr.header.Get("Content-Type") != "application/x-tar" ||
			!strings.Contains(tr.header.Get("Content-Disposition"), "report-") {
			t.Fatalf("tar: %d %v", tr.status, tr.header)
		}
		rd := tar.NewReader(bytes.NewReader(tr.body))
		var names []string
		for {
			h, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
		}
		if len(names) != 1 || names[0] != "report.json" {
			t.Errorf("tar lists %v", names)
		}
		if err := report.Verify(tr.body, nil); err != nil {
			t.Errorf("the tar does not verify: %v", err)
		}

		// An edited count fails the checksum; a recomputed checksum then
		// fails the signature; another key fails the pin.
		edited := bytes.Replace(r.body, []byte(`"request_count": 5`), []byte(`"request_count": 4`), 1)
		if bytes.Equal(edited, r.body) {
			t.Fatal("nothing to edit")
		}
		if err := report.Verify(edited, nil); !errors.Is(err, report.ErrChecksum) {
			t.Errorf("edited count: %v, want the checksum to fail", err)
		}
		var m map[string]any
		if err := json.Unmarshal(edited, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "checksum")
		delete(m, "signature")
		b, _ := json.Marshal(m)
		canon, err := licensing.Canonical(b)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(canon)
		var full map[string]any
		_ = json.Unmarshal(edited, &full)
		full["checksum"] = hex.EncodeToString(sum[:])
		reChecked, _ := json.Marshal(full)
		if err := report.Verify(reChecked, nil); !errors.Is(err, report.ErrSignature) {
			t.Errorf("recomputed checksum: %v, want the signature to fail", err)
		}
		other, _, _ := ed25519.GenerateKey(nil)
		if err := report.Verify(r.body, other); !errors.Is(err, report.ErrPublicKey) {
			t.Errorf("another key: %v, want the public key check to fail", err)
		}

		// Permissions and tenancy.
		ctx := context.Background()
		if _, _, err := f.auth.CreateAPIClient(ctx, 1, "registrar", "", auth.RoleAgentRegistrar, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.auth.CreateUser(ctx, 1, "agents", auth.RoleAgentRegistrar, "agents-password"); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, f.do(t, req{method: "GET", path: lv1 + "/report", user: "agents@customer1", pass: "agents-password"}), 403, "PERMISSION_DENIED")
		acme, err := f.auth.CreateAccount(ctx, "acme", 0)
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, f.do(t, admin("GET", fmt.Sprintf("/controller/licensing/v1/account/%d/report", acme.ID), nil)), 404, "ACCOUNT_NOT_FOUND")
	})
}
