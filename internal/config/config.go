// Package config is the service configuration (API.md §11): every setting
// is declared once, as a field of Config, with its environment variable,
// default, flag name and help; github.com/caarlos0/env reads the
// environment and Bind makes the same fields command-line flags. It
// returns values; there are no package-level globals.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/spf13/pflag"
)

// Config is the whole runtime configuration of the service.
type Config struct {
	HTTPAddr               string        `env:"LC_HTTP_ADDR" envDefault:":8080" flag:"http-addr" help:"listen address (host:port)"`
	DatabaseURL            string        `env:"LC_DATABASE_URL" flag:"database-url" help:"postgres:// URL; empty: the embedded store in the data dir"`
	DatabaseReadURL        string        `env:"LC_DATABASE_READ_URL" flag:"database-read-url" help:"postgres:// URL of a streaming standby of LC_DATABASE_URL for the read-only endpoints; empty: none"`
	ReadMaxLag             time.Duration `env:"LC_READ_MAX_LAG" envDefault:"5s" flag:"read-max-lag" help:"how far the read replica may be behind the primary before reads go to the primary" min:"1ms"`
	DataDir                string        `env:"LC_DATA_DIR" envDefault:"./data" flag:"data-dir" help:"directory of the embedded store"`
	DatabaseWait           time.Duration `env:"LC_DATABASE_WAIT" envDefault:"30s" flag:"database-wait" help:"how long serve waits for PostgreSQL at start, logging each attempt"`
	BootstrapAdminPassword string        `env:"LC_BOOTSTRAP_ADMIN_PASSWORD" flag:"bootstrap-admin-password" help:"password of user admin of a new database (empty: generated and printed once)"`
	DefaultAccount         string        `env:"LC_DEFAULT_ACCOUNT" envDefault:"customer1" flag:"default-account" help:"account of basic-auth users given without @account"`
	LicensePublicKeys      []string      `env:"LC_LICENSE_PUBLIC_KEYS" flag:"license-public-keys" help:"trusted licence-signing public keys: file paths or base64, comma-separated"`
	LeaseTTL               time.Duration `env:"LC_LEASE_TTL" envDefault:"5m" flag:"lease-ttl" help:"lease lifetime after the last heartbeat" min:"1s"`
	FallbackDelay          time.Duration `env:"LC_FALLBACK_DELAY" envDefault:"10m" flag:"fallback-delay" help:"wait before charging fallback units to a host of unknown vCPU (allocations with fallbackModeDelay)"`
	UsageSampleInterval    time.Duration `env:"LC_USAGE_SAMPLE_INTERVAL" envDefault:"5m" flag:"usage-sample-interval" help:"sampling interval of the usage series" min:"1s"`
	UsageRetention         time.Duration `env:"LC_USAGE_RETENTION" envDefault:"400d" flag:"usage-retention" help:"how long usage samples and analytics rollups are kept" min:"1h"`
	EventRetention         time.Duration `env:"LC_EVENT_RETENTION" envDefault:"90d" flag:"event-retention" help:"how long usage events (grants, releases, refusals) are kept" min:"1h"`
	AnalyticsCacheMB       int64         `env:"LC_ANALYTICS_CACHE_MB" envDefault:"256" flag:"analytics-cache-mb" min:"0" help:"memory (MiB, per replica) for the event replays analytics keep of the days windows cut; 0: none"`
	AuditRetention         time.Duration `env:"LC_AUDIT_RETENTION" envDefault:"400d" flag:"audit-retention" help:"how long audit trail entries are kept" min:"1h"`
	WebhookDenyPrivate     bool          `env:"LC_WEBHOOK_DENY_PRIVATE" envDefault:"false" flag:"webhook-deny-private" help:"refuse webhook deliveries to loopback, private and link-local addresses (checked after DNS)"`
	LogLevel               string        `env:"LC_LOG_LEVEL" envDefault:"info" flag:"log-level" help:"debug, info, warn or error"`
	LogFormat              string        `env:"LC_LOG_FORMAT" envDefault:"json" flag:"log-format" help:"json or text"`
	MaxBodyBytes           int64         `env:"LC_MAX_BODY_BYTES" envDefault:"1048576" flag:"max-body-bytes" help:"largest request body" min:"1"`
	ShutdownTimeout        time.Duration `env:"LC_SHUTDOWN_TIMEOUT" envDefault:"30s" flag:"shutdown-timeout" help:"how long SIGTERM waits for requests in flight"`
	// RequestTimeout is every request's deadline (503 TIMEOUT after it);
	// PostgreSQL statements time out a little later on their own.
	RequestTimeout time.Duration `env:"LC_REQUEST_TIMEOUT" envDefault:"10s" flag:"request-timeout" help:"deadline of one request (503 TIMEOUT past it)" min:"100ms"`
	// TrustedProxies are the peers (CIDRs) whose X-Forwarded-For,
	// X-Forwarded-Proto and X-Forwarded-Host are believed; none by default.
	TrustedProxies []string `env:"LC_TRUSTED_PROXIES" flag:"trusted-proxies" help:"CIDRs or addresses of reverse proxies whose X-Forwarded-* headers are believed, comma-separated"`
	// PprofAddr, when set, serves net/http/pprof there (never on the API port).
	PprofAddr string `env:"LC_PPROF_ADDR" flag:"pprof-addr" help:"address of an opt-in profiling endpoint (empty: none)"`
}

// parsers are the environment's parsers beyond caarlos0/env's own:
// durations take a whole-day suffix ("400d").
var parsers = map[reflect.Type]env.ParserFunc{
	reflect.TypeOf(time.Duration(0)): func(v string) (any, error) { return ParseDuration(v) },
}

// Default returns the configuration with every default of API.md §11.
func Default() Config {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}, FuncMap: parsers}); err != nil {
		panic("config: bad envDefault: " + err.Error()) // a declaration error, caught by the tests
	}
	return c
}

// Load returns Default() overridden by the LC_* variables that lookup
// finds (empty values count as unset), and those by the flags set on the
// command line (by flag name). Every malformed value is reported with the
// variable's name.
func Load(lookup func(string) (string, bool), flags map[string]string) (Config, error) {
	vars := map[string]string{}
	for _, f := range fields() {
		if v, ok := lookup(f.env); ok && v != "" {
			vars[f.env] = v
		}
		if v, ok := flags[f.flag]; ok {
			vars[f.env] = v
		}
	}
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: vars, FuncMap: parsers}); err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) {
			msgs := make([]string, 0, len(agg.Errors))
			for _, e := range agg.Errors {
				var pe env.ParseError
				if errors.As(e, &pe) {
					sf, _ := reflect.TypeOf(Config{}).FieldByName(pe.Name)
					msgs = append(msgs, fmt.Sprintf("%s: %v", sf.Tag.Get("env"), pe.Err))
					continue
				}
				msgs = append(msgs, e.Error())
			}
			return Config{}, fmt.Errorf("configuration: %s", strings.Join(msgs, "; "))
		}
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	c.LicensePublicKeys, c.TrustedProxies = words(c.LicensePublicKeys), words(c.TrustedProxies)
	return c, c.Validate()
}

// words splits list items further at spaces and newlines and drops empty
// ones: lists may be written "a, b" or one per line.
func words(items []string) []string {
	var out []string
	for _, it := range items {
		out = append(out, strings.Fields(it)...)
	}
	return out
}

// field is one setting's declaration.
type field struct {
	index          int
	env, flag, def string
	help, min      string
	kind           string // for --help: string, duration, int, list or bool
}

func fields() []field {
	t := reflect.TypeOf(Config{})
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		kind := "string"
		switch sf.Type {
		case reflect.TypeOf(time.Duration(0)):
			kind = "duration"
		case reflect.TypeOf(int64(0)):
			kind = "int"
		case reflect.TypeOf([]string(nil)):
			kind = "list"
		case reflect.TypeOf(false):
			kind = "bool"
		}
		out = append(out, field{index: i, env: sf.Tag.Get("env"), flag: sf.Tag.Get("flag"), def: sf.Tag.Get("envDefault"),
			help: sf.Tag.Get("help"), min: sf.Tag.Get("min"), kind: kind})
	}
	return out
}

// Settings lists every setting as "LC_X (--x, default d): help", for docs.
func Settings() []string {
	var out []string
	for _, f := range fields() {
		def := f.def
		if def == "" {
			def = "empty"
		}
		out = append(out, fmt.Sprintf("%s (--%s, default %s): %s", f.env, f.flag, def, f.help))
	}
	return out
}

// Bind declares every setting as a flag of fs. The flags only collect what
// the command line says (into the returned map, by flag name); Load
// applies them over the environment, so that --help works whatever the
// environment holds.
func Bind(fs *pflag.FlagSet) map[string]string {
	set := map[string]string{}
	for _, f := range fields() {
		fs.Var(&flagValue{name: f.flag, set: set, def: f.def, kind: f.kind}, f.flag, fmt.Sprintf("%s (env %s)", f.help, f.env))
		if f.kind == "bool" {
			fs.Lookup(f.flag).NoOptDefVal = "true" // --flag alone means true
		}
	}
	return set
}

// flagValue records a flag's text for Load.
type flagValue struct {
	name, def, kind string
	set             map[string]string
}

func (v *flagValue) String() string {
	if s, ok := v.set[v.name]; ok {
		return s
	}
	return v.def
}

func (v *flagValue) Set(s string) error { v.set[v.name] = s; return nil }

func (v *flagValue) Type() string { return v.kind }

// Validate checks the values together, naming the variable of each fault.
func (c Config) Validate() error {
	var errs []string
	bad := func(name, format string, args ...any) { errs = append(errs, name+": "+fmt.Sprintf(format, args...)) }
	v := reflect.ValueOf(c)
	for _, f := range fields() {
		if f.min == "" {
			continue
		}
		switch x := v.Field(f.index).Interface().(type) {
		case time.Duration:
			if m, _ := ParseDuration(f.min); x < m {
				bad(f.env, "must be at least %s", f.min)
			}
		case int64:
			if m, _ := strconv.ParseInt(f.min, 10, 64); x < m {
				bad(f.env, "must be at least %s", f.min)
			}
		}
	}
	if c.AnalyticsCacheMB > 1<<20 { // more than a tebibyte is a typo (and 2^44 MiB would overflow its byte count)
		bad("LC_ANALYTICS_CACHE_MB", "%d MiB is more than 1048576 (1 TiB)", c.AnalyticsCacheMB)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("LC_LOG_FORMAT", "%q is neither json nor text", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("LC_LOG_LEVEL", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.DatabaseURL != "" && !IsPostgresURL(c.DatabaseURL) {
		bad("LC_DATABASE_URL", "only postgres:// or postgresql:// URLs are supported (leave it empty for the embedded store)")
	}
	switch {
	case c.DatabaseReadURL != "" && c.DatabaseURL == "":
		bad("LC_DATABASE_READ_URL", "a read replica needs LC_DATABASE_URL (the embedded store has none)")
	case c.DatabaseReadURL != "" && !IsPostgresURL(c.DatabaseReadURL):
		bad("LC_DATABASE_READ_URL", "only postgres:// or postgresql:// URLs are supported")
	}
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("LC_HTTP_ADDR", "%q is not host:port (%v)", c.HTTPAddr, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("LC_HTTP_ADDR", "%q: the port must be a number from 0 to 65535", c.HTTPAddr)
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("LC_TRUSTED_PROXIES", "%q is neither a CIDR nor an IP address", p)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
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
