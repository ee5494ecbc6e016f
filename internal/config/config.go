// Package config reads the service configuration from the environment
// (API.md §11). It returns values; there are no package-level globals.
package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is the whole runtime configuration of the service.
type Config struct {
	HTTPAddr               string
	DatabaseURL            string
	DataDir                string
	BootstrapAdminPassword string
	DefaultAccount         string
	LicensePublicKeys      []string
	LeaseTTL               time.Duration
	FallbackDelay          time.Duration
	UsageSampleInterval    time.Duration
	UsageRetention         time.Duration
	EventRetention         time.Duration
	LogLevel               string
	LogFormat              string
	MaxBodyBytes           int64
	ShutdownTimeout        time.Duration
	// RequestTimeout is every request's deadline (503 TIMEOUT after it);
	// PostgreSQL statements time out a little later on their own.
	RequestTimeout time.Duration
	// TrustedProxies are the peers (CIDRs) whose X-Forwarded-For,
	// X-Forwarded-Proto and X-Forwarded-Host are believed; none by default.
	TrustedProxies []string
}

// Default returns the configuration with every default of API.md §11.
func Default() Config {
	return Config{
		HTTPAddr:            ":8080",
		DataDir:             "./data",
		DefaultAccount:      "customer1",
		LeaseTTL:            5 * time.Minute,
		FallbackDelay:       10 * time.Minute,
		UsageSampleInterval: 5 * time.Minute,
		UsageRetention:      400 * 24 * time.Hour,
		EventRetention:      90 * 24 * time.Hour,
		LogLevel:            "info",
		LogFormat:           "json",
		MaxBodyBytes:        1 << 20,
		ShutdownTimeout:     30 * time.Second,
		RequestTimeout:      10 * time.Second,
	}
}

// FromEnv returns Default() overridden by the LC_* variables that lookup finds.
// Every malformed value is reported with the variable's name.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok && v != "" {
			*dst = v
		}
	}
	var errs []string
	dur := func(name string, dst *time.Duration, min time.Duration) {
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		d, err := ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
			return
		}
		if d < min {
			errs = append(errs, fmt.Sprintf("%s: must be at least %s", name, min))
			return
		}
		*dst = d
	}
	str("LC_HTTP_ADDR", &c.HTTPAddr)
	str("LC_DATABASE_URL", &c.DatabaseURL)
	str("LC_DATA_DIR", &c.DataDir)
	str("LC_BOOTSTRAP_ADMIN_PASSWORD", &c.BootstrapAdminPassword)
	str("LC_DEFAULT_ACCOUNT", &c.DefaultAccount)
	str("LC_LOG_LEVEL", &c.LogLevel)
	str("LC_LOG_FORMAT", &c.LogFormat)
	if v, ok := lookup("LC_LICENSE_PUBLIC_KEYS"); ok && v != "" {
		c.LicensePublicKeys = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
	}
	dur("LC_LEASE_TTL", &c.LeaseTTL, time.Second)
	dur("LC_FALLBACK_DELAY", &c.FallbackDelay, 0)
	dur("LC_USAGE_SAMPLE_INTERVAL", &c.UsageSampleInterval, time.Second)
	dur("LC_USAGE_RETENTION", &c.UsageRetention, time.Hour)
	dur("LC_EVENT_RETENTION", &c.EventRetention, time.Hour)
	dur("LC_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, 0)
	dur("LC_REQUEST_TIMEOUT", &c.RequestTimeout, 100*time.Millisecond)
	if v, ok := lookup("LC_TRUSTED_PROXIES"); ok && strings.TrimSpace(v) != "" {
		for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			if _, err := netip.ParsePrefix(p); err != nil {
				if _, err := netip.ParseAddr(p); err != nil {
					errs = append(errs, fmt.Sprintf("LC_TRUSTED_PROXIES: %q is neither a CIDR nor an IP address", p))
					continue
				}
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	if v, ok := lookup("LC_MAX_BODY_BYTES"); ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Sprintf("LC_MAX_BODY_BYTES: %q is not a positive integer", v))
		} else {
			c.MaxBodyBytes = n
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, c.Validate()
}

// Validate checks values that flags may also have set.
func (c Config) Validate() error {
	switch c.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("configuration: LC_LOG_FORMAT: %q is neither json nor text", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("configuration: LC_LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.DatabaseURL != "" && !IsPostgresURL(c.DatabaseURL) {
		return fmt.Errorf("configuration: LC_DATABASE_URL: only postgres:// or postgresql:// URLs are supported (leave it empty for the embedded store)")
	}
	return nil
}

// IsPostgresURL reports whether u selects the PostgreSQL store.
func IsPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// ParseDuration is time.ParseDuration plus a whole-day suffix "d" ("400d"),
// which retention settings use.
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}
