package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tollgate/tollgate/config"
)

// envMap is a lookupEnv backed by a map, so tests never touch the process
// environment.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loaded is Default with the derived defaults Load fills in.
func loaded() config.Config {
	c := config.Default()
	c.Issuer = "http://127.0.0.1:8080"
	c.Database.URL = filepath.Join("./data", "tollgate.db")
	c.Credentials.AccessRights = config.DefaultAccessRights()
	c.Credentials.DefaultGrantTypes = config.DefaultGrantTypes(c.Grants.EskimiDSPName)
	c.RateLimits.Classes = config.DefaultRateClasses()
	return c
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c := config.Default()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"http.addr", c.HTTP.Addr, "127.0.0.1:8080"},
		{"http.max_body_bytes", c.HTTP.MaxBodyBytes, int64(65536)},
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout, 5 * time.Second},
		{"http.read_timeout", c.HTTP.ReadTimeout, 10 * time.Second},
		{"http.write_timeout", c.HTTP.WriteTimeout, 10 * time.Second},
		{"http.idle_timeout", c.HTTP.IdleTimeout, 120 * time.Second},
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout, 15 * time.Second},
		{"http.max_header_bytes", c.HTTP.MaxHeaderBytes, 32 << 10},
		{"http.tls_cert_file", c.HTTP.TLSCertFile, ""},
		{"http.tls_key_file", c.HTTP.TLSKeyFile, ""},
		{"ops.addr", c.Ops.Addr, "127.0.0.1:9090"},
		{"ops.pprof", c.Ops.Pprof, false},
		{"ops.tls_cert_file", c.Ops.TLSCertFile, ""},
		{"ops.tls_key_file", c.Ops.TLSKeyFile, ""},
		{"issuer", c.Issuer, ""},
		{"data_dir", c.DataDir, "./data"},
		{"database.url", c.Database.URL, ""},
		{"database.max_open_conns", c.Database.MaxOpenConns, 0},
		{"database.max_idle_conns", c.Database.MaxIdleConns, 0},
		{"database.conn_max_lifetime", c.Database.ConnMaxLifetime, 30 * time.Minute},
		{"database.conn_max_idle_time", c.Database.ConnMaxIdleTime, 5 * time.Minute},
		{"database.query_timeout", c.Database.QueryTimeout, 2 * time.Second},
		{"redis.url", c.Redis.URL, ""},
		{"redis.addrs", len(c.Redis.Addrs), 0},
		{"redis.master_name", c.Redis.MasterName, ""},
		{"redis.cluster", c.Redis.Cluster, false},
		{"redis.username", c.Redis.Username, ""},
		{"redis.password", c.Redis.Password, config.Secret("")},
		{"redis.sentinel_password", c.Redis.SentinelPassword, config.Secret("")},
		{"redis.tls", c.Redis.TLS, false},
		{"redis.key_prefix", c.Redis.KeyPrefix, "tg:"},
		{"redis.dial_timeout", c.Redis.DialTimeout, 500 * time.Millisecond},
		{"redis.read_timeout", c.Redis.ReadTimeout, 500 * time.Millisecond},
		{"redis.write_timeout", c.Redis.WriteTimeout, 500 * time.Millisecond},
		{"redis.pool_size", c.Redis.PoolSize, 0},
		{"keys.token_secret", c.Keys.TokenSecret, config.Secret("")},
		{"keys.token_secret_file", c.Keys.TokenSecretFile, ""},
		{"keys.rotated_token_secret_files", len(c.Keys.RotatedTokenSecretFiles), 0},
		{"keys.pepper_id", c.Keys.PepperID, "1"},
		{"keys.pepper", c.Keys.Pepper, config.Secret("")},
		{"keys.pepper_file", c.Keys.PepperFile, ""},
		{"keys.retired_pepper_files", len(c.Keys.RetiredPepperFiles), 0},
		{"tokens.client_credentials_lifetime", c.Tokens.ClientCredentialsLifetime, time.Hour},
		{"tokens.eskimi_dsp_lifetime", c.Tokens.EskimiDSPLifetime, 24 * time.Hour},
		{"tokens.client_token_lifetime", c.Tokens.ClientTokenLifetime, 365 * 24 * time.Hour},
		{"tokens.key_session_lifetime", c.Tokens.KeySessionLifetime, 24 * time.Hour},
		{"tokens.key_session_max_lifetime", c.Tokens.KeySessionMaxLifetime, 30 * 24 * time.Hour},
		{"grants.eskimi_dsp_name", c.Grants.EskimiDSPName, "eskimi_dsp"},
		{"credentials.management_scope", c.Credentials.ManagementScope, "tollgate:manage"},
		// Left nil: Load fills in DefaultAccessRights only when no bundles
		// are configured.
		{"credentials.access_rights", c.Credentials.AccessRights, map[string]string(nil)},
		{"credentials.default_access_rights", c.Credentials.DefaultAccessRights, "full"},
		// Left nil: Load fills in DefaultGrantTypes under the grant's
		// configured name.
		{"credentials.default_grant_types", c.Credentials.DefaultGrantTypes, []string(nil)},
		{"credentials.rotation_overlap", c.Credentials.RotationOverlap, 24 * time.Hour},
		{"credentials.max_rotation_overlap", c.Credentials.MaxRotationOverlap, 30 * 24 * time.Hour},
		{"credentials.disable_unused_after", c.Credentials.DisableUnusedAfter, 90 * 24 * time.Hour},
		{"credentials.stale_check_interval", c.Credentials.StaleCheckInterval, time.Hour},
		{"credentials.last_used_flush_interval", c.Credentials.LastUsedFlushInterval, time.Minute},
		// Left nil: Load fills in DefaultRateClasses only when no classes
		// are configured.
		{"rate_limits.classes", c.RateLimits.Classes, map[string]string(nil)},
		{"rate_limits.token_rate", c.RateLimits.TokenRate, 10},
		{"rate_limits.fail_open", c.RateLimits.FailOpen, false},
		{"brute_force.enabled", c.BruteForce.Enabled, true},
		{"brute_force.threshold", c.BruteForce.Threshold, 5},
		{"brute_force.source_threshold", c.BruteForce.SourceThreshold, 20},
		{"brute_force.base_delay", c.BruteForce.BaseDelay, time.Second},
		{"brute_force.max_delay", c.BruteForce.MaxDelay, 5 * time.Minute},
		{"brute_force.window", c.BruteForce.Window, 15 * time.Minute},
		{"brute_force.trusted_proxies", c.BruteForce.TrustedProxies, []string(nil)},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("Default() %s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestDefaultAccessRights(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"full":            "events contacts reports",
		"events":          "events",
		"events_contacts": "events contacts",
	}
	got := config.DefaultAccessRights()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultAccessRights() = %v, want %v", got, want)
	}
	// Each call returns a fresh map: changing one configuration's bundles
	// must not change the defaults of the next.
	got["full"] = "changed"
	got["extra"] = "x"
	if again := config.DefaultAccessRights(); !reflect.DeepEqual(again, want) {
		t.Errorf("DefaultAccessRights() after changing an earlier result = %v, want %v", again, want)
	}
	if name := config.Default().Credentials.DefaultAccessRights; want[name] == "" {
		t.Errorf("Default().Credentials.DefaultAccessRights = %q, want a bundle of DefaultAccessRights()", name)
	}
}

func TestDefaultRateClasses(t *testing.T) {
	t.Parallel()
	want := map[string]string{"default": "3", "reports": "1"}
	got := config.DefaultRateClasses()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultRateClasses() = %v, want %v", got, want)
	}
	for name, v := range got {
		if _, _, err := config.ParseRate(v); err != nil {
			t.Errorf("DefaultRateClasses()[%q] = %q: %v", name, v, err)
		}
	}
	// Each call returns a fresh map.
	got["default"] = "100"
	got["extra"] = "1"
	if again := config.DefaultRateClasses(); !reflect.DeepEqual(again, want) {
		t.Errorf("DefaultRateClasses() after changing an earlier result = %v, want %v", again, want)
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		rate, burst int
		ok          bool
	}{
		{"3", 3, 3, true},
		{"1", 1, 1, true},
		{"3:10", 3, 10, true},
		{"10:1", 10, 1, true},
		{" 5:7 ", 5, 7, true},
		{"1000000", 1000000, 1000000, true},
		{"", 0, 0, false},
		{" ", 0, 0, false},
		{"0", 0, 0, false},
		{"-1", 0, 0, false},
		{"x", 0, 0, false},
		{"1.5", 0, 0, false},
		{"3:0", 0, 0, false},
		{"3:-1", 0, 0, false},
		{"3:", 0, 0, false},
		{":3", 0, 0, false},
		{"0:3", 0, 0, false},
		{"3:x", 0, 0, false},
		{"3:5:7", 0, 0, false},
		{"3 : 5", 0, 0, false},
		{"3/s", 0, 0, false},
	}
	for _, tt := range tests {
		rate, burst, err := config.ParseRate(tt.in)
		if tt.ok {
			if err != nil || rate != tt.rate || burst != tt.burst {
				t.Errorf("ParseRate(%q) = %d, %d, %v, want %d, %d, nil", tt.in, rate, burst, err, tt.rate, tt.burst)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseRate(%q) = %d, %d, nil, want an error", tt.in, rate, burst)
			continue
		}
		if rate != 0 || burst != 0 {
			t.Errorf("ParseRate(%q) = %d, %d with error, want 0, 0", tt.in, rate, burst)
		}
		if want := fmt.Sprintf("%q", tt.in); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "<rate per second>[:<burst>]") {
			t.Errorf("ParseRate(%q) error = %q, want it to quote the value and the format", tt.in, err)
		}
	}
}

func TestLoadWithoutFileOrEnv(t *testing.T) {
	t.Parallel()
	for _, lookup := range []func(string) (string, bool){nil, envMap(nil)} {
		got, err := config.Load("", lookup)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if want := loaded(); !reflect.DeepEqual(got, want) {
			t.Errorf("Load(\"\", empty) = %+v, want %+v", got, want)
		}
		if !got.Embedded() {
			t.Error("Load(\"\", empty).Embedded() = false, want true")
		}
		if err := got.Validate(); err != nil {
			t.Errorf("Load(\"\", empty).Validate() = %v, want nil", err)
		}
	}
}

// everyFieldSet changes every YAML-settable field away from its default.
func everyFieldSet() config.Config {
	return config.Config{
		HTTP: config.HTTP{
			Addr:              "0.0.0.0:8443",
			MaxBodyBytes:      2048,
			ReadHeaderTimeout: 1 * time.Second,
			ReadTimeout:       2 * time.Second,
			WriteTimeout:      3 * time.Second,
			IdleTimeout:       4 * time.Second,
			ShutdownTimeout:   5 * time.Second,
			MaxHeaderBytes:    8 << 10,
			TLSCertFile:       "/run/secrets/tls.crt",
			TLSKeyFile:        "/run/secrets/tls.key",
		},
		Ops:     config.Ops{Addr: "0.0.0.0:9443", Pprof: true, TLSCertFile: "/run/secrets/ops.crt", TLSKeyFile: "/run/secrets/ops.key"},
		Issuer:  "https://auth.example.com",
		DataDir: "/var/lib/tollgate",
		Database: config.Database{
			URL:             "postgres://tollgate@db.internal:5432/tollgate?sslmode=verify-full",
			MaxOpenConns:    50,
			MaxIdleConns:    25,
			ConnMaxLifetime: time.Hour,
			ConnMaxIdleTime: 10 * time.Minute,
			QueryTimeout:    3 * time.Second,
		},
		// Sentinel rather than a URL, which excludes it (and redis.cluster).
		Redis: config.Redis{
			Addrs:        []string{"sentinel-1.internal:26379", "sentinel-2.internal:26379"},
			MasterName:   "tollgate",
			Username:     "tollgate",
			TLS:          true,
			KeyPrefix:    "auth:",
			DialTimeout:  time.Second,
			ReadTimeout:  200 * time.Millisecond,
			WriteTimeout: 300 * time.Millisecond,
			PoolSize:     64,
		},
		Keys: config.KeySources{
			TokenSecretFile:         "/run/secrets/token",
			RotatedTokenSecretFiles: []string{"/run/secrets/token.1", "/run/secrets/token.0"},
			PepperID:                "p2",
			PepperFile:              "/run/secrets/pepper2",
			RetiredPepperFiles:      map[string]string{"1": "/run/secrets/pepper1"},
			KeyEncryptionKeyFile:    "/run/secrets/kek",
		},
		DPoP: config.DPoP{Algorithms: []string{"ES256", "EdDSA"}, ProofMaxAge: 2 * time.Minute, ProofMaxSkew: 5 * time.Second},
		SigningKeys: config.SigningKeys{
			Algorithm:       "EdDSA",
			RotationPeriod:  7 * 24 * time.Hour,
			PublishAhead:    2 * time.Hour,
			RefreshInterval: time.Minute,
		},
		Tokens: config.Tokens{
			ClientCredentialsLifetime: 30 * time.Minute,
			EskimiDSPLifetime:         12 * time.Hour,
			ClientTokenLifetime:       90 * 24 * time.Hour,
			KeySessionLifetime:        2 * time.Hour,
			KeySessionMaxLifetime:     48 * time.Hour,
		},
		Grants: config.Grants{EskimiDSPName: "acme_dsp"},
		Webhooks: config.Webhooks{
			AllowHTTP:           true,
			Timeout:             5 * time.Second,
			PollInterval:        2 * time.Second,
			ExpiringBefore:      72 * time.Hour,
			ExpiryCheckInterval: 30 * time.Minute,
			DeliveryRetention:   14 * 24 * time.Hour,
		},
		Credentials: config.Credentials{
			ManagementScope: "https://api.example.com/manage",
			AccessRights: map[string]string{
				"reader": "events:read contacts:read",
				"writer": "events events:read",
			},
			DefaultAccessRights:   "reader",
			DefaultGrantTypes:     []string{"acme_dsp"},
			RotationOverlap:       2 * time.Hour,
			MaxRotationOverlap:    7 * 24 * time.Hour,
			DisableUnusedAfter:    180 * 24 * time.Hour,
			StaleCheckInterval:    10 * time.Minute,
			LastUsedFlushInterval: 15 * time.Second,
		},
		RateLimits: config.RateLimits{
			Classes:   map[string]string{"default": "5:10", "bulk-import.v2": "1"},
			TokenRate: 25,
			FailOpen:  true,
		},
		// Disabled is the non-default; the other values are valid, so the
		// round trip also validates them with the protection turned on.
		BruteForce: config.BruteForce{
			Enabled:         false,
			Threshold:       3,
			SourceThreshold: 50,
			BaseDelay:       500 * time.Millisecond,
			MaxDelay:        time.Minute,
			Window:          time.Hour,
			TrustedProxies:  []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.10"},
		},
		Usage: config.Usage{FlushInterval: 2 * time.Second, RollupInterval: time.Minute, RollupGrace: 3 * time.Minute,
			MinuteRetention: 72 * time.Hour, HourRetention: 30 * 24 * time.Hour, DayRetention: 365 * 24 * time.Hour},
		Log: config.Log{Level: "debug", Format: "text"},
	}
}

func TestLoadYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	want := everyFieldSet()
	data, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(writeFile(t, "tollgate.yaml", string(data)), envMap(nil))
	if err != nil {
		t.Fatalf("Load: %v\nfile:\n%s", err, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(round trip) = %+v, want %+v\nfile:\n%s", got, want, data)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	// Disabled skips the brute-force rules; the values must pass them too.
	got.BruteForce.Enabled = true
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() with brute_force enabled = %v, want nil", err)
	}
}

func TestLoadYAMLFile(t *testing.T) {
	t.Parallel()
	file := `
http:
  addr: 127.0.0.1:8081
  read_timeout: 1m30s
database:
  url: /tmp/tg.db
redis:
  pool_size: 7
keys:
  rotated_token_secret_files: [/a, /b]
  retired_pepper_files:
    "1": /p1
ops:
  pprof: true
tokens:
  eskimi_dsp_lifetime: 2h
  key_session_max_lifetime: 72h
credentials:
  disable_unused_after: 0s
  access_rights:
    reader: events
rate_limits:
  classes:
    default: 5
    search: "2:4"
  token_rate: 0
  fail_open: true
brute_force:
  threshold: 10
  max_delay: 90s
  window: 1h
`
	got, err := config.Load(writeFile(t, "c.yaml", file), envMap(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := loaded()
	want.HTTP.Addr = "127.0.0.1:8081"
	want.Issuer = "http://127.0.0.1:8081"
	want.HTTP.ReadTimeout = 90 * time.Second
	want.Database.URL = "/tmp/tg.db"
	want.Redis.PoolSize = 7
	want.Keys.RotatedTokenSecretFiles = []string{"/a", "/b"}
	want.Keys.RetiredPepperFiles = map[string]string{"1": "/p1"}
	want.Ops.Pprof = true
	want.Tokens.EskimiDSPLifetime = 2 * time.Hour
	want.Tokens.KeySessionMaxLifetime = 72 * time.Hour
	want.Credentials.DisableUnusedAfter = 0
	want.Credentials.AccessRights = map[string]string{"reader": "events"}        // replaces the defaults
	want.RateLimits.Classes = map[string]string{"default": "5", "search": "2:4"} // replaces the defaults
	want.RateLimits.TokenRate = 0
	want.RateLimits.FailOpen = true
	want.BruteForce.Threshold = 10 // the others keep their defaults
	want.BruteForce.MaxDelay = 90 * time.Second
	want.BruteForce.Window = time.Hour
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
}

func TestLoadEmptyYAMLFile(t *testing.T) {
	t.Parallel()
	got, err := config.Load(writeFile(t, "empty.yaml", "# nothing set\n"), envMap(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := loaded(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(empty file) = %+v, want %+v", got, want)
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string
		wants []string // substrings of the error
	}{
		{"unknown top-level key", "http:\n  addr: 127.0.0.1:1\nissuerr: x\n", []string{"issuerr", "line 3"}},
		{"unknown nested key", "redis:\n  url: redis://r\n  poolsize: 3\n", []string{"poolsize", "line 3"}},
		{"secret value in yaml", "keys:\n  token_secret: abc\n", []string{"token_secret", "line 2"}},
		{"pepper value in yaml", "keys:\n  pepper: abc\n", []string{"pepper", "line 2"}},
		{"string for int", "http:\n  max_body_bytes: lots\n", []string{"line 2"}},
		{"bare number for duration", "http:\n  read_timeout: 10\n", []string{"line 2"}},
		{"bad duration", "http:\n  read_timeout: soon\n", []string{"line 2"}},
		{"bool for pprof", "ops:\n  pprof: sometimes\n", []string{"line 2"}},
		{"unknown credentials key", "credentials:\n  rotation_overlaps: 1h\n", []string{"rotation_overlaps", "line 2"}},
		{"access rights as a list", "credentials:\n  access_rights: [events, contacts]\n", []string{"line 2"}},
		{"access rights scopes as a list", "credentials:\n  access_rights:\n    full: [events, contacts]\n", []string{"line 3"}},
		{"unknown rate_limits key", "rate_limits:\n  token_rates: 5\n", []string{"token_rates", "line 2"}},
		{"rate classes as a list", "rate_limits:\n  classes: [default, reports]\n", []string{"line 2"}},
		{"rate class as a mapping", "rate_limits:\n  classes:\n    default: {rate: 3}\n", []string{"line 3"}},
		{"string for token rate", "rate_limits:\n  token_rate: many\n", []string{"line 2"}},
		{"bool for fail open", "rate_limits:\n  fail_open: maybe\n", []string{"line 2"}},
		{"unknown brute_force key", "brute_force:\n  thresold: 5\n", []string{"thresold", "line 2"}},
		{"bool for brute force enabled", "brute_force:\n  enabled: perhaps\n", []string{"line 2"}},
		{"string for brute force threshold", "brute_force:\n  threshold: five\n", []string{"line 2"}},
		{"bare number for brute force delay", "brute_force:\n  base_delay: 1\n", []string{"line 2"}},
		{"bad brute force window", "brute_force:\n  window: forever\n", []string{"line 2"}},
		{"two documents", "issuer: http://a\n---\nissuer: http://b\n", []string{"single YAML document"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(writeFile(t, "c.yaml", tt.file), envMap(nil))
			if err == nil {
				t.Fatal("Load: got nil error, want one")
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := config.Load(filepath.Join(t.TempDir(), "absent.yaml"), envMap(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(absent file) error = %v, want one wrapping fs.ErrNotExist", err)
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		got  func(config.Config) any
		want any
	}{
		{"string", map[string]string{"TOLLGATE_LOG_LEVEL": "debug"}, func(c config.Config) any { return c.Log.Level }, "debug"},
		{"empty string", map[string]string{"TOLLGATE_REDIS_KEY_PREFIX": ""}, func(c config.Config) any { return c.Redis.KeyPrefix }, ""},
		{"int", map[string]string{"TOLLGATE_DATABASE_MAX_OPEN_CONNS": "77"}, func(c config.Config) any { return c.Database.MaxOpenConns }, 77},
		{"redis addrs", map[string]string{"TOLLGATE_REDIS_ADDRS": " n1:6379, n2:6379,"}, func(c config.Config) any { return c.Redis.Addrs }, []string{"n1:6379", "n2:6379"}},
		{"redis cluster", map[string]string{"TOLLGATE_REDIS_CLUSTER": "true"}, func(c config.Config) any { return c.Redis.Cluster }, true},
		{"redis password", map[string]string{"TOLLGATE_REDIS_PASSWORD": "p w"}, func(c config.Config) any { return c.Redis.Password }, config.Secret("p w")},
		{"int with spaces", map[string]string{"TOLLGATE_REDIS_POOL_SIZE": " 5 "}, func(c config.Config) any { return c.Redis.PoolSize }, 5},
		{"int64", map[string]string{"TOLLGATE_HTTP_MAX_BODY_BYTES": "1048576"}, func(c config.Config) any { return c.HTTP.MaxBodyBytes }, int64(1 << 20)},
		{"duration", map[string]string{"TOLLGATE_REDIS_DIAL_TIMEOUT": "250ms"}, func(c config.Config) any { return c.Redis.DialTimeout }, 250 * time.Millisecond},
		{"long duration", map[string]string{"TOLLGATE_ESKIMI_DSP_TOKEN_LIFETIME": "8760h"}, func(c config.Config) any { return c.Tokens.EskimiDSPLifetime }, 8760 * time.Hour},
		{"list", map[string]string{"TOLLGATE_ROTATED_TOKEN_SECRET_FILES": "/a, /b,,/c"}, func(c config.Config) any { return c.Keys.RotatedTokenSecretFiles }, []string{"/a", "/b", "/c"}},
		{"empty list", map[string]string{"TOLLGATE_ROTATED_TOKEN_SECRET_FILES": ""}, func(c config.Config) any { return c.Keys.RotatedTokenSecretFiles }, []string(nil)},
		{"map", map[string]string{"TOLLGATE_RETIRED_PEPPER_FILES": "1=/p1, a2=/p/a2"}, func(c config.Config) any { return c.Keys.RetiredPepperFiles }, map[string]string{"1": "/p1", "a2": "/p/a2"}},
		{"secret", map[string]string{"TOLLGATE_PEPPER": "pepper value"}, func(c config.Config) any { return c.Keys.Pepper }, config.Secret("pepper value")},
		{"issuer", map[string]string{"TOLLGATE_ISSUER": "https://id.example"}, func(c config.Config) any { return c.Issuer }, "https://id.example"},
		{"grant name", map[string]string{"TOLLGATE_ESKIMI_DSP_GRANT_NAME": "dsp"}, func(c config.Config) any { return c.Grants.EskimiDSPName }, "dsp"},
		{"bool", map[string]string{"TOLLGATE_OPS_PPROF": "true"}, func(c config.Config) any { return c.Ops.Pprof }, true},
		{"client token lifetime", map[string]string{"TOLLGATE_CLIENT_TOKEN_LIFETIME": "720h"}, func(c config.Config) any { return c.Tokens.ClientTokenLifetime }, 720 * time.Hour},
		{"webhook delivery retention", map[string]string{"TOLLGATE_WEBHOOKS_DELIVERY_RETENTION": "240h"}, func(c config.Config) any { return c.Webhooks.DeliveryRetention }, 240 * time.Hour},
		{"console idle timeout", map[string]string{"TOLLGATE_CONSOLE_SESSION_IDLE_TIMEOUT": "10m"}, func(c config.Config) any { return c.Console.SessionIdleTimeout }, 10 * time.Minute},
		{"console secure cookies", map[string]string{"TOLLGATE_CONSOLE_SECURE_COOKIES": "true"}, func(c config.Config) any { return c.Console.SecureCookies }, true},
		{"key session lifetime", map[string]string{"TOLLGATE_KEY_SESSION_LIFETIME": "1h"}, func(c config.Config) any { return c.Tokens.KeySessionLifetime }, time.Hour},
		{"key session max lifetime", map[string]string{"TOLLGATE_KEY_SESSION_MAX_LIFETIME": "48h"}, func(c config.Config) any { return c.Tokens.KeySessionMaxLifetime }, 48 * time.Hour},
		{"legacy opaque format", map[string]string{"TOLLGATE_TOKENS_LEGACY_OPAQUE_FORMAT": "true"}, func(c config.Config) any { return c.Tokens.LegacyOpaqueFormat }, true},
		{"management scope", map[string]string{"TOLLGATE_MANAGEMENT_SCOPE": "admin"}, func(c config.Config) any { return c.Credentials.ManagementScope }, "admin"},
		{"access rights", map[string]string{"TOLLGATE_ACCESS_RIGHTS": "full=events contacts,events=events"}, func(c config.Config) any { return c.Credentials.AccessRights }, map[string]string{"full": "events contacts", "events": "events"}},
		{"access rights with spaces", map[string]string{"TOLLGATE_ACCESS_RIGHTS": " ro = events:read  contacts:read , rw=events "}, func(c config.Config) any { return c.Credentials.AccessRights }, map[string]string{"ro": "events:read  contacts:read", "rw": "events"}},
		{"empty access rights keep defaults", map[string]string{"TOLLGATE_ACCESS_RIGHTS": ""}, func(c config.Config) any { return c.Credentials.AccessRights }, config.DefaultAccessRights()},
		{"default access rights", map[string]string{"TOLLGATE_DEFAULT_ACCESS_RIGHTS": "events"}, func(c config.Config) any { return c.Credentials.DefaultAccessRights }, "events"},
		{"default grant types", map[string]string{"TOLLGATE_DEFAULT_GRANT_TYPES": "client_credentials"}, func(c config.Config) any { return c.Credentials.DefaultGrantTypes }, []string{"client_credentials"}},
		{"default grant types by default", nil, func(c config.Config) any { return c.Credentials.DefaultGrantTypes }, []string{"client_credentials", "eskimi_dsp"}},
		{"default grant types follow a renamed grant", map[string]string{"TOLLGATE_ESKIMI_DSP_GRANT_NAME": "dsp_login"}, func(c config.Config) any { return c.Credentials.DefaultGrantTypes }, []string{"client_credentials", "dsp_login"}},
		{"rotation overlap", map[string]string{"TOLLGATE_ROTATION_OVERLAP": "90m"}, func(c config.Config) any { return c.Credentials.RotationOverlap }, 90 * time.Minute},
		{"max rotation overlap", map[string]string{"TOLLGATE_MAX_ROTATION_OVERLAP": "168h"}, func(c config.Config) any { return c.Credentials.MaxRotationOverlap }, 168 * time.Hour},
		{"disable unused after", map[string]string{"TOLLGATE_DISABLE_UNUSED_AFTER": "2160h"}, func(c config.Config) any { return c.Credentials.DisableUnusedAfter }, 2160 * time.Hour},
		{"disable unused off", map[string]string{"TOLLGATE_DISABLE_UNUSED_AFTER": "0"}, func(c config.Config) any { return c.Credentials.DisableUnusedAfter }, time.Duration(0)},
		{"dpop algorithms", map[string]string{"TOLLGATE_DPOP_ALGORITHMS": "ES256,EdDSA"}, func(c config.Config) any { return c.DPoP.Algorithms }, []string{"ES256", "EdDSA"}},
		{"dpop proof max age", map[string]string{"TOLLGATE_DPOP_PROOF_MAX_AGE": "30s"}, func(c config.Config) any { return c.DPoP.ProofMaxAge }, 30 * time.Second},
		{"stale check interval", map[string]string{"TOLLGATE_STALE_CHECK_INTERVAL": "15m"}, func(c config.Config) any { return c.Credentials.StaleCheckInterval }, 15 * time.Minute},
		{"last used flush interval", map[string]string{"TOLLGATE_LAST_USED_FLUSH_INTERVAL": "30s"}, func(c config.Config) any { return c.Credentials.LastUsedFlushInterval }, 30 * time.Second},
		{"rate classes", map[string]string{"TOLLGATE_RATE_CLASSES": "default=5:10,reports=1"}, func(c config.Config) any { return c.RateLimits.Classes }, map[string]string{"default": "5:10", "reports": "1"}},
		{"rate classes with spaces", map[string]string{"TOLLGATE_RATE_CLASSES": " default = 2 , bulk=1:20 "}, func(c config.Config) any { return c.RateLimits.Classes }, map[string]string{"default": "2", "bulk": "1:20"}},
		{"empty rate classes keep defaults", map[string]string{"TOLLGATE_RATE_CLASSES": ""}, func(c config.Config) any { return c.RateLimits.Classes }, config.DefaultRateClasses()},
		{"token rate", map[string]string{"TOLLGATE_TOKEN_RATE_LIMIT": "50"}, func(c config.Config) any { return c.RateLimits.TokenRate }, 50},
		{"token rate off", map[string]string{"TOLLGATE_TOKEN_RATE_LIMIT": "0"}, func(c config.Config) any { return c.RateLimits.TokenRate }, 0},
		{"fail open", map[string]string{"TOLLGATE_RATE_LIMIT_FAIL_OPEN": "true"}, func(c config.Config) any { return c.RateLimits.FailOpen }, true},
		{"fail open as 1", map[string]string{"TOLLGATE_RATE_LIMIT_FAIL_OPEN": "1"}, func(c config.Config) any { return c.RateLimits.FailOpen }, true},
		{"fail closed", map[string]string{"TOLLGATE_RATE_LIMIT_FAIL_OPEN": "false"}, func(c config.Config) any { return c.RateLimits.FailOpen }, false},
		{"brute force off", map[string]string{"TOLLGATE_BRUTEFORCE_ENABLED": "false"}, func(c config.Config) any { return c.BruteForce.Enabled }, false},
		{"brute force off as 0", map[string]string{"TOLLGATE_BRUTEFORCE_ENABLED": "0"}, func(c config.Config) any { return c.BruteForce.Enabled }, false},
		{"brute force on", map[string]string{"TOLLGATE_BRUTEFORCE_ENABLED": "true"}, func(c config.Config) any { return c.BruteForce.Enabled }, true},
		{"brute force threshold", map[string]string{"TOLLGATE_BRUTEFORCE_THRESHOLD": "8"}, func(c config.Config) any { return c.BruteForce.Threshold }, 8},
		{"brute force source threshold", map[string]string{"TOLLGATE_BRUTEFORCE_SOURCE_THRESHOLD": " 100 "}, func(c config.Config) any { return c.BruteForce.SourceThreshold }, 100},
		{"brute force base delay", map[string]string{"TOLLGATE_BRUTEFORCE_BASE_DELAY": "250ms"}, func(c config.Config) any { return c.BruteForce.BaseDelay }, 250 * time.Millisecond},
		{"brute force max delay", map[string]string{"TOLLGATE_BRUTEFORCE_MAX_DELAY": "1h"}, func(c config.Config) any { return c.BruteForce.MaxDelay }, time.Hour},
		{"brute force window", map[string]string{"TOLLGATE_BRUTEFORCE_WINDOW": "24h"}, func(c config.Config) any { return c.BruteForce.Window }, 24 * time.Hour},
		{"trusted proxies", map[string]string{"TOLLGATE_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32,,192.0.2.10"}, func(c config.Config) any { return c.BruteForce.TrustedProxies }, []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.10"}},
		{"no trusted proxies", map[string]string{"TOLLGATE_TRUSTED_PROXIES": ""}, func(c config.Config) any { return c.BruteForce.TrustedProxies }, []string(nil)},
		{"brute force env leaves the rest", map[string]string{"TOLLGATE_BRUTEFORCE_THRESHOLD": "8"}, func(c config.Config) any { return c.BruteForce }, config.BruteForce{
			Enabled: true, Threshold: 8, SourceThreshold: 20, BaseDelay: time.Second, MaxDelay: 5 * time.Minute, Window: 15 * time.Minute,
		}},
		{"test variable ignored", map[string]string{"TOLLGATE_TEST_ANYTHING": "x"}, func(c config.Config) any { return c.HTTP.Addr }, "127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load("", envMap(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestAccessRightsReplaceDefaults checks that configured bundles replace the
// defaults instead of merging into them, from YAML and from the environment,
// and that the defaults apply only when no bundles are configured.
func TestAccessRightsReplaceDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		want  map[string]string
		valid bool // Validate with the default default_access_rights ("full")
	}{
		{"none configured", "", nil, config.DefaultAccessRights(), true},
		{"yaml section without bundles", "credentials:\n  rotation_overlap: 1h\n", nil, config.DefaultAccessRights(), true},
		{"yaml null", "credentials:\n  access_rights:\n", nil, config.DefaultAccessRights(), true},
		{"yaml one bundle", "credentials:\n  access_rights:\n    reader: events\n", nil,
			map[string]string{"reader": "events"}, false},
		{"yaml redefines a default bundle", "credentials:\n  access_rights:\n    full: events\n", nil,
			map[string]string{"full": "events"}, true},
		{"yaml empty mapping", "credentials:\n  access_rights: {}\n", nil, map[string]string{}, false},
		{"env", "", map[string]string{"TOLLGATE_ACCESS_RIGHTS": "full=events contacts,events=events"},
			map[string]string{"full": "events contacts", "events": "events"}, true},
		{"env replaces yaml", "credentials:\n  access_rights:\n    reader: events\n    writer: events contacts\n",
			map[string]string{"TOLLGATE_ACCESS_RIGHTS": "full=reports"}, map[string]string{"full": "reports"}, true},
		{"empty env clears yaml back to defaults", "credentials:\n  access_rights:\n    reader: events\n",
			map[string]string{"TOLLGATE_ACCESS_RIGHTS": ""}, config.DefaultAccessRights(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.file != "" {
				path = writeFile(t, "c.yaml", tt.file)
			}
			c, err := config.Load(path, envMap(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := c.Credentials.AccessRights; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("credentials.access_rights = %#v, want %#v", got, tt.want)
			}
			err = c.Validate()
			if got := err == nil; got != tt.valid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
		})
	}
}

// TestRateClassesReplaceDefaults checks that configured rate classes replace
// the defaults instead of merging into them, from YAML and from the
// environment, and that the defaults apply only when no classes are
// configured.
func TestRateClassesReplaceDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		want  map[string]string
		valid bool
	}{
		{"none configured", "", nil, config.DefaultRateClasses(), true},
		{"yaml section without classes", "rate_limits:\n  token_rate: 5\n", nil, config.DefaultRateClasses(), true},
		{"yaml null", "rate_limits:\n  classes:\n", nil, config.DefaultRateClasses(), true},
		{"yaml default only", "rate_limits:\n  classes:\n    default: 7\n", nil,
			map[string]string{"default": "7"}, true},
		{"yaml without default", "rate_limits:\n  classes:\n    reports: 2\n", nil,
			map[string]string{"reports": "2"}, false},
		{"yaml empty mapping", "rate_limits:\n  classes: {}\n", nil, map[string]string{}, false},
		{"env", "", map[string]string{"TOLLGATE_RATE_CLASSES": "default=5:10,reports=1"},
			map[string]string{"default": "5:10", "reports": "1"}, true},
		{"env without default", "", map[string]string{"TOLLGATE_RATE_CLASSES": "reports=1"},
			map[string]string{"reports": "1"}, false},
		{"env replaces yaml", "rate_limits:\n  classes:\n    default: 9\n    search: 4\n",
			map[string]string{"TOLLGATE_RATE_CLASSES": "default=2"}, map[string]string{"default": "2"}, true},
		{"empty env clears yaml back to defaults", "rate_limits:\n  classes:\n    reports: 2\n",
			map[string]string{"TOLLGATE_RATE_CLASSES": ""}, config.DefaultRateClasses(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.file != "" {
				path = writeFile(t, "c.yaml", tt.file)
			}
			c, err := config.Load(path, envMap(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := c.RateLimits.Classes; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rate_limits.classes = %#v, want %#v", got, tt.want)
			}
			err = c.Validate()
			if got := err == nil; got != tt.valid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
			if !tt.valid && err != nil && !strings.Contains(err.Error(), "rate_limits.classes (TOLLGATE_RATE_CLASSES): must define the default class") {
				t.Errorf("Validate() = %q, want the missing default class reported", err)
			}
		})
	}
}

func TestLoadEnvOverridesYAML(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "c.yaml", "log:\n  level: warn\n  format: text\n")
	c, err := config.Load(path, envMap(map[string]string{"TOLLGATE_LOG_LEVEL": "error"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := c.Log.Level, "error"; got != want {
		t.Errorf("log.level = %q, want %q (env over YAML)", got, want)
	}
	if got, want := c.Log.Format, "text"; got != want {
		t.Errorf("log.format = %q, want %q (YAML kept)", got, want)
	}
}

func TestLoadBadEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		wants []string
	}{
		{"duration", map[string]string{"TOLLGATE_HTTP_READ_TIMEOUT": "10"}, []string{"TOLLGATE_HTTP_READ_TIMEOUT", "duration"}},
		{"empty duration", map[string]string{"TOLLGATE_HTTP_IDLE_TIMEOUT": ""}, []string{"TOLLGATE_HTTP_IDLE_TIMEOUT"}},
		{"int", map[string]string{"TOLLGATE_DATABASE_MAX_IDLE_CONNS": "ten"}, []string{"TOLLGATE_DATABASE_MAX_IDLE_CONNS", "integer"}},
		{"float for int", map[string]string{"TOLLGATE_REDIS_POOL_SIZE": "1.5"}, []string{"TOLLGATE_REDIS_POOL_SIZE"}},
		{"int overflow", map[string]string{"TOLLGATE_DATABASE_MAX_OPEN_CONNS": "99999999999999999999"}, []string{"TOLLGATE_DATABASE_MAX_OPEN_CONNS"}},
		{"map without =", map[string]string{"TOLLGATE_RETIRED_PEPPER_FILES": "1:/p"}, []string{"TOLLGATE_RETIRED_PEPPER_FILES", "id=path"}},
		{"map duplicate id", map[string]string{"TOLLGATE_RETIRED_PEPPER_FILES": "1=/a,1=/b"}, []string{"TOLLGATE_RETIRED_PEPPER_FILES", "duplicate"}},
		{"bool", map[string]string{"TOLLGATE_OPS_PPROF": "on"}, []string{"TOLLGATE_OPS_PPROF", "boolean"}},
		{"new duration", map[string]string{"TOLLGATE_KEY_SESSION_LIFETIME": "1 day"}, []string{"TOLLGATE_KEY_SESSION_LIFETIME", "duration"}},
		{"access rights without =", map[string]string{"TOLLGATE_ACCESS_RIGHTS": "full:events"}, []string{"TOLLGATE_ACCESS_RIGHTS", "invalid item"}},
		{"access rights without scopes", map[string]string{"TOLLGATE_ACCESS_RIGHTS": "full="}, []string{"TOLLGATE_ACCESS_RIGHTS", "invalid item"}},
		{"access rights duplicate bundle", map[string]string{"TOLLGATE_ACCESS_RIGHTS": "full=events,full=contacts"}, []string{"TOLLGATE_ACCESS_RIGHTS", "duplicate"}},
		{"token rate", map[string]string{"TOLLGATE_TOKEN_RATE_LIMIT": "ten"}, []string{"TOLLGATE_TOKEN_RATE_LIMIT", "integer"}},
		{"float token rate", map[string]string{"TOLLGATE_TOKEN_RATE_LIMIT": "1.5"}, []string{"TOLLGATE_TOKEN_RATE_LIMIT", "integer"}},
		{"empty token rate", map[string]string{"TOLLGATE_TOKEN_RATE_LIMIT": ""}, []string{"TOLLGATE_TOKEN_RATE_LIMIT"}},
		{"fail open", map[string]string{"TOLLGATE_RATE_LIMIT_FAIL_OPEN": "yes"}, []string{"TOLLGATE_RATE_LIMIT_FAIL_OPEN", "boolean"}},
		{"rate classes without =", map[string]string{"TOLLGATE_RATE_CLASSES": "default:3"}, []string{"TOLLGATE_RATE_CLASSES", "invalid item"}},
		{"rate class without rate", map[string]string{"TOLLGATE_RATE_CLASSES": "default="}, []string{"TOLLGATE_RATE_CLASSES", "invalid item"}},
		{"rate classes duplicate class", map[string]string{"TOLLGATE_RATE_CLASSES": "default=3,default=5"}, []string{"TOLLGATE_RATE_CLASSES", "duplicate"}},
		{"brute force enabled", map[string]string{"TOLLGATE_BRUTEFORCE_ENABLED": "off"}, []string{"TOLLGATE_BRUTEFORCE_ENABLED", "boolean"}},
		{"empty brute force enabled", map[string]string{"TOLLGATE_BRUTEFORCE_ENABLED": ""}, []string{"TOLLGATE_BRUTEFORCE_ENABLED"}},
		{"brute force threshold", map[string]string{"TOLLGATE_BRUTEFORCE_THRESHOLD": "five"}, []string{"TOLLGATE_BRUTEFORCE_THRESHOLD", "integer"}},
		{"float brute force source threshold", map[string]string{"TOLLGATE_BRUTEFORCE_SOURCE_THRESHOLD": "2.5"}, []string{"TOLLGATE_BRUTEFORCE_SOURCE_THRESHOLD", "integer"}},
		{"bare number brute force base delay", map[string]string{"TOLLGATE_BRUTEFORCE_BASE_DELAY": "1"}, []string{"TOLLGATE_BRUTEFORCE_BASE_DELAY", "duration"}},
		{"brute force max delay", map[string]string{"TOLLGATE_BRUTEFORCE_MAX_DELAY": "5 minutes"}, []string{"TOLLGATE_BRUTEFORCE_MAX_DELAY", "duration"}},
		{"empty brute force window", map[string]string{"TOLLGATE_BRUTEFORCE_WINDOW": ""}, []string{"TOLLGATE_BRUTEFORCE_WINDOW"}},
		{"every bad variable reported", map[string]string{
			"TOLLGATE_HTTP_WRITE_TIMEOUT":  "x",
			"TOLLGATE_HTTP_MAX_BODY_BYTES": "y",
		}, []string{"TOLLGATE_HTTP_WRITE_TIMEOUT", "TOLLGATE_HTTP_MAX_BODY_BYTES"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load("", envMap(tt.env))
			if err == nil {
				t.Fatal("Load: got nil error, want one")
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestLoadUnknownEnv uses the process environment, the only place names can
// be listed, so it cannot run in parallel.
func TestLoadUnknownEnv(t *testing.T) {
	t.Setenv("TOLLGATE_HTPP_ADDR", "typo-value-1234")
	t.Setenv("TOLLGATE_LOGLEVEL", "debug")
	t.Setenv("TOLLGATE_TEST_SOMETHING", "ignored")

	_, err := config.Load("", os.LookupEnv)
	if err == nil {
		t.Fatal("Load: got nil error, want unknown variable error")
	}
	for _, want := range []string{"TOLLGATE_HTPP_ADDR", "TOLLGATE_LOGLEVEL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Load error = %q, want it to contain %q", err, want)
		}
	}
	for _, notWant := range []string{"TOLLGATE_TEST_SOMETHING", "typo-value-1234"} {
		if strings.Contains(err.Error(), notWant) {
			t.Errorf("Load error = %q, want it not to contain %q", err, notWant)
		}
	}

	// A lookup that does not see the stray variables is not disturbed by them.
	if _, err := config.Load("", envMap(nil)); err != nil {
		t.Errorf("Load with isolated lookup: %v, want nil", err)
	}
}

func TestLoadDerived(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		file       string
		env        map[string]string
		wantIssuer string
		wantDB     string
	}{
		{"defaults", "", nil, "http://127.0.0.1:8080", filepath.Join("data", "tollgate.db")},
		{"issuer follows env addr", "", map[string]string{"TOLLGATE_HTTP_ADDR": "127.0.0.1:9999"}, "http://127.0.0.1:9999", "data/tollgate.db"},
		{"issuer follows yaml addr", "http:\n  addr: 10.1.2.3:81\n", nil, "http://10.1.2.3:81", "data/tollgate.db"},
		{"env addr beats yaml addr", "http:\n  addr: 10.1.2.3:81\n", map[string]string{"TOLLGATE_HTTP_ADDR": "127.0.0.1:82"}, "http://127.0.0.1:82", "data/tollgate.db"},
		{"unspecified IPv4 becomes localhost", "", map[string]string{"TOLLGATE_HTTP_ADDR": "0.0.0.0:8080"}, "http://localhost:8080", "data/tollgate.db"},
		{"empty host becomes localhost", "", map[string]string{"TOLLGATE_HTTP_ADDR": ":7000"}, "http://localhost:7000", "data/tollgate.db"},
		{"unspecified IPv6 becomes localhost", "", map[string]string{"TOLLGATE_HTTP_ADDR": "[::]:7000"}, "http://localhost:7000", "data/tollgate.db"},
		{"IPv6 loopback", "", map[string]string{"TOLLGATE_HTTP_ADDR": "[::1]:7000"}, "http://[::1]:7000", "data/tollgate.db"},
		{"explicit issuer kept", "", map[string]string{"TOLLGATE_ISSUER": "https://a.example", "TOLLGATE_HTTP_ADDR": "127.0.0.1:1"}, "https://a.example", "data/tollgate.db"},
		{"database follows data dir", "", map[string]string{"TOLLGATE_DATA_DIR": "/srv/tg"}, "http://127.0.0.1:8080", "/srv/tg/tollgate.db"},
		{"database follows yaml data dir", "data_dir: /opt/tg\n", nil, "http://127.0.0.1:8080", "/opt/tg/tollgate.db"},
		{"explicit database kept", "", map[string]string{"TOLLGATE_DATA_DIR": "/srv/tg", "TOLLGATE_DATABASE_URL": "postgres://db/tg"}, "http://127.0.0.1:8080", "postgres://db/tg"},
		{"issuer is https under TLS", "", map[string]string{"TOLLGATE_HTTP_TLS_CERT_FILE": "/c.pem", "TOLLGATE_HTTP_TLS_KEY_FILE": "/k.pem"}, "https://127.0.0.1:8080", "data/tollgate.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.file != "" {
				path = writeFile(t, "c.yaml", tt.file)
			}
			c, err := config.Load(path, envMap(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Issuer != tt.wantIssuer {
				t.Errorf("issuer = %q, want %q", c.Issuer, tt.wantIssuer)
			}
			if c.Database.URL != filepath.FromSlash(tt.wantDB) {
				t.Errorf("database.url = %q, want %q", c.Database.URL, tt.wantDB)
			}
		})
	}
}

func TestEmbedded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dbURL, redisURL string
		want            bool
	}{
		{"data/tollgate.db", "", true},
		{"/var/lib/tg.db", "", true},
		{"file:tg.db?cache=shared", "", true},
		{"postgres://db/tg", "", false},
		{"PostgreSQL://db/tg", "", false},
		{"data/tollgate.db", "redis://r:6379/0", false},
		{"postgres://db/tg", "redis://r:6379/0", false},
	}
	for _, tt := range tests {
		c := config.Default()
		c.Database.URL, c.Redis.URL = tt.dbURL, tt.redisURL
		if got := c.Embedded(); got != tt.want {
			t.Errorf("Embedded() with database %q, redis %q = %v, want %v", tt.dbURL, tt.redisURL, got, tt.want)
		}
	}
	c := config.Default()
	c.Database.URL, c.Redis.Addrs, c.Redis.Cluster = "data/tollgate.db", []string{"r1:6379"}, true
	if c.Embedded() {
		t.Error("Embedded() with a SQLite database and Redis Cluster addresses = true, want false")
	}
}

// production is a valid non-embedded configuration.
func production() config.Config {
	c := loaded()
	c.Database.URL = "postgres://tollgate:pw@db:5432/tollgate"
	c.Redis.URL = "redis://redis:6379/0"
	c.Keys.TokenSecret = config.Secret(strings.Repeat("t", 32))
	c.Keys.Pepper = config.Secret(strings.Repeat("p", 32))
	c.Keys.KeyEncryptionKey = config.Secret(strings.Repeat("ab", 32))
	return c
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*config.Config)
	}{
		{"embedded default", func(c *config.Config) { *c = loaded() }},
		{"production", func(*config.Config) {}},
		{"production with key files", func(c *config.Config) {
			c.Keys.TokenSecret, c.Keys.Pepper, c.Keys.KeyEncryptionKey = "", "", ""
			c.Keys.TokenSecretFile, c.Keys.PepperFile = "/run/secrets/t", "/run/secrets/p"
			c.Keys.KeyEncryptionKeyFile = "/run/secrets/kek"
			c.Keys.RotatedTokenSecretFiles = []string{"/run/secrets/t0"}
			c.Keys.PepperID = "2"
			c.Keys.RetiredPepperFiles = map[string]string{"1": "/run/secrets/p1"}
		}},
		{"https issuer with path", func(c *config.Config) { c.Issuer = "https://example.com/oauth" }},
		{"http issuer on a public host", func(c *config.Config) { c.Issuer = "http://auth.example.com:8080" }},
		{"postgresql scheme", func(c *config.Config) { c.Database.URL = "postgresql://db/tg?sslmode=require" }},
		{"rediss", func(c *config.Config) { c.Redis.URL = "rediss://:pw@redis:6380/1" }},
		{"unix redis", func(c *config.Config) { c.Redis.URL = "unix:///run/redis.sock" }},
		{"port zero listeners", func(c *config.Config) { c.HTTP.Addr, c.Ops.Addr = "127.0.0.1:0", "127.0.0.1:0" }},
		{"all-interface listeners", func(c *config.Config) { c.HTTP.Addr, c.Ops.Addr = ":8080", ":9090" }},
		{"body cap bounds", func(c *config.Config) { c.HTTP.MaxBodyBytes = 1024 }},
		{"body cap upper bound", func(c *config.Config) { c.HTTP.MaxBodyBytes = 10 << 20 }},
		{"unlimited connection lifetime", func(c *config.Config) { c.Database.ConnMaxLifetime = 0 }},
		{"unlimited connection idle time", func(c *config.Config) { c.Database.ConnMaxIdleTime = 0 }},
		{"own pool limits", func(c *config.Config) { c.Database.MaxOpenConns, c.Database.MaxIdleConns = 50, 5 }},
		{"redis sentinel", func(c *config.Config) {
			c.Redis = config.Default().Redis
			c.Redis.Addrs = []string{"sentinel-1:26379", "sentinel-2:26379", "10.0.0.3:26379", "[2001:db8::1]:26379"}
			c.Redis.MasterName = "tollgate"
			c.Redis.Username, c.Redis.Password, c.Redis.SentinelPassword = "tg", "pw", "spw"
			c.Redis.TLS = true
		}},
		{"redis cluster", func(c *config.Config) {
			c.Redis = config.Default().Redis
			c.Redis.Addrs, c.Redis.Cluster, c.Redis.Password = []string{"node-1:6379", "node-2:6379"}, true, "pw"
		}},
		{"redis cluster of one seed", func(c *config.Config) {
			c.Redis = config.Default().Redis
			c.Redis.Addrs, c.Redis.Cluster = []string{"clustercfg.example.cache.amazonaws.com:6379"}, true
		}},
		{"grant name with dot and dash", func(c *config.Config) {
			c.Grants.EskimiDSPName = "acme.dsp-v2"
			c.Credentials.DefaultGrantTypes = config.DefaultGrantTypes(c.Grants.EskimiDSPName)
		}},
		{"pepper id of 8", func(c *config.Config) { c.Keys.PepperID = "2025a01b" }},
		{"pprof on", func(c *config.Config) { c.Ops.Pprof = true }},
		{"key session lifetime at its cap", func(c *config.Config) { c.Tokens.KeySessionLifetime = c.Tokens.KeySessionMaxLifetime }},
		{"short client token lifetime", func(c *config.Config) { c.Tokens.ClientTokenLifetime = time.Minute }},
		{"rotation overlap at its cap", func(c *config.Config) { c.Credentials.RotationOverlap = c.Credentials.MaxRotationOverlap }},
		{"disabling unused credentials off", func(c *config.Config) { c.Credentials.DisableUnusedAfter = 0 }},
		{"management scope URI", func(c *config.Config) { c.Credentials.ManagementScope = "https://api.example.com/manage" }},
		{"management scope of 128", func(c *config.Config) { c.Credentials.ManagementScope = strings.Repeat("m", 128) }},
		{"own bundles", func(c *config.Config) {
			c.Credentials.AccessRights = map[string]string{"reader": "events:read", "ops-team.v2": "  events\tcontacts  reports "}
			c.Credentials.DefaultAccessRights = "reader"
		}},
		{"one default bundle", func(c *config.Config) {
			c.Credentials.AccessRights = map[string]string{"events": "events"}
			c.Credentials.DefaultAccessRights = "events"
		}},
		{"default rate class only", func(c *config.Config) { c.RateLimits.Classes = map[string]string{"default": "1"} }},
		{"own rate classes with bursts", func(c *config.Config) {
			c.RateLimits.Classes = map[string]string{"default": "5:10", "reports": "1:1", "bulk-import.v2": "100:1", "Search_2": " 2 "}
		}},
		{"token rate off", func(c *config.Config) { c.RateLimits.TokenRate = 0 }},
		{"high token rate", func(c *config.Config) { c.RateLimits.TokenRate = 100000 }},
		{"fail open", func(c *config.Config) { c.RateLimits.FailOpen = true }},
		{"brute force thresholds of 1", func(c *config.Config) { c.BruteForce.Threshold, c.BruteForce.SourceThreshold = 1, 1 }},
		{"brute force source threshold under the id threshold", func(c *config.Config) { c.BruteForce.Threshold, c.BruteForce.SourceThreshold = 10, 3 }},
		{"brute force base delay at its cap", func(c *config.Config) { c.BruteForce.BaseDelay = c.BruteForce.MaxDelay }},
		{"brute force shortest delays", func(c *config.Config) {
			c.BruteForce.BaseDelay, c.BruteForce.MaxDelay, c.BruteForce.Window = time.Nanosecond, time.Nanosecond, time.Nanosecond
		}},
		// The guard raises the window to max_delay; it is not an error.
		{"brute force window under max delay", func(c *config.Config) { c.BruteForce.Window = time.Minute }},
		{"brute force off", func(c *config.Config) { c.BruteForce.Enabled = false }},
		{"brute force rules skipped when off", func(c *config.Config) {
			c.BruteForce = config.BruteForce{Enabled: false, Threshold: 0, SourceThreshold: -1, BaseDelay: time.Hour, MaxDelay: -time.Second, Window: 0}
		}},
		{"brute force zero values when off", func(c *config.Config) { c.BruteForce = config.BruteForce{} }},
		{"trusted proxies", func(c *config.Config) {
			c.BruteForce.TrustedProxies = []string{"10.0.0.0/8", " 172.16.0.0/12 ", "192.0.2.10", "2001:db8::/32", "::1", "::ffff:10.0.0.0/104", "0.0.0.0/0"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := production()
			tt.modify(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*config.Config)
		want   string // substring of the error
	}{
		{"addr without port", func(c *config.Config) { c.HTTP.Addr = "localhost" }, "TOLLGATE_HTTP_ADDR"},
		{"named port", func(c *config.Config) { c.Ops.Addr = "127.0.0.1:http" }, "TOLLGATE_OPS_ADDR"},
		{"keyword DSN taken for a SQLite path", func(c *config.Config) {
			c.Database.URL = "host=127.0.0.1 user=postgres password=hunter2secret dbname=tollgate"
		}, "keyword/value"},
		{"port out of range", func(c *config.Config) { c.HTTP.Addr = "127.0.0.1:70000" }, "TOLLGATE_HTTP_ADDR"},
		{"same listener", func(c *config.Config) { c.Ops.Addr = c.HTTP.Addr }, "must differ"},
		{"same port on all interfaces", func(c *config.Config) { c.HTTP.Addr, c.Ops.Addr = "127.0.0.1:8080", ":8080" }, "must differ"},
		{"issuer empty", func(c *config.Config) { c.Issuer = "" }, "issuer"},
		{"issuer relative", func(c *config.Config) { c.Issuer = "/oauth" }, "TOLLGATE_ISSUER"},
		{"issuer scheme", func(c *config.Config) { c.Issuer = "ftp://example.com" }, "http or https"},
		{"issuer query", func(c *config.Config) { c.Issuer = "https://example.com?a=b" }, "query"},
		{"issuer empty query", func(c *config.Config) { c.Issuer = "https://example.com?" }, "query"},
		{"issuer fragment", func(c *config.Config) { c.Issuer = "https://example.com#x" }, "fragment"},
		{"issuer trailing slash", func(c *config.Config) { c.Issuer = "https://example.com/" }, "slash"},
		{"issuer user info", func(c *config.Config) { c.Issuer = "https://u@example.com" }, "user info"},
		{"body cap too small", func(c *config.Config) { c.HTTP.MaxBodyBytes = 1023 }, "TOLLGATE_HTTP_MAX_BODY_BYTES"},
		{"body cap too large", func(c *config.Config) { c.HTTP.MaxBodyBytes = 10<<20 + 1 }, "TOLLGATE_HTTP_MAX_BODY_BYTES"},
		{"zero read header timeout", func(c *config.Config) { c.HTTP.ReadHeaderTimeout = 0 }, "TOLLGATE_HTTP_READ_HEADER_TIMEOUT"},
		{"negative read timeout", func(c *config.Config) { c.HTTP.ReadTimeout = -time.Second }, "TOLLGATE_HTTP_READ_TIMEOUT"},
		{"zero write timeout", func(c *config.Config) { c.HTTP.WriteTimeout = 0 }, "TOLLGATE_HTTP_WRITE_TIMEOUT"},
		{"zero idle timeout", func(c *config.Config) { c.HTTP.IdleTimeout = 0 }, "TOLLGATE_HTTP_IDLE_TIMEOUT"},
		{"zero shutdown timeout", func(c *config.Config) { c.HTTP.ShutdownTimeout = 0 }, "TOLLGATE_HTTP_SHUTDOWN_TIMEOUT"},
		{"header cap too small", func(c *config.Config) { c.HTTP.MaxHeaderBytes = 4<<10 - 1 }, "TOLLGATE_HTTP_MAX_HEADER_BYTES"},
		{"header cap too large", func(c *config.Config) { c.HTTP.MaxHeaderBytes = 1<<20 + 1 }, "TOLLGATE_HTTP_MAX_HEADER_BYTES"},
		{"tls cert without key", func(c *config.Config) { c.HTTP.TLSCertFile = "/tls.crt" }, "TOLLGATE_HTTP_TLS_KEY_FILE"},
		{"tls key without cert", func(c *config.Config) { c.HTTP.TLSKeyFile = "/tls.key" }, "TOLLGATE_HTTP_TLS_CERT_FILE"},
		{"ops tls cert without key", func(c *config.Config) { c.Ops.TLSCertFile = "/tls.crt" }, "TOLLGATE_OPS_TLS_KEY_FILE"},
		{"empty data dir", func(c *config.Config) { c.DataDir = "" }, "TOLLGATE_DATA_DIR"},
		{"empty database url", func(c *config.Config) { c.Database.URL = "" }, "TOLLGATE_DATABASE_URL"},
		{"mysql database", func(c *config.Config) { c.Database.URL = "mysql://u:pw@db/tg" }, `unsupported scheme "mysql"`},
		{"negative open conns", func(c *config.Config) { c.Database.MaxOpenConns = -1 }, "TOLLGATE_DATABASE_MAX_OPEN_CONNS"},
		{"negative idle conns", func(c *config.Config) { c.Database.MaxIdleConns = -1 }, "TOLLGATE_DATABASE_MAX_IDLE_CONNS"},
		{"negative conn lifetime", func(c *config.Config) { c.Database.ConnMaxLifetime = -1 }, "TOLLGATE_DATABASE_CONN_MAX_LIFETIME"},
		{"zero query timeout", func(c *config.Config) { c.Database.QueryTimeout = 0 }, "TOLLGATE_DATABASE_QUERY_TIMEOUT"},
		{"http redis", func(c *config.Config) { c.Redis.URL = "http://redis:6379" }, "TOLLGATE_REDIS_URL"},
		{"host-port redis", func(c *config.Config) { c.Redis.URL = "redis:6379" }, "TOLLGATE_REDIS_URL"},
		{"unix redis without path", func(c *config.Config) { c.Redis.URL = "unix://" }, "socket path"},
		{"zero redis dial timeout", func(c *config.Config) { c.Redis.DialTimeout = 0 }, "TOLLGATE_REDIS_DIAL_TIMEOUT"},
		{"zero redis read timeout", func(c *config.Config) { c.Redis.ReadTimeout = 0 }, "TOLLGATE_REDIS_READ_TIMEOUT"},
		{"zero redis write timeout", func(c *config.Config) { c.Redis.WriteTimeout = 0 }, "TOLLGATE_REDIS_WRITE_TIMEOUT"},
		{"negative pool size", func(c *config.Config) { c.Redis.PoolSize = -1 }, "TOLLGATE_REDIS_POOL_SIZE"},
		{"negative conn idle time", func(c *config.Config) { c.Database.ConnMaxIdleTime = -1 }, "TOLLGATE_DATABASE_CONN_MAX_IDLE_TIME"},
		{"redis url and addrs", func(c *config.Config) { c.Redis.Addrs, c.Redis.Cluster = []string{"n1:6379"}, true },
			"redis.addrs (TOLLGATE_REDIS_ADDRS): set either redis.url"},
		{"redis url and master name", func(c *config.Config) { c.Redis.MasterName = "m" }, "redis.master_name (TOLLGATE_REDIS_MASTER_NAME): set either redis.url"},
		{"redis url and cluster", func(c *config.Config) { c.Redis.Cluster = true }, "redis.cluster (TOLLGATE_REDIS_CLUSTER): set either redis.url"},
		{"redis url and password", func(c *config.Config) { c.Redis.Password = "pw" }, "TOLLGATE_REDIS_PASSWORD: set either redis.url"},
		{"redis url and tls", func(c *config.Config) { c.Redis.TLS = true }, "redis.tls (TOLLGATE_REDIS_TLS): set either redis.url"},
		{"redis master name without addrs", func(c *config.Config) { c.Redis.URL, c.Redis.MasterName = "", "m" },
			"redis.master_name (TOLLGATE_REDIS_MASTER_NAME): needs redis.addrs"},
		{"redis cluster without addrs", func(c *config.Config) { c.Redis.URL, c.Redis.Cluster = "", true }, "redis.cluster (TOLLGATE_REDIS_CLUSTER): needs redis.addrs"},
		{"redis sentinel password without addrs", func(c *config.Config) { c.Redis.URL, c.Redis.SentinelPassword = "", "spw" },
			"TOLLGATE_REDIS_SENTINEL_PASSWORD: needs redis.addrs"},
		{"redis addrs alone", func(c *config.Config) { c.Redis.URL, c.Redis.Addrs = "", []string{"n1:6379"} },
			"redis.addrs (TOLLGATE_REDIS_ADDRS): set redis.master_name"},
		{"redis sentinel and cluster", func(c *config.Config) {
			c.Redis.URL, c.Redis.Addrs, c.Redis.MasterName, c.Redis.Cluster = "", []string{"n1:6379"}, "m", true
		}, "redis.cluster (TOLLGATE_REDIS_CLUSTER): set either redis.master_name (Sentinel) or redis.cluster (Cluster), not both"},
		{"redis sentinel password on a cluster", func(c *config.Config) {
			c.Redis.URL, c.Redis.Addrs, c.Redis.Cluster, c.Redis.SentinelPassword = "", []string{"n1:6379"}, true, "spw"
		}, "TOLLGATE_REDIS_SENTINEL_PASSWORD: is for Sentinel"},
		{"redis addr without port", func(c *config.Config) {
			c.Redis.URL, c.Redis.Addrs, c.Redis.Cluster = "", []string{"n1:6379", "n2"}, true
		}, `redis.addrs (TOLLGATE_REDIS_ADDRS): want host:port, got "n2"`},
		{"redis addr without host", func(c *config.Config) { c.Redis.URL, c.Redis.Addrs, c.Redis.Cluster = "", []string{":6379"}, true },
			`want host:port, got ":6379"`},
		{"redis addr port 0", func(c *config.Config) { c.Redis.URL, c.Redis.Addrs, c.Redis.Cluster = "", []string{"n1:0"}, true },
			`port of "n1:0" must be a number from 1 to 65535`},
		{"redis addr twice", func(c *config.Config) {
			c.Redis.URL, c.Redis.Addrs, c.Redis.Cluster = "", []string{"n1:6379", "n1:6379"}, true
		}, `"n1:6379" is listed twice`},
		{"redis master name with space", func(c *config.Config) {
			c.Redis.URL, c.Redis.Addrs, c.Redis.MasterName = "", []string{"s1:26379"}, "my master"
		}, "redis.master_name (TOLLGATE_REDIS_MASTER_NAME): must not contain white space"},
		{"redis key prefix with a brace", func(c *config.Config) { c.Redis.KeyPrefix = "{tg}:" }, "redis.key_prefix (TOLLGATE_REDIS_KEY_PREFIX): must not contain '{' or '}'"},
		{"zero cc lifetime", func(c *config.Config) { c.Tokens.ClientCredentialsLifetime = 0 }, "TOLLGATE_CLIENT_CREDENTIALS_TOKEN_LIFETIME"},
		{"zero dsp lifetime", func(c *config.Config) { c.Tokens.EskimiDSPLifetime = 0 }, "TOLLGATE_ESKIMI_DSP_TOKEN_LIFETIME"},
		{"no grant enabled", func(c *config.Config) { c.Grants.Enabled = []string{} }, "grants.enabled (TOLLGATE_GRANTS_ENABLED): must name at least one grant"},
		{"unknown grant enabled", func(c *config.Config) { c.Grants.Enabled = []string{"client_credentials", "password"} },
			`grants.enabled (TOLLGATE_GRANTS_ENABLED): "password" is not a grant Tollgate has`},
		{"grant enabled under its old name", func(c *config.Config) {
			c.Grants.EskimiDSPName = "acme_dsp"
			c.Grants.Enabled = []string{"eskimi_dsp"}
			c.Credentials.DefaultGrantTypes = []string{"acme_dsp"}
		}, `grants.enabled (TOLLGATE_GRANTS_ENABLED): "eskimi_dsp" is not a grant Tollgate has`},
		{"grant enabled twice", func(c *config.Config) { c.Grants.Enabled = []string{"client_credentials", "client_credentials"} },
			`grants.enabled (TOLLGATE_GRANTS_ENABLED): names "client_credentials" twice`},
		{"default grant type disabled", func(c *config.Config) {
			c.Grants.Enabled = []string{"client_credentials", "api_key_session"}
			c.Credentials.DefaultGrantTypes = []string{"client_credentials", "eskimi_dsp"}
		}, `credentials.default_grant_types (TOLLGATE_DEFAULT_GRANT_TYPES): "eskimi_dsp" is not a grant type Tollgate serves`},
		{"zero client token lifetime", func(c *config.Config) { c.Tokens.ClientTokenLifetime = 0 }, "tokens.client_token_lifetime (TOLLGATE_CLIENT_TOKEN_LIFETIME): must be positive"},
		{"webhook delivery retention under two days", func(c *config.Config) { c.Webhooks.DeliveryRetention = 47 * time.Hour },
			"webhooks.delivery_retention (TOLLGATE_WEBHOOKS_DELIVERY_RETENTION): must be at least 48h"},
		{"webhook delivery retention shorter than expiring_before", func(c *config.Config) {
			c.Webhooks.DeliveryRetention, c.Webhooks.ExpiringBefore = 72*time.Hour, 73*time.Hour
		}, "webhooks.delivery_retention (TOLLGATE_WEBHOOKS_DELIVERY_RETENTION): must not be shorter than webhooks.expiring_before (73h0m0s)"},
		{"zero console idle timeout", func(c *config.Config) { c.Console.SessionIdleTimeout = 0 }, "console.session_idle_timeout (TOLLGATE_CONSOLE_SESSION_IDLE_TIMEOUT): must be positive"},
		{"console idle timeout over the lifetime", func(c *config.Config) { c.Console.SessionIdleTimeout = c.Console.SessionLifetime + time.Second }, "must not exceed console.session_lifetime"},
		{"zero key session lifetime", func(c *config.Config) { c.Tokens.KeySessionLifetime = 0 }, "tokens.key_session_lifetime (TOLLGATE_KEY_SESSION_LIFETIME): must be positive"},
		{"negative key session max lifetime", func(c *config.Config) { c.Tokens.KeySessionMaxLifetime = -time.Hour }, "tokens.key_session_max_lifetime (TOLLGATE_KEY_SESSION_MAX_LIFETIME): must be positive"},
		{"key session lifetime over its cap", func(c *config.Config) {
			c.Tokens.KeySessionLifetime = c.Tokens.KeySessionMaxLifetime + time.Second
		}, "tokens.key_session_lifetime (TOLLGATE_KEY_SESSION_LIFETIME): must not exceed tokens.key_session_max_lifetime"},
		{"key session cap lowered under the default", func(c *config.Config) { c.Tokens.KeySessionMaxLifetime = time.Hour }, "must not exceed tokens.key_session_max_lifetime"},
		{"zero rotation overlap", func(c *config.Config) { c.Credentials.RotationOverlap = 0 }, "credentials.rotation_overlap (TOLLGATE_ROTATION_OVERLAP): must be positive"},
		{"zero max rotation overlap", func(c *config.Config) { c.Credentials.MaxRotationOverlap = 0 }, "credentials.max_rotation_overlap (TOLLGATE_MAX_ROTATION_OVERLAP): must be positive"},
		{"rotation overlap over its cap", func(c *config.Config) {
			c.Credentials.RotationOverlap = c.Credentials.MaxRotationOverlap + time.Second
		}, "credentials.rotation_overlap (TOLLGATE_ROTATION_OVERLAP): must not exceed credentials.max_rotation_overlap"},
		{"negative disable unused after", func(c *config.Config) { c.Credentials.DisableUnusedAfter = -time.Hour }, "credentials.disable_unused_after (TOLLGATE_DISABLE_UNUSED_AFTER): must not be negative"},
		{"zero stale check interval", func(c *config.Config) { c.Credentials.StaleCheckInterval = 0 }, "credentials.stale_check_interval (TOLLGATE_STALE_CHECK_INTERVAL): must be positive"},
		{"zero last used flush interval", func(c *config.Config) { c.Credentials.LastUsedFlushInterval = 0 }, "credentials.last_used_flush_interval (TOLLGATE_LAST_USED_FLUSH_INTERVAL): must be positive"},
		{"management scope empty", func(c *config.Config) { c.Credentials.ManagementScope = "" }, "credentials.management_scope (TOLLGATE_MANAGEMENT_SCOPE): must be one scope token"},
		{"management scope of two", func(c *config.Config) { c.Credentials.ManagementScope = "tollgate:manage admin" }, "TOLLGATE_MANAGEMENT_SCOPE"},
		{"management scope with quote", func(c *config.Config) { c.Credentials.ManagementScope = `a"b` }, "TOLLGATE_MANAGEMENT_SCOPE"},
		{"management scope with backslash", func(c *config.Config) { c.Credentials.ManagementScope = `a\b` }, "TOLLGATE_MANAGEMENT_SCOPE"},
		{"management scope non-ASCII", func(c *config.Config) { c.Credentials.ManagementScope = "verwalten:ä" }, "TOLLGATE_MANAGEMENT_SCOPE"},
		{"management scope too long", func(c *config.Config) { c.Credentials.ManagementScope = strings.Repeat("m", 129) }, "TOLLGATE_MANAGEMENT_SCOPE"},
		{"no default grant types", func(c *config.Config) { c.Credentials.DefaultGrantTypes = []string{} }, "credentials.default_grant_types (TOLLGATE_DEFAULT_GRANT_TYPES): must name at least one grant type (client_credentials, eskimi_dsp)"},
		{"default grant type not served", func(c *config.Config) { c.Credentials.DefaultGrantTypes = []string{"password"} }, `credentials.default_grant_types (TOLLGATE_DEFAULT_GRANT_TYPES): "password" is not a grant type Tollgate serves`},
		{"default grant type of a renamed grant", func(c *config.Config) {
			c.Grants.EskimiDSPName = "dsp_login"
			c.Credentials.DefaultGrantTypes = []string{"eskimi_dsp"}
		}, `"eskimi_dsp" is not a grant type Tollgate serves (client_credentials, dsp_login`},
		{"default grant type twice", func(c *config.Config) {
			c.Credentials.DefaultGrantTypes = []string{"client_credentials", "client_credentials"}
		}, `credentials.default_grant_types (TOLLGATE_DEFAULT_GRANT_TYPES): names "client_credentials" twice`},
		{"no bundles", func(c *config.Config) { c.Credentials.AccessRights = map[string]string{} }, "credentials.access_rights (TOLLGATE_ACCESS_RIGHTS): must name at least one bundle"},
		{"nil bundles (Default without Load)", func(c *config.Config) { c.Credentials.AccessRights = nil }, "must name at least one bundle"},
		{"bundle name with space", func(c *config.Config) { c.Credentials.AccessRights["read only"] = "events" }, `bundle name "read only"`},
		{"bundle name empty", func(c *config.Config) { c.Credentials.AccessRights[""] = "events" }, `bundle name ""`},
		{"bundle without scopes", func(c *config.Config) { c.Credentials.AccessRights["none"] = " \t " }, `bundle "none" has no scopes`},
		{"bundle with the management scope", func(c *config.Config) { c.Credentials.AccessRights["ops"] = "events tollgate:manage" }, `bundle "ops" holds the management scope`},
		{"bundle with a bad scope", func(c *config.Config) { c.Credentials.AccessRights["full"] = `events "contacts"` }, `bundle "full": "\"contacts\"" is not a scope token`},
		{"default bundle missing", func(c *config.Config) { c.Credentials.DefaultAccessRights = "admin" }, `credentials.default_access_rights (TOLLGATE_DEFAULT_ACCESS_RIGHTS): must name a bundle of credentials.access_rights, got "admin"`},
		{"default bundle empty", func(c *config.Config) { c.Credentials.DefaultAccessRights = "" }, "TOLLGATE_DEFAULT_ACCESS_RIGHTS"},
		{"default bundle gone after replacing the defaults", func(c *config.Config) {
			c.Credentials.AccessRights = map[string]string{"reader": "events"}
		}, `credentials.default_access_rights (TOLLGATE_DEFAULT_ACCESS_RIGHTS): must name a bundle of credentials.access_rights, got "full"`},
		{"negative token rate", func(c *config.Config) { c.RateLimits.TokenRate = -1 }, "rate_limits.token_rate (TOLLGATE_TOKEN_RATE_LIMIT): must not be negative, got -1"},
		{"no default rate class", func(c *config.Config) { c.RateLimits.Classes = map[string]string{"reports": "1"} }, "rate_limits.classes (TOLLGATE_RATE_CLASSES): must define the default class"},
		{"no rate classes", func(c *config.Config) { c.RateLimits.Classes = map[string]string{} }, "must define the default class"},
		{"default rate class upper case", func(c *config.Config) { c.RateLimits.Classes = map[string]string{"Default": "3"} }, "must define the default class"},
		{"rate class name with space", func(c *config.Config) { c.RateLimits.Classes["bulk import"] = "1" }, `rate_limits.classes (TOLLGATE_RATE_CLASSES): class name "bulk import"`},
		{"rate class name with colon", func(c *config.Config) { c.RateLimits.Classes["a:b"] = "1" }, `class name "a:b"`},
		{"rate class name empty", func(c *config.Config) { c.RateLimits.Classes[""] = "1" }, `class name ""`},
		{"zero rate", func(c *config.Config) { c.RateLimits.Classes["default"] = "0" }, `rate_limits.classes (TOLLGATE_RATE_CLASSES): class "default": want <rate per second>[:<burst>] with positive integers, got "0"`},
		{"rate not a number", func(c *config.Config) { c.RateLimits.Classes["reports"] = "x" }, `class "reports": want <rate per second>[:<burst>] with positive integers, got "x"`},
		{"zero burst", func(c *config.Config) { c.RateLimits.Classes["default"] = "3:0" }, `class "default": want <rate per second>[:<burst>] with positive integers, got "3:0"`},
		{"empty burst", func(c *config.Config) { c.RateLimits.Classes["default"] = "3:" }, `class "default": want <rate per second>[:<burst>] with positive integers, got "3:"`},
		{"empty rate", func(c *config.Config) { c.RateLimits.Classes["reports"] = "" }, `class "reports": want <rate per second>[:<burst>]`},
		{"negative rate", func(c *config.Config) { c.RateLimits.Classes["reports"] = "-2" }, `class "reports"`},
		{"zero brute force threshold", func(c *config.Config) { c.BruteForce.Threshold = 0 }, "brute_force.threshold (TOLLGATE_BRUTEFORCE_THRESHOLD): must be at least 1, got 0"},
		{"negative brute force threshold", func(c *config.Config) { c.BruteForce.Threshold = -3 }, "brute_force.threshold (TOLLGATE_BRUTEFORCE_THRESHOLD): must be at least 1, got -3"},
		{"zero brute force source threshold", func(c *config.Config) { c.BruteForce.SourceThreshold = 0 }, "brute_force.source_threshold (TOLLGATE_BRUTEFORCE_SOURCE_THRESHOLD): must be at least 1, got 0"},
		{"zero brute force base delay", func(c *config.Config) { c.BruteForce.BaseDelay = 0 }, "brute_force.base_delay (TOLLGATE_BRUTEFORCE_BASE_DELAY): must be positive, got 0s"},
		{"negative brute force base delay", func(c *config.Config) { c.BruteForce.BaseDelay = -time.Second }, "brute_force.base_delay (TOLLGATE_BRUTEFORCE_BASE_DELAY): must be positive, got -1s"},
		{"zero brute force max delay", func(c *config.Config) { c.BruteForce.MaxDelay = 0 }, "brute_force.max_delay (TOLLGATE_BRUTEFORCE_MAX_DELAY): must be positive, got 0s"},
		{"zero brute force window", func(c *config.Config) { c.BruteForce.Window = 0 }, "brute_force.window (TOLLGATE_BRUTEFORCE_WINDOW): must be positive, got 0s"},
		{"negative brute force window", func(c *config.Config) { c.BruteForce.Window = -time.Minute }, "brute_force.window (TOLLGATE_BRUTEFORCE_WINDOW): must be positive"},
		{"brute force base delay over its cap", func(c *config.Config) {
			c.BruteForce.BaseDelay = c.BruteForce.MaxDelay + time.Nanosecond
		}, "brute_force.base_delay (TOLLGATE_BRUTEFORCE_BASE_DELAY): must not exceed brute_force.max_delay"},
		{"brute force cap lowered under the default base delay", func(c *config.Config) { c.BruteForce.MaxDelay = 500 * time.Millisecond }, "must not exceed brute_force.max_delay"},
		{"brute force explicitly on with zero values", func(c *config.Config) { c.BruteForce = config.BruteForce{Enabled: true} }, "TOLLGATE_BRUTEFORCE_THRESHOLD"},
		{"trusted proxy not a network", func(c *config.Config) { c.BruteForce.TrustedProxies = []string{"10.0.0.0/8", "proxy.internal"} }, `brute_force.trusted_proxies (TOLLGATE_TRUSTED_PROXIES): want a CIDR such as 10.0.0.0/8 or an IP address, got "proxy.internal"`},
		{"trusted proxy prefix too long", func(c *config.Config) { c.BruteForce.TrustedProxies = []string{"10.0.0.0/33"} }, `got "10.0.0.0/33"`},
		{"trusted proxy empty", func(c *config.Config) { c.BruteForce.TrustedProxies = []string{""} }, "TOLLGATE_TRUSTED_PROXIES"},
		{"trusted proxy with a zone", func(c *config.Config) { c.BruteForce.TrustedProxies = []string{"fe80::1%eth0"} }, "TOLLGATE_TRUSTED_PROXIES"},
		{"standard grant name", func(c *config.Config) { c.Grants.EskimiDSPName = "client_credentials" }, "standard grant type"},
		{"password grant name", func(c *config.Config) { c.Grants.EskimiDSPName = "password" }, "standard grant type"},
		{"grant name with space", func(c *config.Config) { c.Grants.EskimiDSPName = "eskimi dsp" }, "TOLLGATE_ESKIMI_DSP_GRANT_NAME"},
		{"grant name empty", func(c *config.Config) { c.Grants.EskimiDSPName = "" }, "TOLLGATE_ESKIMI_DSP_GRANT_NAME"},
		{"urn grant name", func(c *config.Config) { c.Grants.EskimiDSPName = "urn:x:dsp" }, "TOLLGATE_ESKIMI_DSP_GRANT_NAME"},
		{"log level", func(c *config.Config) { c.Log.Level = "trace" }, "TOLLGATE_LOG_LEVEL"},
		{"log level case", func(c *config.Config) { c.Log.Level = "INFO" }, "TOLLGATE_LOG_LEVEL"},
		{"log format", func(c *config.Config) { c.Log.Format = "logfmt" }, "TOLLGATE_LOG_FORMAT"},
		{"log flush interval", func(c *config.Config) { c.Log.FlushInterval = time.Minute }, "TOLLGATE_LOG_FLUSH_INTERVAL"},
		{"pepper id upper case", func(c *config.Config) { c.Keys.PepperID = "A" }, "TOLLGATE_PEPPER_ID"},
		{"pepper id too long", func(c *config.Config) { c.Keys.PepperID = "123456789" }, "TOLLGATE_PEPPER_ID"},
		{"pepper id empty", func(c *config.Config) { c.Keys.PepperID = "" }, "TOLLGATE_PEPPER_ID"},
		{"retired pepper id is current", func(c *config.Config) { c.Keys.RetiredPepperFiles = map[string]string{"1": "/p"} }, "new id"},
		{"retired pepper id invalid", func(c *config.Config) { c.Keys.RetiredPepperFiles = map[string]string{"Old": "/p"} }, "TOLLGATE_RETIRED_PEPPER_FILES"},
		{"retired pepper empty path", func(c *config.Config) { c.Keys.RetiredPepperFiles = map[string]string{"0": " "} }, "empty path"},
		{"rotated token secret empty path", func(c *config.Config) { c.Keys.RotatedTokenSecretFiles = []string{""} }, "empty path"},
		{"token secret twice", func(c *config.Config) { c.Keys.TokenSecretFile = "/t" }, "not both"},
		{"pepper twice", func(c *config.Config) { c.Keys.PepperFile = "/p" }, "not both"},
		{"short token secret", func(c *config.Config) { c.Keys.TokenSecret = "short-token-secret" }, "TOLLGATE_TOKEN_SECRET: too short"},
		{"short pepper", func(c *config.Config) { c.Keys.Pepper = "short-pepper" }, "TOLLGATE_PEPPER: too short"},
		{"production without token secret", func(c *config.Config) { c.Keys.TokenSecret = "" }, "token secret: required"},
		{"production without pepper", func(c *config.Config) { c.Keys.Pepper = "" }, "pepper: required"},
		{"production without key-encryption key", func(c *config.Config) { c.Keys.KeyEncryptionKey = "" }, "key-encryption key: required"},
		{"key-encryption key twice", func(c *config.Config) { c.Keys.KeyEncryptionKeyFile = "/k" }, "not both"},
		{"key-encryption key of 31 bytes", func(c *config.Config) { c.Keys.KeyEncryptionKey = config.Secret(strings.Repeat("ab", 31)) }, "TOLLGATE_KEY_ENCRYPTION_KEY: want 32 bytes"},
		{"key-encryption key not encoded", func(c *config.Config) { c.Keys.KeyEncryptionKey = config.Secret(strings.Repeat("z!", 32)) }, "TOLLGATE_KEY_ENCRYPTION_KEY: want 32 bytes"},
		{"signing algorithm HS256", func(c *config.Config) { c.SigningKeys.Algorithm = "HS256" }, "signing_keys.algorithm"},
		{"signing algorithm none", func(c *config.Config) { c.SigningKeys.Algorithm = "none" }, "signing_keys.algorithm"},
		{"dpop algorithm HS256", func(c *config.Config) { c.DPoP.Algorithms = []string{"ES256", "HS256"} }, "dpop.algorithms"},
		{"dpop algorithm none", func(c *config.Config) { c.DPoP.Algorithms = []string{"none"} }, "dpop.algorithms"},
		{"no dpop algorithm", func(c *config.Config) { c.DPoP.Algorithms = nil }, "dpop.algorithms"},
		{"dpop proof max age too long", func(c *config.Config) { c.DPoP.ProofMaxAge = 11 * time.Minute }, "dpop.proof_max_age"},
		{"dpop proof max skew zero", func(c *config.Config) { c.DPoP.ProofMaxSkew = 0 }, "dpop.proof_max_skew"},
		{"signing refresh too long", func(c *config.Config) { c.SigningKeys.RefreshInterval = 11 * time.Minute }, "signing_keys.refresh_interval"},
		{"signing publish ahead under two refreshes", func(c *config.Config) { c.SigningKeys.PublishAhead = 59 * time.Second }, "signing_keys.publish_ahead"},
		{"signing rotation under two publish-aheads", func(c *config.Config) { c.SigningKeys.RotationPeriod = 119 * time.Minute }, "signing_keys.rotation_period"},
		{"redis only needs keys", func(c *config.Config) {
			c.Database.URL = "data/tollgate.db"
			c.Keys.TokenSecret = ""
		}, "token secret: required"},
		{"rotated without current", func(c *config.Config) {
			*c = loaded()
			c.Keys.RotatedTokenSecretFiles = []string{"/t0"}
		}, "current token secret"},
		{"retired without current", func(c *config.Config) {
			*c = loaded()
			c.Keys.RetiredPepperFiles = map[string]string{"0": "/p0"}
		}, "current pepper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := production()
			tt.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestValidateReportsEveryProblem breaks many settings at once and wants each
// problem reported, and nothing else. Two configurations are needed because
// an empty credentials.access_rights leaves no bundle to find fault with.
func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*config.Config)
		wants  []string // one substring per problem
	}{
		{"everything", func(c *config.Config) {
			c.HTTP.Addr = "nope"
			c.Issuer = "https://example.com/?q=1"
			c.HTTP.MaxBodyBytes = 1
			c.Database.URL = "mysql://db"
			c.Redis.URL = "memcache://m"
			c.Tokens.ClientCredentialsLifetime = 0
			c.Tokens.ClientTokenLifetime = 0
			// 0 > -1h: both positivity rules and the ordering rule fail.
			c.Tokens.KeySessionLifetime = 0
			c.Tokens.KeySessionMaxLifetime = -time.Hour
			c.Credentials.RotationOverlap = 0
			c.Credentials.MaxRotationOverlap = -time.Hour
			c.Credentials.DisableUnusedAfter = -time.Second
			c.Credentials.StaleCheckInterval = 0
			c.Credentials.LastUsedFlushInterval = 0
			c.Credentials.ManagementScope = "two scopes"
			// Replaces the defaults, so default_access_rights "full" is gone.
			c.Credentials.AccessRights = map[string]string{
				"bad name!": "events",
				"empty":     "  ",
				"quoted":    `events "x"`,
			}
			c.Log.Level = "loud"
			c.Log.Format = "xml"
			c.Keys.TokenSecret = ""
			c.Keys.Pepper = ""
			c.Grants.EskimiDSPName = "refresh_token"
			c.Credentials.DefaultGrantTypes = []string{"password"}
			c.RateLimits.TokenRate = -5
			// Replaces the defaults, so the default class is gone.
			c.RateLimits.Classes = map[string]string{
				"bad name!": "3",
				"burst":     "3:",
				"zero":      "0",
			}
			// 0 > -1s: both delay positivity rules and the ordering rule fail.
			c.BruteForce = config.BruteForce{Enabled: true, Threshold: 0, SourceThreshold: -1, BaseDelay: 0, MaxDelay: -time.Second, Window: 0,
				TrustedProxies: []string{"10.0.0.0/8", "10.0.0.300"}}
		}, []string{
			"http.addr (TOLLGATE_HTTP_ADDR)",
			"issuer (TOLLGATE_ISSUER)",
			"http.max_body_bytes (TOLLGATE_HTTP_MAX_BODY_BYTES)",
			"database.url (TOLLGATE_DATABASE_URL)",
			"redis.url (TOLLGATE_REDIS_URL)",
			"tokens.client_credentials_lifetime (TOLLGATE_CLIENT_CREDENTIALS_TOKEN_LIFETIME)",
			"tokens.client_token_lifetime (TOLLGATE_CLIENT_TOKEN_LIFETIME): must be positive",
			"tokens.key_session_lifetime (TOLLGATE_KEY_SESSION_LIFETIME): must be positive",
			"tokens.key_session_max_lifetime (TOLLGATE_KEY_SESSION_MAX_LIFETIME): must be positive",
			"tokens.key_session_lifetime (TOLLGATE_KEY_SESSION_LIFETIME): must not exceed tokens.key_session_max_lifetime",
			"credentials.rotation_overlap (TOLLGATE_ROTATION_OVERLAP): must be positive",
			"credentials.max_rotation_overlap (TOLLGATE_MAX_ROTATION_OVERLAP): must be positive",
			"credentials.rotation_overlap (TOLLGATE_ROTATION_OVERLAP): must not exceed credentials.max_rotation_overlap",
			"credentials.disable_unused_after (TOLLGATE_DISABLE_UNUSED_AFTER): must not be negative",
			"credentials.stale_check_interval (TOLLGATE_STALE_CHECK_INTERVAL): must be positive",
			"credentials.last_used_flush_interval (TOLLGATE_LAST_USED_FLUSH_INTERVAL): must be positive",
			`credentials.management_scope (TOLLGATE_MANAGEMENT_SCOPE): must be one scope token, got "two scopes"`,
			`credentials.access_rights (TOLLGATE_ACCESS_RIGHTS): bundle name "bad name!"`,
			`credentials.access_rights (TOLLGATE_ACCESS_RIGHTS): bundle "empty" has no scopes`,
			`credentials.access_rights (TOLLGATE_ACCESS_RIGHTS): bundle "quoted": "\"x\"" is not a scope token`,
			`credentials.default_access_rights (TOLLGATE_DEFAULT_ACCESS_RIGHTS): must name a bundle of credentials.access_rights, got "full"`,
			"log.level (TOLLGATE_LOG_LEVEL)",
			"log.format (TOLLGATE_LOG_FORMAT)",
			"token secret: required",
			"pepper: required",
			"grants.eskimi_dsp_name (TOLLGATE_ESKIMI_DSP_GRANT_NAME)",
			`credentials.default_grant_types (TOLLGATE_DEFAULT_GRANT_TYPES): "password" is not a grant type Tollgate serves`,
			"rate_limits.token_rate (TOLLGATE_TOKEN_RATE_LIMIT): must not be negative, got -5",
			"rate_limits.classes (TOLLGATE_RATE_CLASSES): must define the default class",
			`rate_limits.classes (TOLLGATE_RATE_CLASSES): class name "bad name!"`,
			`rate_limits.classes (TOLLGATE_RATE_CLASSES): class "burst": want <rate per second>[:<burst>] with positive integers, got "3:"`,
			`rate_limits.classes (TOLLGATE_RATE_CLASSES): class "zero": want <rate per second>[:<burst>] with positive integers, got "0"`,
			"brute_force.threshold (TOLLGATE_BRUTEFORCE_THRESHOLD): must be at least 1, got 0",
			"brute_force.source_threshold (TOLLGATE_BRUTEFORCE_SOURCE_THRESHOLD): must be at least 1, got -1",
			"brute_force.base_delay (TOLLGATE_BRUTEFORCE_BASE_DELAY): must be positive, got 0s",
			"brute_force.max_delay (TOLLGATE_BRUTEFORCE_MAX_DELAY): must be positive, got -1s",
			"brute_force.window (TOLLGATE_BRUTEFORCE_WINDOW): must be positive, got 0s",
			"brute_force.base_delay (TOLLGATE_BRUTEFORCE_BASE_DELAY): must not exceed brute_force.max_delay",
			`brute_force.trusted_proxies (TOLLGATE_TRUSTED_PROXIES): want a CIDR such as 10.0.0.0/8 or an IP address, got "10.0.0.300"`,
		}},
		// The same brute-force values with the protection off are not
		// problems: only the other mistake is reported.
		{"brute force off", func(c *config.Config) {
			c.BruteForce = config.BruteForce{Enabled: false, Threshold: 0, SourceThreshold: -1, BaseDelay: 0, MaxDelay: -time.Second, Window: 0}
			c.Log.Level = "loud"
		}, []string{
			"log.level (TOLLGATE_LOG_LEVEL)",
		}},
		{"no bundles", func(c *config.Config) {
			c.Credentials.AccessRights = map[string]string{}
			c.Credentials.DefaultAccessRights = "events"
		}, []string{
			"credentials.access_rights (TOLLGATE_ACCESS_RIGHTS): must name at least one bundle",
			`credentials.default_access_rights (TOLLGATE_DEFAULT_ACCESS_RIGHTS): must name a bundle of credentials.access_rights, got "events"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := production()
			tt.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want errors")
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q\nwant it to contain %q", err, want)
				}
			}
			if got, want := strings.Count(err.Error(), "\n")+1, len(tt.wants); got != want {
				t.Errorf("Validate() reported %d problems, want %d:\n%s", got, want, err)
			}
			// The order is stable: map keys are visited sorted.
			for range 5 {
				if again := c.Validate(); again.Error() != err.Error() {
					t.Fatalf("Validate() changed between calls:\n%s\nthen:\n%s", err, again)
				}
			}
		})
	}
}

func TestValidateNeverQuotesSecrets(t *testing.T) {
	t.Parallel()
	c := production()
	c.Database.URL = "mysql://admin:db-password-1@db/tg"
	c.Redis.URL = "http://:redis-password-2@redis"
	c.Issuer = "https://u:issuer-password-3@example.com/?x"
	c.Keys.TokenSecret = "token-secret-4"
	c.Keys.Pepper = "pepper-5"
	c.Redis.Password, c.Redis.SentinelPassword = "redis-password-6", "sentinel-password-7"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	for _, secret := range []string{"db-password-1", "redis-password-2", "issuer-password-3", "token-secret-4", "pepper-5",
		"redis-password-6", "sentinel-password-7"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Validate() = %q, reveals %q", err, secret)
		}
	}
}

// wantEnvNames is the table of docs/configuration.md; a setting added without
// updating it fails TestEnvNames.
var wantEnvNames = []string{
	"TOLLGATE_HTTP_ADDR",
	"TOLLGATE_HTTP_MAX_BODY_BYTES",
	"TOLLGATE_HTTP_READ_HEADER_TIMEOUT",
	"TOLLGATE_HTTP_READ_TIMEOUT",
	"TOLLGATE_HTTP_WRITE_TIMEOUT",
	"TOLLGATE_HTTP_IDLE_TIMEOUT",
	"TOLLGATE_HTTP_SHUTDOWN_TIMEOUT",
	"TOLLGATE_HTTP_SHUTDOWN_DELAY",
	"TOLLGATE_HTTP_MAX_HEADER_BYTES",
	"TOLLGATE_HTTP_TLS_CERT_FILE",
	"TOLLGATE_HTTP_TLS_KEY_FILE",
	"TOLLGATE_OPS_ADDR",
	"TOLLGATE_OPS_PPROF",
	"TOLLGATE_OPS_TLS_CERT_FILE",
	"TOLLGATE_OPS_TLS_KEY_FILE",
	"TOLLGATE_ISSUER",
	"TOLLGATE_DATA_DIR",
	"TOLLGATE_DATABASE_URL",
	"TOLLGATE_DATABASE_MAX_OPEN_CONNS",
	"TOLLGATE_DATABASE_MAX_IDLE_CONNS",
	"TOLLGATE_DATABASE_CONN_MAX_LIFETIME",
	"TOLLGATE_DATABASE_CONN_MAX_IDLE_TIME",
	"TOLLGATE_DATABASE_QUERY_TIMEOUT",
	"TOLLGATE_REDIS_URL",
	"TOLLGATE_REDIS_ADDRS",
	"TOLLGATE_REDIS_MASTER_NAME",
	"TOLLGATE_REDIS_CLUSTER",
	"TOLLGATE_REDIS_USERNAME",
	"TOLLGATE_REDIS_PASSWORD",
	"TOLLGATE_REDIS_SENTINEL_PASSWORD",
	"TOLLGATE_REDIS_TLS",
	"TOLLGATE_REDIS_KEY_PREFIX",
	"TOLLGATE_REDIS_DIAL_TIMEOUT",
	"TOLLGATE_REDIS_READ_TIMEOUT",
	"TOLLGATE_REDIS_WRITE_TIMEOUT",
	"TOLLGATE_REDIS_POOL_SIZE",
	"TOLLGATE_TOKEN_SECRET",
	"TOLLGATE_TOKEN_SECRET_FILE",
	"TOLLGATE_ROTATED_TOKEN_SECRET_FILES",
	"TOLLGATE_PEPPER_ID",
	"TOLLGATE_PEPPER",
	"TOLLGATE_PEPPER_FILE",
	"TOLLGATE_RETIRED_PEPPER_FILES",
	"TOLLGATE_KEY_ENCRYPTION_KEY",
	"TOLLGATE_KEY_ENCRYPTION_KEY_FILE",
	"TOLLGATE_SIGNING_ALGORITHM",
	"TOLLGATE_SIGNING_KEY_ROTATION_PERIOD",
	"TOLLGATE_SIGNING_KEY_PUBLISH_AHEAD",
	"TOLLGATE_SIGNING_KEY_REFRESH_INTERVAL",
	"TOLLGATE_CLIENT_CREDENTIALS_TOKEN_LIFETIME",
	"TOLLGATE_ESKIMI_DSP_TOKEN_LIFETIME",
	"TOLLGATE_GRANTS_ENABLED",
	"TOLLGATE_CLIENT_TOKEN_LIFETIME",
	"TOLLGATE_KEY_SESSION_LIFETIME",
	"TOLLGATE_KEY_SESSION_MAX_LIFETIME",
	"TOLLGATE_TOKENS_LEGACY_OPAQUE_FORMAT",
	"TOLLGATE_ESKIMI_DSP_GRANT_NAME",
	"TOLLGATE_MANAGEMENT_SCOPE",
	"TOLLGATE_ACCESS_RIGHTS",
	"TOLLGATE_DEFAULT_ACCESS_RIGHTS",
	"TOLLGATE_DEFAULT_GRANT_TYPES",
	"TOLLGATE_CONSOLE_ENABLED",
	"TOLLGATE_CONSOLE_SESSION_IDLE_TIMEOUT",
	"TOLLGATE_CONSOLE_SESSION_LIFETIME",
	"TOLLGATE_CONSOLE_SECURE_COOKIES",
	"TOLLGATE_ROTATION_OVERLAP",
	"TOLLGATE_MAX_ROTATION_OVERLAP",
	"TOLLGATE_DISABLE_UNUSED_AFTER",
	"TOLLGATE_DPOP_ALGORITHMS",
	"TOLLGATE_DPOP_PROOF_MAX_AGE",
	"TOLLGATE_DPOP_PROOF_MAX_SKEW",
	"TOLLGATE_STALE_CHECK_INTERVAL",
	"TOLLGATE_LAST_USED_FLUSH_INTERVAL",
	"TOLLGATE_JWKS_ALLOW_HTTP",
	"TOLLGATE_FEDERATION_ALLOW_HTTP_ISSUERS",
	"TOLLGATE_WEBHOOKS_ALLOW_HTTP",
	"TOLLGATE_WEBHOOKS_TIMEOUT",
	"TOLLGATE_WEBHOOKS_POLL_INTERVAL",
	"TOLLGATE_WEBHOOKS_EXPIRING_BEFORE",
	"TOLLGATE_WEBHOOKS_EXPIRY_CHECK_INTERVAL",
	"TOLLGATE_WEBHOOKS_DELIVERY_RETENTION",
	"TOLLGATE_RATE_CLASSES",
	"TOLLGATE_TOKEN_RATE_LIMIT",
	"TOLLGATE_RATE_LIMIT_FAIL_OPEN",
	"TOLLGATE_BRUTEFORCE_ENABLED",
	"TOLLGATE_BRUTEFORCE_THRESHOLD",
	"TOLLGATE_BRUTEFORCE_SOURCE_THRESHOLD",
	"TOLLGATE_BRUTEFORCE_BASE_DELAY",
	"TOLLGATE_BRUTEFORCE_MAX_DELAY",
	"TOLLGATE_BRUTEFORCE_WINDOW",
	"TOLLGATE_TRUSTED_PROXIES",
	"TOLLGATE_USAGE_DAY_RETENTION",
	"TOLLGATE_USAGE_FLUSH_INTERVAL",
	"TOLLGATE_USAGE_HOUR_RETENTION",
	"TOLLGATE_USAGE_MINUTE_RETENTION",
	"TOLLGATE_USAGE_ROLLUP_GRACE",
	"TOLLGATE_USAGE_ROLLUP_INTERVAL",
	"TOLLGATE_LOG_LEVEL",
	"TOLLGATE_LOG_FLUSH_INTERVAL",
	"TOLLGATE_LOG_FORMAT",
	"TOLLGATE_SECRET_SCANNING_GITHUB_KEYS_URL",
	"TOLLGATE_SECRET_SCANNING_ALLOW_HTTP",
}

func TestEnvNames(t *testing.T) {
	t.Parallel()
	got := config.EnvNames()

	seen := make(map[string]bool)
	for _, name := range got {
		if seen[name] {
			t.Errorf("EnvNames() lists %s twice", name)
		}
		seen[name] = true
		if !strings.HasPrefix(name, "TOLLGATE_") || strings.HasPrefix(name, "TOLLGATE_TEST_") {
			t.Errorf("EnvNames() lists %s, want a TOLLGATE_ name outside TOLLGATE_TEST_", name)
		}
	}
	if !reflect.DeepEqual(sorted(got), sorted(wantEnvNames)) {
		t.Errorf("EnvNames() = %v\nwant %v", sorted(got), sorted(wantEnvNames))
	}

	// Every leaf field carries an env tag, and EnvNames lists exactly those.
	var tags []string
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for f := range typ.Fields() {
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			tag, ok := f.Tag.Lookup("env")
			if !ok || tag == "" {
				t.Errorf("%s.%s has no env tag", typ.Name(), f.Name)
				continue
			}
			tags = append(tags, tag)
		}
	}
	walk(reflect.TypeFor[config.Config]())
	if !slices.Equal(got, tags) {
		t.Errorf("EnvNames() = %v\nwant the env tags in order %v", got, tags)
	}
}

// TestEnvNamesDocumented keeps docs/configuration.md in step with the code.
func TestEnvNamesDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range config.EnvNames() {
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("docs/configuration.md does not mention `%s`", name)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	const token, pepper = "token-secret-value-0123456789abcdef", "pepper-value-0123456789abcdef0123"
	c, err := config.Load("", envMap(map[string]string{"TOLLGATE_TOKEN_SECRET": token, "TOLLGATE_PEPPER": pepper}))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(c.Keys.TokenSecret); got != token {
		t.Fatalf("string(TokenSecret) = %q, want the value", got)
	}
	keys, err := c.LoadKeys()
	if err != nil {
		t.Fatal(err)
	}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c, "secret", c.Keys.TokenSecret, "keys", keys)
	asJSON, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	asYAML, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":          fmt.Sprintf("%v", c),
		"%+v":         fmt.Sprintf("%+v", c),
		"%#v":         fmt.Sprintf("%#v", c),
		"%s secret":   fmt.Sprintf("%s", c.Keys.TokenSecret),
		"%q secret":   fmt.Sprintf("%q", c.Keys.Pepper),
		"%x secret":   fmt.Sprintf("%x", c.Keys.Pepper),
		"%v keys":     fmt.Sprintf("%v", keys),
		"%+v keys":    fmt.Sprintf("%+v", keys),
		"%#v keys":    fmt.Sprintf("%#v", keys),
		"slog":        logged.String(),
		"json":        string(asJSON),
		"yaml":        string(asYAML),
		"%v *Config":  fmt.Sprintf("%v", &c),
		"%+v *Config": fmt.Sprintf("%+v", &c),
	}
	for name, out := range outputs {
		for _, secret := range []string{token, pepper, fmt.Sprintf("%x", token), fmt.Sprintf("%x", pepper)} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output reveals a secret: %s", name, out)
			}
		}
	}
	if got := fmt.Sprint(c.Keys.TokenSecret); got != "[redacted]" {
		t.Errorf("fmt.Sprint(set secret) = %q, want [redacted]", got)
	}
	if got := fmt.Sprint(config.Secret("")); got != "" {
		t.Errorf("fmt.Sprint(unset secret) = %q, want empty", got)
	}
}

// TestDocsExample loads the example file of docs/configuration.md.
func TestDocsExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("docs/configuration.md has no ```yaml example")
	}
	example, _, _ := strings.Cut(rest, "```")
	c, err := config.Load(writeFile(t, "example.yaml", example), envMap(nil))
	if err != nil {
		t.Fatalf("Load(example): %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("example Validate() = %v, want nil", err)
	}
	if c.Embedded() {
		t.Error("example Embedded() = true, want the production shape")
	}
}

func TestParseProxy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{" 192.0.2.10 ", "192.0.2.10/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:192.0.2.10", "192.0.2.10/32"},
	} {
		got, err := config.ParseProxy(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseProxy(%q) = %v, %v, want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "proxy", "10.0.0.0/33", "10.0.0.300", "fe80::1%eth0", "10.0.0.0/"} {
		if p, err := config.ParseProxy(bad); err == nil {
			t.Errorf("ParseProxy(%q) = %v, want an error", bad, p)
		}
	}
	b := config.BruteForce{TrustedProxies: []string{"10.0.0.0/8", "bad", "192.0.2.10"}}
	if got := fmt.Sprint(b.Proxies()); got != "[10.0.0.0/8 192.0.2.10/32]" {
		t.Errorf("Proxies() = %s, want the two good networks", got)
	}
}

// TestLoadEnabledGrants: every grant is served unless grants.enabled names
// some; a grant left out is dropped from the default grant types of new
// clients, and a renamed grant is enabled under its new name.
func TestLoadEnabledGrants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled []string
		wantDefault []string
	}{
		{"default", nil, []string{"client_credentials", "eskimi_dsp", "api_key_session", config.TokenExchangeGrant}, []string{"client_credentials", "eskimi_dsp"}},
		{"renamed", map[string]string{"TOLLGATE_ESKIMI_DSP_GRANT_NAME": "acme_dsp"},
			[]string{"client_credentials", "acme_dsp", "api_key_session", config.TokenExchangeGrant}, []string{"client_credentials", "acme_dsp"}},
		{"token exchange off", map[string]string{"TOLLGATE_GRANTS_ENABLED": "client_credentials,eskimi_dsp,api_key_session"},
			[]string{"client_credentials", "eskimi_dsp", "api_key_session"}, []string{"client_credentials", "eskimi_dsp"}},
		{"some", map[string]string{"TOLLGATE_GRANTS_ENABLED": "client_credentials,api_key_session"},
			[]string{"client_credentials", "api_key_session"}, []string{"client_credentials"}},
		{"explicit default grant types kept", map[string]string{"TOLLGATE_GRANTS_ENABLED": "eskimi_dsp", "TOLLGATE_DEFAULT_GRANT_TYPES": "eskimi_dsp"},
			[]string{"eskimi_dsp"}, []string{"eskimi_dsp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load("", envMap(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := c.Grants.EnabledGrants(); !reflect.DeepEqual(got, tt.wantEnabled) {
				t.Errorf("EnabledGrants() = %v, want %v", got, tt.wantEnabled)
			}
			if got := c.Credentials.DefaultGrantTypes; !reflect.DeepEqual(got, tt.wantDefault) {
				t.Errorf("DefaultGrantTypes = %v, want %v", got, tt.wantDefault)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}
