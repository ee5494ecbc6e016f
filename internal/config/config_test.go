package config

import (
	"strings"
	"testing"
	"time"
)

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestLoad: defaults of API.md §11, the environment over them, flags over
// the environment, lists split at commas and spaces, and errors that name
// the variable.
func TestLoad(t *testing.T) {
	d := Default()
	if d.HTTPAddr != ":8080" || d.DataDir != "./data" || d.LeaseTTL != 5*time.Minute || d.UsageRetention != 400*24*time.Hour ||
		d.EventRetention != 90*24*time.Hour || d.MaxBodyBytes != 1<<20 || d.RequestTimeout != 10*time.Second ||
		d.DatabaseWait != 30*time.Second || d.LogFormat != "json" || d.DefaultAccount != "customer1" {
		t.Errorf("defaults: %+v", d)
	}
	c, err := Load(lookup(map[string]string{"LC_LEASE_TTL": "2m", "LC_EVENT_RETENTION": "7d", "LC_LICENSE_PUBLIC_KEYS": "a.pub, b.pub\nc.pub",
		"LC_DATA_DIR": ""}), map[string]string{"lease-ttl": "90s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.LeaseTTL != 90*time.Second || c.EventRetention != 7*24*time.Hour || strings.Join(c.LicensePublicKeys, "|") != "a.pub|b.pub|c.pub" ||
		c.DataDir != "./data" {
		t.Errorf("loaded: %+v", c)
	}
	for env, val := range map[string]string{"LC_LEASE_TTL": "soon", "LC_REQUEST_TIMEOUT": "1ms", "LC_MAX_BODY_BYTES": "-1",
		"LC_LOG_FORMAT": "xml", "LC_TRUSTED_PROXIES": "nope", "LC_HTTP_ADDR": "8080", "LC_DATABASE_URL": "mysql://x",
		"LC_ANALYTICS_CACHE_MB": "-1"} {
		if _, err := Load(lookup(map[string]string{env: val}), nil); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v", env, val, err)
		}
	}
	if _, err := Load(lookup(map[string]string{"LC_ANALYTICS_CACHE_MB": "9223372036854775807"}), nil); err == nil ||
		!strings.Contains(err.Error(), "LC_ANALYTICS_CACHE_MB") {
		t.Errorf("a cache of 2^63 MiB: %v", err)
	}
	if c, err := Load(lookup(map[string]string{"LC_ANALYTICS_CACHE_MB": "0"}), nil); err != nil || c.AnalyticsCacheMB != 0 || Default().AnalyticsCacheMB != 256 {
		t.Errorf("no cache: %v %v, default %d", c.AnalyticsCacheMB, err, Default().AnalyticsCacheMB)
	}
	// A read replica needs a PostgreSQL primary, and a postgres:// URL.
	for _, env := range []map[string]string{{"LC_DATABASE_READ_URL": "postgres://standby/lc"},
		{"LC_DATABASE_URL": "postgres://primary/lc", "LC_DATABASE_READ_URL": "mysql://standby"}} {
		if _, err := Load(lookup(env), nil); err == nil || !strings.Contains(err.Error(), "LC_DATABASE_READ_URL") {
			t.Errorf("%v: %v", env, err)
		}
	}
	if c, err := Load(lookup(map[string]string{"LC_DATABASE_URL": "postgres://primary/lc", "LC_DATABASE_READ_URL": "postgres://standby/lc"}), nil); err != nil ||
		c.ReadMaxLag != 5*time.Second {
		t.Errorf("a read replica: %+v %v", c.ReadMaxLag, err)
	}
	if len(Settings()) < 20 {
		t.Errorf("settings: %v", Settings())
	}
}
