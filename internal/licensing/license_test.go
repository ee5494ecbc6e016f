package licensing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
)

func TestCanonical(t *testing.T) {
	got, err := Canonical([]byte(`{ "b": 1.50, "a": {"z": "<&>", "y": [2, 1]} }`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":{"y":[2,1],"z":"<&>"},"b":1.50}`; string(got) != want {
		t.Errorf("Canonical = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	v, err := NewVerifier([]string{base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	payload := func(account, exp string) []byte {
		return []byte(`{"licenseId":"L1","accountName":"` + account + `","expirationDate":"` + exp +
			`","packages":[{"packageName":"PREMIUM","type":"PAID","licenseUnits":100}]}`)
	}
	sign := func(p []byte, k ed25519.PrivateKey) []byte {
		doc, err := Sign(p, k)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	good := sign(payload("customer1", "2027-12-31T23:59:59Z"), key)
	p, err := v.Verify(good, "customer1", now)
	if err != nil {
		t.Fatalf("good licence: %v", err)
	}
	if p.Units(now)["PREMIUM"] != 100 || p.Status(now) != StatusActive {
		t.Errorf("payload = %+v", p)
	}
	tampered := bytes.Replace(good, []byte(`"licenseUnits":100`), []byte(`"licenseUnits":900`), 1)
	var unsignedDoc Document
	_ = json.Unmarshal(good, &unsignedDoc)
	unsignedDoc.License.Signature = ""
	unsigned, _ := json.Marshal(unsignedDoc)
	for _, tc := range []struct {
		name, account string
		doc           []byte
		reason        string
	}{
		{"tampered", "customer1", tampered, "does not verify"},
		{"unknown key", "customer1", sign(payload("customer1", "2027-12-31T23:59:59Z"), other), "does not verify"},
		{"expired", "customer1", sign(payload("customer1", "2026-01-01T00:00:00Z"), key), "expired"},
		{"wrong account", "acme", good, "addressed to account"},
		{"unsigned", "customer1", unsigned, "not signed"},
		{"not JSON", "customer1", []byte("{"), "not a licence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(tc.doc, tc.account, now)
			fe, ok := fault.As(err)
			if !errors.Is(err, fault.ErrInvalid) || !ok || fe.Code != "INVALID_LICENSE" || !strings.Contains(fe.Detail, tc.reason) {
				t.Errorf("got %v, want INVALID_LICENSE mentioning %q", err, tc.reason)
			}
		})
	}
}
