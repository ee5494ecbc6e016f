// Package licensing is the licence domain: signed licence documents, account
// information, allocations and their filters. It imports no HTTP or SQL.
package licensing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lcorp/licensing-controller/internal/fault"
)

// Package is one licensed package of a licence (API.md §1.1).
type Package struct {
	PackageName    string         `json:"packageName"`
	Type           string         `json:"type"`
	Kind           string         `json:"kind"`
	Family         string         `json:"family"`
	CreatedDate    *time.Time     `json:"createdDate,omitempty"`
	StartDate      *time.Time     `json:"startDate,omitempty"`
	ExpirationDate *time.Time     `json:"expirationDate,omitempty"`
	LicenseUnits   int64          `json:"licenseUnits"`
	Properties     map[string]any `json:"properties"`
}

// Usable reports whether the package's own dates allow using its units now.
func (p Package) Usable(now time.Time) bool {
	if p.ExpirationDate != nil && now.After(*p.ExpirationDate) {
		return false
	}
	return p.StartDate == nil || !now.Before(*p.StartDate)
}

// Payload is the signed content of a licence.
type Payload struct {
	LicenseID           string           `json:"licenseId"`
	CustomerID          string           `json:"customerId"`
	CustomerName        string           `json:"customerName"`
	AccountName         string           `json:"accountName"`
	Environment         string           `json:"environment"`
	HardwareFingerprint string           `json:"hardwareFingerprint"`
	Type                string           `json:"type"`
	ExpirationDate      time.Time        `json:"expirationDate"`
	Packages            []Package        `json:"packages"`
	Properties          map[string]any   `json:"properties"`
	FallbackUnits       map[string]int64 `json:"fallbackUnits"`
}

// Status values of /info.
const (
	StatusActive  = "ACTIVE"
	StatusLimited = "LIMITED"
	StatusExpired = "EXPIRED"
)

// Status computes the licence status at now (API.md §1.2).
func (p Payload) Status(now time.Time) string {
	if now.After(p.ExpirationDate) {
		return StatusExpired
	}
	for _, pk := range p.Packages {
		if pk.Type == "TRIAL" || pk.Type == "LITE" {
			return StatusLimited
		}
	}
	return StatusActive
}

// Units returns the usable units per package name at now: nothing when the
// licence has expired, nothing of a package whose own dates exclude now.
func (p Payload) Units(now time.Time) map[string]int64 {
	out := map[string]int64{}
	if now.After(p.ExpirationDate) {
		return out
	}
	for _, pk := range p.Packages {
		if pk.Usable(now) {
			out[pk.PackageName] = SatAdd(out[pk.PackageName], pk.LicenseUnits)
		}
	}
	return out
}

// Document is the signed licence as uploaded: {"license":{...}}.
type Document struct {
	License struct {
		Version   string          `json:"version"`
		Signature string          `json:"signature"`
		Payload   json.RawMessage `json:"payload"`
	} `json:"license"`
}

// Canonical returns the canonical form of a JSON value: object keys sorted
// (byte order) at every level, no insignificant whitespace, numbers exactly
// as written, strings escaped by encoding/json without HTML escaping. The
// vendor signs the canonical form of the payload.
func Canonical(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps encode with sorted keys
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Sign returns the licence document of payload signed with key.
func Sign(payload []byte, key ed25519.PrivateKey) ([]byte, error) {
	canon, err := Canonical(payload)
	if err != nil {
		return nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	var p Payload
	if err := json.Unmarshal(canon, &p); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var doc Document
	doc.License.Version = "1"
	doc.License.Signature = hex.EncodeToString(ed25519.Sign(key, canon))
	doc.License.Payload = canon
	return json.Marshal(doc)
}

func invalidLicense(reason string, args ...any) error {
	return &fault.Error{Kind: fault.ErrInvalid, Code: "INVALID_LICENSE", Detail: fmt.Sprintf(reason, args...),
		Fields: []fault.FieldError{{Field: "payload", Message: fmt.Sprintf(reason, args...)}}}
}

// Verifier checks licence documents against the trusted public keys.
type Verifier struct {
	keys []ed25519.PublicKey
	// verified remembers the outcome per document (by SHA-256): the keys
	// do not change, so a document's signature is checked once, not on
	// every read of the licence.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]verdict
}

type verdict struct {
	p   Payload
	err error
}

// verifiedCap bounds the remembered documents (a store holds a few per
// account); beyond it the memory starts afresh.
const verifiedCap = 4096

// NewVerifier parses trusted keys: each is a file path or base64 text of a
// 32-byte Ed25519 public key (as `license keygen` writes it).
func NewVerifier(specs []string) (*Verifier, error) {
	v := &Verifier{}
	for _, s := range specs {
		text := s
		if b, err := os.ReadFile(s); err == nil {
			text = string(b)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("LC_LICENSE_PUBLIC_KEYS: %q is neither a readable key file nor a base64 Ed25519 public key", s)
		}
		v.keys = append(v.keys, ed25519.PublicKey(raw))
	}
	return v, nil
}

// Verify parses and checks a licence document for accountName at now.
// Errors: ErrInvalid (INVALID_LICENSE with the reason).
func (v *Verifier) Verify(raw []byte, accountName string, now time.Time) (Payload, error) {
	p, err := v.verifySignature(raw)
	if err != nil {
		return Payload{}, err
	}
	if p.AccountName != accountName {
		return Payload{}, invalidLicense("licence is addressed to account %q, not %q", p.AccountName, accountName)
	}
	if now.After(p.ExpirationDate) {
		return Payload{}, invalidLicense("licence expired on %s", p.ExpirationDate.UTC().Format(time.RFC3339))
	}
	return p, nil
}

// verifySignature checks a document's signature and payload, once per
// document: callers must not change the Payload's maps.
func (v *Verifier) verifySignature(raw []byte) (Payload, error) {
	sum := sha256.Sum256(raw)
	v.mu.Lock()
	got, ok := v.verified[sum]
	v.mu.Unlock()
	if ok {
		return got.p, got.err
	}
	p, err := v.checkSignature(raw)
	v.mu.Lock()
	if v.verified == nil || len(v.verified) >= verifiedCap {
		v.verified = map[[sha256.Size]byte]verdict{}
	}
	v.verified[sum] = verdict{p, err}
	v.mu.Unlock()
	return p, err
}

func (v *Verifier) checkSignature(raw []byte) (Payload, error) {
	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Payload{}, invalidLicense("not a licence document: %v", err)
	}
	l := doc.License
	if len(l.Payload) == 0 {
		return Payload{}, invalidLicense(`not a licence document: {"license":{"version","signature","payload"}} expected`)
	}
	if l.Version != "1" {
		return Payload{}, invalidLicense("unsupported licence version %q", l.Version)
	}
	if l.Signature == "" {
		return Payload{}, invalidLicense("licence is not signed")
	}
	sig, err := hex.DecodeString(l.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Payload{}, invalidLicense("signature is not a hex Ed25519 signature")
	}
	canon, err := Canonical(l.Payload)
	if err != nil {
		return Payload{}, invalidLicense("payload is not JSON: %v", err)
	}
	if len(v.keys) == 0 {
		return Payload{}, invalidLicense("no trusted licence-signing key is configured (LC_LICENSE_PUBLIC_KEYS)")
	}
	ok := false
	for _, k := range v.keys {
		if ed25519.Verify(k, canon, sig) {
			ok = true
			break
		}
	}
	if !ok {
		return Payload{}, invalidLicense("signature does not verify with any trusted key (tampered, or signed by an unknown key)")
	}
	var p Payload
	if err := json.Unmarshal(canon, &p); err != nil {
		return Payload{}, invalidLicense("payload: %v", err)
	}
	switch {
	case p.LicenseID == "":
		return Payload{}, invalidLicense("payload.licenseId is required")
	case p.AccountName == "":
		return Payload{}, invalidLicense("payload.accountName is required")
	case p.ExpirationDate.IsZero():
		return Payload{}, invalidLicense("payload.expirationDate is required")
	}
	totals := map[string]int64{}
	for i, pk := range p.Packages {
		if pk.PackageName == "" || pk.LicenseUnits < 0 || pk.LicenseUnits > MaxUnits {
			return Payload{}, invalidLicense("payload.packages[%d] needs a packageName and licenseUnits 0-%d", i, MaxUnits)
		}
		// A package may appear more than once (renewals with their own
		// dates), but its units together stay within the bound.
		if totals[pk.PackageName] += pk.LicenseUnits; totals[pk.PackageName] > MaxUnits {
			return Payload{}, invalidLicense("payload.packages: %s totals more than %d licenseUnits", pk.PackageName, MaxUnits)
		}
	}
	for name, n := range p.FallbackUnits {
		if n < 0 || n > MaxUnits {
			return Payload{}, invalidLicense("payload.fallbackUnits.%s must be 0-%d", name, MaxUnits)
		}
	}
	return p, nil
}

// AgentModules are the agent-based modules of a licence.
var AgentModules = []string{"JAVA", "DOT_NET", "NATIVE_WEB_SERVER", "NATIVE_SDK", "NETVIZ", "MACHINE_AGENT",
	"SIM_MACHINE_AGENT", "NODEJS", "PHP", "PYTHON", "GOLANG_SDK", "APM"}

// TrialPayload is the built-in trial licence of a new database (API.md §1.2).
func TrialPayload(accountName string, now time.Time) Payload {
	now = now.UTC().Truncate(time.Second)
	exp := now.Add(30 * 24 * time.Hour)
	p := Payload{
		LicenseID: uuid.NewString(), CustomerID: "trial", CustomerName: accountName, AccountName: accountName,
		Environment: "TRIAL", HardwareFingerprint: "ANY", Type: "TRIAL", ExpirationDate: exp,
		Properties: map[string]any{}, FallbackUnits: map[string]int64{},
	}
	add := func(name, kind, family string) {
		p.Packages = append(p.Packages, Package{PackageName: name, Type: "TRIAL", Kind: kind, Family: family,
			CreatedDate: &now, StartDate: &now, ExpirationDate: &exp, LicenseUnits: 100, Properties: map[string]any{}})
	}
	for _, n := range Packages {
		add(n, "INFRASTRUCTURE_BASED", "APM")
	}
	for _, m := range AgentModules {
		add(m, "AGENT_BASED", "APM")
	}
	return p
}
