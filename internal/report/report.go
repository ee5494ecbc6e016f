// Package report is the licence report of API.md §8 (the Kong model): a
// tamper-evident summary of an account's usage and deployment that an
// operator hands to the vendor, and its offline verification.
package report

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/lcorp/licensing-controller/internal/fault"
	"github.com/lcorp/licensing-controller/internal/licensing"
)

// Store is what a report reads.
type Store interface {
	// RequestCounters returns the account's registration requests per
	// month, oldest first.
	RequestCounters(ctx context.Context, accountID int64) ([]Bucket, error)
	// Counts returns the account's stored allocations, licence rules,
	// hosts, live agents, applications and users.
	Counts(ctx context.Context, accountID int64) (Counts, error)
	// PeakUsage returns the highest units (licences) used per package
	// (module) that the usage samples saw.
	PeakUsage(ctx context.Context, accountID int64) (map[string]int64, error)
	// Instances counts the instances seen since.
	Instances(ctx context.Context, since time.Time) (int, error)
	// Secret returns the named server secret, storing gen() first.
	Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)
}

// Bucket is the registration requests of one month.
type Bucket struct {
	Bucket       string `json:"bucket"`
	RequestCount int64  `json:"request_count"`
}

// Counts are the sizes of an account's estate.
type Counts struct {
	Allocations, Rules, Hosts, Agents, Applications, Users int64
}

// Report is the licence report. Field order is the wire order; the
// checksum covers the canonical form (sorted keys) anyway.
type Report struct {
	Timestamp         time.Time        `json:"timestamp"`
	Checksum          string           `json:"checksum"`
	Signature         string           `json:"signature"`
	PublicKey         string           `json:"publicKey"`
	AccountID         int64            `json:"accountId"`
	License           LicenseInfo      `json:"license"`
	Counters          Counters         `json:"counters"`
	AllocationsCount  int64            `json:"allocations_count"`
	LicenseRulesCount int64            `json:"license_rules_count"`
	HostsCount        int64            `json:"hosts_count"`
	AgentsCount       int64            `json:"agents_count"`
	ApplicationsCount int64            `json:"applications_count"`
	UsersCount        int64            `json:"users_count"`
	PeakUsage         map[string]int64 `json:"peak_usage"`
	ControllerVersion string           `json:"controller_version"`
	DBVersion         string           `json:"db_version"`
	SystemInfo        SystemInfo       `json:"system_info"`
	DeploymentInfo    DeploymentInfo   `json:"deployment_info"`
}

// LicenseInfo names the effective licence; the key is masked.
type LicenseInfo struct {
	LicenseID             string     `json:"licenseId"`
	LicenseKey            string     `json:"license_key"`
	LicenseExpirationDate *time.Time `json:"license_expiration_date"`
}

// Counters are the registration requests per month and their total.
type Counters struct {
	Buckets       []Bucket `json:"buckets"`
	TotalRequests int64    `json:"total_requests"`
}

// SystemInfo describes the machine; the host name only as its SHA-256.
type SystemInfo struct {
	Cores    int    `json:"cores"`
	Uname    string `json:"uname"`
	Hostname string `json:"hostname"`
}

// DeploymentInfo says how the service is deployed.
type DeploymentInfo struct {
	Type      string `json:"type"`
	Instances int    `json:"instances"`
}

// Options describe the installation.
type Options struct {
	Version   string // controller_version
	DBVersion string // schema version and engine
	// Deployment is "embedded" or "postgres".
	Deployment string
	Now        func() time.Time
}

// Service builds signed reports.
type Service struct {
	store Store
	lic   *licensing.Service
	opt   Options
}

// New returns a Service.
func New(store Store, lic *licensing.Service, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Service{store: store, lic: lic, opt: opt}
}

// signingKeyName is the installation key's name among the server secrets:
// created on first use, kept in the database, never shown.
const signingKeyName = "report-signing-ed25519-seed"

func (s *Service) signingKey(ctx context.Context) (ed25519.PrivateKey, error) {
	seed, err := s.store.Secret(ctx, signingKeyName, func() ([]byte, error) {
		b := make([]byte, ed25519.SeedSize)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("report signing key: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("report signing key: the stored seed is not an Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// mask keeps the first and last four characters of a key.
func mask(key string) string {
	if len(key) <= 8 {
		return key
	}
	return key[:4] + string(bytes.Repeat([]byte{'*'}, len(key)-8)) + key[len(key)-4:]
}

// Build assembles, checksums and signs the account's report.
func (s *Service) Build(ctx context.Context, accountID int64) (Report, error) {
	now := s.opt.Now().UTC().Truncate(time.Second)
	r := Report{Timestamp: now, AccountID: accountID, ControllerVersion: s.opt.Version, DBVersion: s.opt.DBVersion,
		PeakUsage: map[string]int64{}}
	if info, err := s.lic.AccountInfo(ctx, accountID); err == nil {
		exp := info.License.Payload.ExpirationDate.UTC()
		r.License.LicenseID, r.License.LicenseExpirationDate = info.License.Payload.LicenseID, &exp
	} else if !errors.Is(err, fault.ErrNotFound) {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	acc, err := s.lic.Account(ctx, accountID)
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	r.License.LicenseKey = mask(acc.AccessKey)
	buckets, err := s.store.RequestCounters(ctx, accountID)
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	r.Counters.Buckets = append([]Bucket{}, buckets...)
	for _, b := range buckets {
		r.Counters.TotalRequests = licensing.SatAdd(r.Counters.TotalRequests, b.RequestCount)
	}
	c, err := s.store.Counts(ctx, accountID)
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	r.AllocationsCount, r.LicenseRulesCount, r.HostsCount = c.Allocations, c.Rules, c.Hosts
	r.AgentsCount, r.ApplicationsCount, r.UsersCount = c.Agents, c.Applications, c.Users
	if r.PeakUsage, err = s.store.PeakUsage(ctx, accountID); err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host))
	r.SystemInfo = SystemInfo{Cores: runtime.NumCPU(), Uname: uname(), Hostname: hex.EncodeToString(sum[:])}
	n, err := s.store.Instances(ctx, now.Add(-time.Hour))
	if err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	r.DeploymentInfo = DeploymentInfo{Type: s.opt.Deployment, Instances: n}
	key, err := s.signingKey(ctx)
	if err != nil {
		return Report{}, err
	}
	r.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	canon, err := signedBytes(r)
	if err != nil {
		return Report{}, err
	}
	digest := sha256.Sum256(canon)
	r.Checksum = hex.EncodeToString(digest[:])
	r.Signature = hex.EncodeToString(ed25519.Sign(key, canon))
	return r, nil
}

// signedBytes is the canonical JSON of the report without checksum and
// signature: what the checksum hashes and the signature signs.
func signedBytes(r Report) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return canonicalWithout(b)
}

func canonicalWithout(raw []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a report: %w", err)
	}
	delete(m, "checksum")
	delete(m, "signature")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return licensing.Canonical(b)
}

// Tar returns a tar archive holding report.json.
func Tar(reportJSON []byte, at time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	if err := w.WriteHeader(&tar.Header{Name: "report.json", Mode: 0o644, Size: int64(len(reportJSON)), ModTime: at}); err != nil {
		return nil, fmt.Errorf("report tar: %w", err)
	}
	if _, err := w.Write(reportJSON); err != nil {
		return nil, fmt.Errorf("report tar: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("report tar: %w", err)
	}
	return buf.Bytes(), nil
}

// TarName is the file name of a report tar made at t.
func TarName(t time.Time) string { return "report-" + t.UTC().Format("2006_01_02_15_04") + ".tar" }

// Errors of Verify, naming the check that failed.
var (
	ErrChecksum  = errors.New("checksum does not match the report: it was changed after it was made")
	ErrSignature = errors.New("signature does not verify with the report's public key")
	ErrPublicKey = errors.New("the report is signed by another key than the one given")
)

// Verify checks a report (its JSON, or a tar holding report.json): the
// checksum, then the signature by the report's public key, which must be
// pub when pub is given. Errors wrap ErrChecksum, ErrSignature or
// ErrPublicKey, or say why the input is not a report.
func Verify(raw []byte, pub ed25519.PublicKey) error {
	if isTar(raw) {
		var err error
		if raw, err = fromTar(raw); err != nil {
			return err
		}
	}
	var head struct {
		Checksum, Signature, PublicKey string
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("not a report: %w", err)
	}
	canon, err := canonicalWithout(raw)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(canon)
	if hex.EncodeToString(digest[:]) != head.Checksum {
		return ErrChecksum
	}
	key, err := base64.StdEncoding.DecodeString(head.PublicKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: publicKey is not a base64 Ed25519 key", ErrSignature)
	}
	if pub != nil && !bytes.Equal(pub, key) {
		return ErrPublicKey
	}
	sig, err := hex.DecodeString(head.Signature)
	if err != nil || !ed25519.Verify(key, canon, sig) {
		return ErrSignature
	}
	return nil
}

func isTar(raw []byte) bool {
	return len(raw) > 262 && string(raw[257:262]) == "ustar"
}

func fromTar(raw []byte) ([]byte, error) {
	r := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the tar holds no report.json")
		}
		if err != nil {
			return nil, fmt.Errorf("read the tar: %w", err)
		}
		if h.Name == "report.json" {
			return io.ReadAll(io.LimitReader(r, 64<<20))
		}
	}
}
