package licensing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// FuzzFilterMatch: any filter either fails validation or compiles, and a
// compiled matcher answers any subject without panicking; an EQUALS filter
// on a host name admits exactly that name.
func FuzzFilterMatch(f *testing.F) {
	for _, s := range [][4]string{
		{"HOST", "EQUALS", "h1", "h1"}, {"APPLICATION", "REGEX", "^Sangrah-.*$", "Sangrah-Orders"},
		{"APPLICATION", "ID_EQUALS", "9223372036854775808", "x"}, {"HOST", "REGEX", "(a+)+$", strings.Repeat("a", 64) + "!"},
		{"HOST", "CONTAINS", "\x00", "a\x00b"}, {"HOST", "STARTS_WITH", "\xff", "\xff"}, {"APPLICATION", "REGEX", "[", "["},
	} {
		f.Add(s[0], s[1], s[2], s[3], int64(18156))
	}
	f.Fuzz(func(t *testing.T, typ, op, value, name string, appID int64) {
		m, err := CompileFilters("filters", []Filter{{Type: typ, Operator: op, Value: value}})
		if err != nil {
			return
		}
		s := Subject{HostID: name, HostName: name, HasApp: true, AppID: appID, AppName: name}
		ok, _ := m.Match(s)
		if typ == "HOST" && op == "EQUALS" && ok != (value == name) {
			t.Errorf("HOST EQUALS %q matched %q: %v", value, name, ok)
		}
	})
}

// FuzzVerifyLicense: no document panics the verifier, and whatever it
// accepts has quantities within the bounds of API.md §0.
func FuzzVerifyLicense(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	v, err := NewVerifier([]string{base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))})
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{
		`{"licenseId":"L1","accountName":"a","expirationDate":"2099-01-01T00:00:00Z","packages":[{"packageName":"PREMIUM","licenseUnits":100}]}`,
		`{"licenseId":"L1","accountName":"a","expirationDate":"2099-01-01T00:00:00Z","packages":[{"packageName":"PREMIUM","licenseUnits":9223372036854775807}]}`,
		`{"licenseId":"L1","accountName":"a","expirationDate":"2099-01-01T00:00:00Z","fallbackUnits":{"APP_AGENT":-1}}`,
		`{"licenseId":"\u0000","accountName":"a","expirationDate":"2099-01-01T00:00:00Z"}`,
	} {
		doc, err := Sign([]byte(p), key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc)
	}
	f.Add([]byte(`{"license":{"version":"1","signature":"00","payload":{}}}`))
	f.Add([]byte("{\"license\":\xff}"))
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := v.Verify(doc, "a", now)
		if err != nil {
			return
		}
		for _, pk := range p.Packages {
			if pk.LicenseUnits < 0 || pk.LicenseUnits > MaxUnits {
				t.Errorf("accepted licenseUnits %d", pk.LicenseUnits)
			}
		}
		for k, n := range p.FallbackUnits {
			if n < 0 || n > MaxUnits {
				t.Errorf("accepted fallbackUnits.%s %d", k, n)
			}
		}
		for _, u := range p.Units(now) {
			if u < 0 {
				t.Errorf("negative licensed units %d", u)
			}
		}
	})
}
