package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/usage"
)

// The appended leases JSON must be what encoding/json makes of the DTOs
// (what gin's c.JSON sent before), byte for byte: clients compare and
// parse it, and names are chosen by users.
func TestLeasesJSONIsEncodingJSON(t *testing.T) {
	id := func(v int64) *int64 { return &v }
	str := func(v string) *string { return &v }
	names := []string{"", "host-1", `quo"te\back`, "tab\tnl\ncr\rbs\bff\f", "\x00\x01\x1f\x7f", "<script>&amp;</script>",
		"line\u2028sep\u2029", "café ☕ 𝄞", "bad\xffutf8", "\xed\xa0\x80"}
	hours := []float64{0, 1.0 / 3600, 24, 1e-7, 123456789.25, 1e21, 2.5e22, -0.5}
	var ls []usage.LeaseUsage
	for i := range 3000 { // more than one chunk
		l := usage.LeaseUsage{AgentType: names[i%len(names)], AgentVersion: names[(i+3)%len(names)],
			HostID: fmt.Sprintf("h-%d", i), HostName: names[(i+5)%len(names)], UsageHours: hours[i%len(hours)]}
		switch i % 4 {
		case 0:
			l.Packages = []string{"PREMIUM", names[i%len(names)]}
			l.AppID, l.AppName = id(int64(i)-1500), str(names[(i+7)%len(names)])
		case 1:
			l.Packages = []string{}
			l.AppID = id(1 << 62)
		case 2:
			l.AppName = str(names[i%len(names)])
		}
		ls = append(ls, l)
	}
	for _, rows := range [][]usage.LeaseUsage{nil, {}, ls[:1], ls} {
		// The DTOs as the handler built them for c.JSON.
		out := make([]LeaseUsageDTO, len(rows))
		for i, l := range rows {
			d := LeaseUsageDTO{AgentType: l.AgentType, AgentVersion: l.AgentVersion, Packages: l.Packages, UsageHours: l.UsageHours,
				Host: AnalyticsHostDTO{ID: l.HostID, Name: l.HostName}}
			if l.AppID != nil || l.AppName != nil {
				d.Application = &ApplicationDTO{ID: l.AppID, Name: l.AppName}
			}
			out[i] = d
		}
		want, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		writeLeasesJSON(c, rows)
		if got := rec.Body.Bytes(); !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			t.Fatalf("%d rows: differs at byte %d:\n got %.120q\nwant %.120q", len(rows), i, got[max(0, i-40):], want[max(0, i-40):])
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
	}
}

func BenchmarkLeasesJSON(b *testing.B) {
	app := "app-1"
	ls := make([]usage.LeaseUsage, 30000)
	for i := range ls {
		id := int64(i % 500)
		ls[i] = usage.LeaseUsage{AgentType: "APP_AGENT", AgentVersion: "24.1", Packages: []string{"PREMIUM"}, UsageHours: 24,
			HostID: fmt.Sprintf("host-%d", i), HostName: fmt.Sprintf("host-%d", i), AppID: &id, AppName: &app}
	}
	for b.Loop() {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		writeLeasesJSON(c, ls)
	}
}

// Refusal times encode byte for byte as encoding/json encodes []time.Time:
// nanoseconds trimmed, zones kept, nil and empty apart.
func TestRefusalTimesAreEncodingJSON(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, ts := range [][]time.Time{
		nil, {},
		{time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 8, 0, 0, 120000000, time.UTC),
			time.Date(1999, 1, 2, 3, 4, 5, 6, paris), {}},
	} {
		got, err := json.Marshal(RejectionHostDTO{Times: jsonTimes(ts)})
		if err != nil {
			t.Fatal(err)
		}
		// The reference: the same struct with a plain []time.Time.
		ref, err := json.Marshal(struct {
			Host        string      `json:"host"`
			Application *string     `json:"application"`
			Count       int         `json:"count"`
			Times       []time.Time `json:"times"`
		}{Times: ts})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(ref) {
			t.Errorf("times %v: %s, want %s", ts, got, ref)
		}
	}
	if _, err := json.Marshal(jsonTimes{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("a year past 9999 encoded; encoding/json refuses it")
	}
}
