// Package config owns Tollgate's runtime configuration: one typed Config read
// from an optional YAML file and overridden by TOLLGATE_* environment
// variables, its validation, and the loading of key material (token HMAC
// secrets and the secret-hash pepper) from environment values or files.
//
// It is a leaf package imported only by cmd/. Other packages take their own
// small Options structs, which cmd fills from a Config.
//
// Every setting has a YAML key and an environment name; the environment name
// is the explicit `env` struct tag of the field, and EnvNames lists them all.
// Secret values are accepted only from the environment (TOLLGATE_TOKEN_SECRET,
// TOLLGATE_PEPPER) or from files named in the configuration, never from YAML
// or command-line flags.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole runtime configuration of a Tollgate process.
type Config struct {
	HTTP HTTP `yaml:"http"`
	Ops  Ops  `yaml:"ops"`

	// Issuer is the public base URL of the server. Empty means derived from
	// HTTP.Addr by Load.
	Issuer string `yaml:"issuer" env:"TOLLGATE_ISSUER"`
	// DataDir holds the embedded SQLite database and, for the embedded
	// default only, generated key material.
	DataDir string `yaml:"data_dir" env:"TOLLGATE_DATA_DIR"`

	Database    Database    `yaml:"database"`
	Redis       Redis       `yaml:"redis"`
	Keys        KeySources  `yaml:"keys"`
	SigningKeys SigningKeys `yaml:"signing_keys"`
	DPoP        DPoP        `yaml:"dpop"`
	Tokens      Tokens      `yaml:"tokens"`
	Grants      Grants      `yaml:"grants"`
	Credentials Credentials `yaml:"credentials"`
	Federation  Federation  `yaml:"federation"`
	// SecretScanning configures the secret-scanning partner endpoint.
	SecretScanning SecretScanning `yaml:"secret_scanning"`
	Webhooks       Webhooks       `yaml:"webhooks"`
	RateLimits     RateLimits     `yaml:"rate_limits"`
	BruteForce     BruteForce     `yaml:"brute_force"`
	Console        Console        `yaml:"console"`
	Usage          Usage          `yaml:"usage"`
	Log            Log            `yaml:"log"`
}

// Usage configures the usage counts: how often the token endpoint's and
// the key session's counts are flushed to the counters, and the roll-up of
// closed minutes into the database (minutes, hours, days) and how long
// each granularity is kept.
type Usage struct {
	// FlushInterval is how often the counts of token issuances and key
	// sessions are added to the counters, in one round trip; a crash loses
	// at most this much of those counts.
	FlushInterval time.Duration `yaml:"flush_interval" env:"TOLLGATE_USAGE_FLUSH_INTERVAL"`
	// RollupInterval is how often each instance runs the roll-up.
	RollupInterval time.Duration `yaml:"rollup_interval" env:"TOLLGATE_USAGE_ROLLUP_INTERVAL"`
	// RollupGrace is how long after its end a minute is closed and copied.
	RollupGrace time.Duration `yaml:"rollup_grace" env:"TOLLGATE_USAGE_ROLLUP_GRACE"`
	// Retention of the rolled-up rows per granularity.
	MinuteRetention time.Duration `yaml:"minute_retention" env:"TOLLGATE_USAGE_MINUTE_RETENTION"`
	HourRetention   time.Duration `yaml:"hour_retention" env:"TOLLGATE_USAGE_HOUR_RETENTION"`
	DayRetention    time.Duration `yaml:"day_retention" env:"TOLLGATE_USAGE_DAY_RETENTION"`
}

// HTTP configures the public listener (token, introspection, admin API).
type HTTP struct {
	Addr              string        `yaml:"addr" env:"TOLLGATE_HTTP_ADDR"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes" env:"TOLLGATE_HTTP_MAX_BODY_BYTES"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" env:"TOLLGATE_HTTP_READ_HEADER_TIMEOUT"`
	ReadTimeout       time.Duration `yaml:"read_timeout" env:"TOLLGATE_HTTP_READ_TIMEOUT"`
	WriteTimeout      time.Duration `yaml:"write_timeout" env:"TOLLGATE_HTTP_WRITE_TIMEOUT"`
	IdleTimeout       time.Duration `yaml:"idle_timeout" env:"TOLLGATE_HTTP_IDLE_TIMEOUT"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout" env:"TOLLGATE_HTTP_SHUTDOWN_TIMEOUT"`
	// ShutdownDelay is how long, on SIGTERM, the server goes on serving
	// while /readyz answers 503, so that load balancers stop sending it
	// requests before its listeners close; 0 closes them at once.
	ShutdownDelay time.Duration `yaml:"shutdown_delay" env:"TOLLGATE_HTTP_SHUTDOWN_DELAY"`
	// MaxHeaderBytes caps the request line and headers; a larger request
	// is answered 431. It applies to the ops listener too.
	MaxHeaderBytes int `yaml:"max_header_bytes" env:"TOLLGATE_HTTP_MAX_HEADER_BYTES"`
	// TLSCertFile and TLSKeyFile (PEM) make the listener serve HTTPS only,
	// TLS 1.2 and newer. Both or neither. SIGHUP reloads them.
	TLSCertFile string `yaml:"tls_cert_file" env:"TOLLGATE_HTTP_TLS_CERT_FILE"`
	TLSKeyFile  string `yaml:"tls_key_file" env:"TOLLGATE_HTTP_TLS_KEY_FILE"`
}

// TLS reports whether the public listener serves HTTPS.
func (h HTTP) TLS() bool { return h.TLSCertFile != "" }

// Ops configures the operations listener (metrics and health checks), kept
// apart from the public listener so it need not be exposed.
type Ops struct {
	Addr string `yaml:"addr" env:"TOLLGATE_OPS_ADDR"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the ops listener.
	Pprof bool `yaml:"pprof" env:"TOLLGATE_OPS_PPROF"`
	// TLSCertFile and TLSKeyFile (PEM) make the ops listener serve HTTPS
	// only, as http.tls_cert_file does for the public one.
	TLSCertFile string `yaml:"tls_cert_file" env:"TOLLGATE_OPS_TLS_CERT_FILE"`
	TLSKeyFile  string `yaml:"tls_key_file" env:"TOLLGATE_OPS_TLS_KEY_FILE"`
}

// TLS reports whether the ops listener serves HTTPS.
func (o Ops) TLS() bool { return o.TLSCertFile != "" }

// Database configures the relational store for accounts, users and clients.
type Database struct {
	// URL is a postgres:// or postgresql:// DSN, or a SQLite file path.
	// Empty means <data_dir>/tollgate.db, derived by Load.
	URL string `yaml:"url" env:"TOLLGATE_DATABASE_URL"`
	// PostgreSQL connection pool of each instance. MaxOpenConns 0 means
	// 4 per GOMAXPROCS, at least 8; MaxIdleConns 0 means half of the open
	// limit. ConnMaxLifetime and ConnMaxIdleTime 0 mean no limit.
	MaxOpenConns    int           `yaml:"max_open_conns" env:"TOLLGATE_DATABASE_MAX_OPEN_CONNS"`
	MaxIdleConns    int           `yaml:"max_idle_conns" env:"TOLLGATE_DATABASE_MAX_IDLE_CONNS"`
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime" env:"TOLLGATE_DATABASE_CONN_MAX_LIFETIME"`
	ConnMaxIdleTime time.Duration `yaml:"conn_max_idle_time" env:"TOLLGATE_DATABASE_CONN_MAX_IDLE_TIME"`
	QueryTimeout    time.Duration `yaml:"query_timeout" env:"TOLLGATE_DATABASE_QUERY_TIMEOUT"`
}

// IsPostgres reports whether URL selects PostgreSQL; otherwise URL is a
// SQLite file path.
func (d Database) IsPostgres() bool {
	scheme, ok := splitScheme(d.URL)
	return ok && (scheme == "postgres" || scheme == "postgresql")
}

// Redis configures the shared token store and rate counters. An empty URL
// selects the in-process store and limiter.
type Redis struct {
	// URL names a single server, with its credentials, database and TLS.
	URL string `yaml:"url" env:"TOLLGATE_REDIS_URL"`
	// Addrs (host:port) name several servers instead of URL: the Sentinels
	// of MasterName, or some nodes of a Redis Cluster when Cluster is set.
	Addrs      []string `yaml:"addrs" env:"TOLLGATE_REDIS_ADDRS"`
	MasterName string   `yaml:"master_name" env:"TOLLGATE_REDIS_MASTER_NAME"`
	Cluster    bool     `yaml:"cluster" env:"TOLLGATE_REDIS_CLUSTER"`
	// Username, Password and TLS are for Addrs; a URL carries its own.
	// SentinelPassword authenticates to the Sentinels.
	Username         string `yaml:"username" env:"TOLLGATE_REDIS_USERNAME"`
	Password         Secret `yaml:"-" env:"TOLLGATE_REDIS_PASSWORD"`
	SentinelPassword Secret `yaml:"-" env:"TOLLGATE_REDIS_SENTINEL_PASSWORD"`
	TLS              bool   `yaml:"tls" env:"TOLLGATE_REDIS_TLS"`

	KeyPrefix    string        `yaml:"key_prefix" env:"TOLLGATE_REDIS_KEY_PREFIX"`
	DialTimeout  time.Duration `yaml:"dial_timeout" env:"TOLLGATE_REDIS_DIAL_TIMEOUT"`
	ReadTimeout  time.Duration `yaml:"read_timeout" env:"TOLLGATE_REDIS_READ_TIMEOUT"`
	WriteTimeout time.Duration `yaml:"write_timeout" env:"TOLLGATE_REDIS_WRITE_TIMEOUT"`
	// PoolSize 0 keeps the go-redis default.
	PoolSize int `yaml:"pool_size" env:"TOLLGATE_REDIS_POOL_SIZE"`
}

// Enabled reports whether Redis is configured: a URL, or Sentinel or
// Cluster addresses.
func (r Redis) Enabled() bool { return r.URL != "" || len(r.Addrs) > 0 }

// KeySources says where key material comes from. YAML holds only file paths;
// the secret values themselves are accepted only from the environment.
// LoadKeys reads them.
type KeySources struct {
	// TokenSecret is the current token HMAC secret given as a value.
	TokenSecret     Secret `yaml:"-" env:"TOLLGATE_TOKEN_SECRET"`
	TokenSecretFile string `yaml:"token_secret_file" env:"TOLLGATE_TOKEN_SECRET_FILE"`
	// RotatedTokenSecretFiles hold previous token secrets, still accepted
	// for verification while tokens minted under them live.
	RotatedTokenSecretFiles []string `yaml:"rotated_token_secret_files" env:"TOLLGATE_ROTATED_TOKEN_SECRET_FILES"`

	// PepperID is written into every secret hash, so that hashes made under
	// a retired pepper keep verifying after the pepper rotates.
	PepperID   string `yaml:"pepper_id" env:"TOLLGATE_PEPPER_ID"`
	Pepper     Secret `yaml:"-" env:"TOLLGATE_PEPPER"`
	PepperFile string `yaml:"pepper_file" env:"TOLLGATE_PEPPER_FILE"`
	// RetiredPepperFiles maps a retired pepper id to the file holding it.
	RetiredPepperFiles map[string]string `yaml:"retired_pepper_files" env:"TOLLGATE_RETIRED_PEPPER_FILES"`

	// KeyEncryptionKey seals the signing keys stored in the database: 32
	// bytes, given as 64 hex digits or in base64.
	KeyEncryptionKey     Secret `yaml:"-" env:"TOLLGATE_KEY_ENCRYPTION_KEY"`
	KeyEncryptionKeyFile string `yaml:"key_encryption_key_file" env:"TOLLGATE_KEY_ENCRYPTION_KEY_FILE"`
}

// SigningKeys configures the keys that sign JWT access tokens: their
// algorithm and their rotation. The keys themselves live in the database,
// sealed under the key-encryption key, shared by every instance.
type SigningKeys struct {
	// Algorithm of new keys: ES256, RS256 or EdDSA.
	Algorithm string `yaml:"algorithm" env:"TOLLGATE_SIGNING_ALGORITHM"`
	// RotationPeriod is how long a key signs before the next one takes
	// over; 0 rotates only on demand (tollgate keys rotate-signing).
	RotationPeriod time.Duration `yaml:"rotation_period" env:"TOLLGATE_SIGNING_KEY_ROTATION_PERIOD"`
	// PublishAhead is how long a new key is in the JWKS before it signs,
	// so that verifiers caching the JWKS know it by then.
	PublishAhead time.Duration `yaml:"publish_ahead" env:"TOLLGATE_SIGNING_KEY_PUBLISH_AHEAD"`
	// RefreshInterval is how often every instance reloads the keys: how
	// soon it follows a rotation made elsewhere.
	RefreshInterval time.Duration `yaml:"refresh_interval" env:"TOLLGATE_SIGNING_KEY_REFRESH_INTERVAL"`
}

// DPoP configures the proofs that bind tokens to a client's key (RFC
// 9449).
type DPoP struct {
	// Algorithms are the proof algorithms accepted (asymmetric only),
	// named in the metadata's dpop_signing_alg_values_supported.
	Algorithms []string `yaml:"algorithms" env:"TOLLGATE_DPOP_ALGORITHMS"`
	// ProofMaxAge is how old a proof may be (its iat), and so how long its
	// jti is remembered.
	ProofMaxAge time.Duration `yaml:"proof_max_age" env:"TOLLGATE_DPOP_PROOF_MAX_AGE"`
	// ProofMaxSkew is how far in the future a proof's iat may be: a
	// client's clock ahead of the server's.
	ProofMaxSkew time.Duration `yaml:"proof_max_skew" env:"TOLLGATE_DPOP_PROOF_MAX_SKEW"`
}

// DPoPAlgorithms are the algorithms dpop.algorithms may name.
var DPoPAlgorithms = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}

// Tokens configures access-token lifetimes per grant.
type Tokens struct {
	ClientCredentialsLifetime time.Duration `yaml:"client_credentials_lifetime" env:"TOLLGATE_CLIENT_CREDENTIALS_TOKEN_LIFETIME"`
	EskimiDSPLifetime         time.Duration `yaml:"eskimi_dsp_lifetime" env:"TOLLGATE_ESKIMI_DSP_TOKEN_LIFETIME"`
	// ClientTokenLifetime is the lifetime of a token generated for a client
	// through the management API ("generate client token").
	ClientTokenLifetime time.Duration `yaml:"client_token_lifetime" env:"TOLLGATE_CLIENT_TOKEN_LIFETIME"`
	// KeySessionLifetime is the default lifetime of a key token from
	// POST /auth/access/session; KeySessionMaxLifetime caps what a caller
	// may ask for.
	KeySessionLifetime    time.Duration `yaml:"key_session_lifetime" env:"TOLLGATE_KEY_SESSION_LIFETIME"`
	KeySessionMaxLifetime time.Duration `yaml:"key_session_max_lifetime" env:"TOLLGATE_KEY_SESSION_MAX_LIFETIME"`
	// LegacyOpaqueFormat mints opaque tokens in the format before they
	// named their root account, account and client, and JWT access tokens
	// whose jti names nothing (which an earlier version refuses): for a
	// rolling upgrade from such a version, until every instance runs this
	// one. Tokens of both formats are read.
	LegacyOpaqueFormat bool `yaml:"legacy_opaque_format" env:"TOLLGATE_TOKENS_LEGACY_OPAQUE_FORMAT"`
}

// Longest returns the longest lifetime a token may be given: how long a
// retired signing key stays published.
func (t Tokens) Longest() time.Duration {
	return max(t.ClientCredentialsLifetime, t.EskimiDSPLifetime, t.ClientTokenLifetime, t.KeySessionLifetime, t.KeySessionMaxLifetime)
}

// RateLimits configures the per-second limits kept in Redis (or in process
// on the embedded default).
type RateLimits struct {
	// Classes maps a rate class to "<rate per second>[:<burst>]" (burst
	// defaults to the rate). Filled with DefaultRateClasses when empty.
	Classes map[string]string `yaml:"classes" env:"TOLLGATE_RATE_CLASSES"`
	// TokenRate limits token requests per client per second; 0 turns it off.
	TokenRate int `yaml:"token_rate" env:"TOLLGATE_TOKEN_RATE_LIMIT"`
	// FailOpen lets requests through the limiter when its store is down;
	// authentication still fails closed.
	FailOpen bool `yaml:"fail_open" env:"TOLLGATE_RATE_LIMIT_FAIL_OPEN"`
}

// BruteForce configures the back-off after failed client authentications
// and failed user passwords.
type BruteForce struct {
	Enabled bool `yaml:"enabled" env:"TOLLGATE_BRUTEFORCE_ENABLED"`
	// Threshold failures of one client id or username, or SourceThreshold
	// failures from one source address, start the back-off.
	Threshold       int `yaml:"threshold" env:"TOLLGATE_BRUTEFORCE_THRESHOLD"`
	SourceThreshold int `yaml:"source_threshold" env:"TOLLGATE_BRUTEFORCE_SOURCE_THRESHOLD"`
	// BaseDelay doubles with each further failure, up to MaxDelay.
	BaseDelay time.Duration `yaml:"base_delay" env:"TOLLGATE_BRUTEFORCE_BASE_DELAY"`
	MaxDelay  time.Duration `yaml:"max_delay" env:"TOLLGATE_BRUTEFORCE_MAX_DELAY"`
	// Window is the quiet time after which failures are forgotten.
	Window time.Duration `yaml:"window" env:"TOLLGATE_BRUTEFORCE_WINDOW"`
	// TrustedProxies are the networks (CIDRs, or single addresses) of the
	// proxies in front of Tollgate: load balancers, and the API gateways
	// that call /auth/check. A request from one of them is counted under the
	// right-most address of its X-Forwarded-For that is not itself a
	// trusted proxy; X-Forwarded-For from any other peer is ignored. Empty:
	// every request is counted under its TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies" env:"TOLLGATE_TRUSTED_PROXIES"`
}

// ParseProxy reads one entry of brute_force.trusted_proxies: a CIDR
// ("10.0.0.0/8", "2001:db8::/32") or a single address ("192.0.2.10",
// a /32 or /128). An IPv4-mapped IPv6 network is read as the IPv4 one.
func ParseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("want a CIDR such as 10.0.0.0/8 or an IP address, got %q", s)
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want a CIDR such as 10.0.0.0/8 or an IP address, got %q", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Proxies answers TrustedProxies as networks, leaving out entries that do
// not parse (Validate reports them).
func (b BruteForce) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range b.TrustedProxies {
		if p, err := ParseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// DefaultRateClasses are the rate classes used when none is configured.
func DefaultRateClasses() map[string]string {
	return map[string]string{"default": "3", "reports": "1"}
}

// ParseRate reads a rate class value "<rate>[:<burst>]".
func ParseRate(v string) (rate, burst int, err error) {
	r, b, hasBurst := strings.Cut(strings.TrimSpace(v), ":")
	rate, err = strconv.Atoi(r)
	if err != nil || rate < 1 {
		return 0, 0, fmt.Errorf("want <rate per second>[:<burst>] with positive integers, got %q", v)
	}
	burst = rate
	if hasBurst {
		if burst, err = strconv.Atoi(b); err != nil || burst < 1 {
			return 0, 0, fmt.Errorf("want <rate per second>[:<burst>] with positive integers, got %q", v)
		}
	}
	return rate, burst, nil
}

// Credentials configures the life of API clients and keys.
type Credentials struct {
	// ManagementScope is the scope a client_credentials token needs to use
	// the management API.
	ManagementScope string `yaml:"management_scope" env:"TOLLGATE_MANAGEMENT_SCOPE"`
	// AccessRights maps a bundle name to its space-separated scopes; a key is
	// created with a bundle ("events and contacts"), not a list of scopes.
	AccessRights map[string]string `yaml:"access_rights" env:"TOLLGATE_ACCESS_RIGHTS"`
	// DefaultAccessRights is the bundle of every user's default key.
	DefaultAccessRights string `yaml:"default_access_rights" env:"TOLLGATE_DEFAULT_ACCESS_RIGHTS"`
	// DefaultGrantTypes are the grant types a new API client gets when its
	// creator chooses none: client_credentials and the eskimi_dsp grant, so
	// a client added in the console works with the JSON grant the
	// platforms document. Each must be a grant type Tollgate serves. Left
	// unset, Load fills in DefaultGrantTypes, under the grant's configured
	// name.
	DefaultGrantTypes []string `yaml:"default_grant_types" env:"TOLLGATE_DEFAULT_GRANT_TYPES"`
	// RotationOverlap is how long a rotated-out secret keeps working unless
	// the caller chooses; MaxRotationOverlap caps the caller's choice.
	RotationOverlap    time.Duration `yaml:"rotation_overlap" env:"TOLLGATE_ROTATION_OVERLAP"`
	MaxRotationOverlap time.Duration `yaml:"max_rotation_overlap" env:"TOLLGATE_MAX_ROTATION_OVERLAP"`
	// DisableUnusedAfter disables a credential unused for this long; 0 turns
	// the automatic disabling off (expiry dates are still enforced).
	DisableUnusedAfter time.Duration `yaml:"disable_unused_after" env:"TOLLGATE_DISABLE_UNUSED_AFTER"`
	// StaleCheckInterval is how often the disabling job runs.
	StaleCheckInterval time.Duration `yaml:"stale_check_interval" env:"TOLLGATE_STALE_CHECK_INTERVAL"`
	// LastUsedFlushInterval is how often recorded uses are written to the
	// database, in one batch.
	LastUsedFlushInterval time.Duration `yaml:"last_used_flush_interval" env:"TOLLGATE_LAST_USED_FLUSH_INTERVAL"`
	// JWKSAllowHTTP lets a private_key_jwt client's jwks_uri use http and
	// reach loopback, private and link-local addresses: for tests and local
	// development only, never in production.
	JWKSAllowHTTP bool `yaml:"jwks_allow_http" env:"TOLLGATE_JWKS_ALLOW_HTTP"`
}

// Federation configures workload identity federation: clients
// authenticated by tokens of external OpenID Connect issuers.
type Federation struct {
	// AllowHTTPIssuers accepts issuers (and their jwks_uri) over http and
	// on loopback, private and link-local addresses: for tests and local
	// development only, never in production.
	AllowHTTPIssuers bool `yaml:"allow_http_issuers" env:"TOLLGATE_FEDERATION_ALLOW_HTTP_ISSUERS"`
}

// SecretScanning configures POST /hooks/github/secret-scanning, where
// GitHub reports Tollgate keys it found in public.
type SecretScanning struct {
	// GitHubKeysURL is where GitHub publishes the keys that sign its
	// reports (fetched through the guarded outbound client, cached); empty
	// turns the endpoint off (404).
	GitHubKeysURL string `yaml:"github_keys_url" env:"TOLLGATE_SECRET_SCANNING_GITHUB_KEYS_URL"`
	// AllowHTTP lets GitHubKeysURL use http and reach loopback, private
	// and link-local addresses: for tests and local development only,
	// never in production.
	AllowHTTP bool `yaml:"allow_http" env:"TOLLGATE_SECRET_SCANNING_ALLOW_HTTP"`
}

// DefaultGitHubKeysURL is where GitHub publishes its secret-scanning keys.
const DefaultGitHubKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// Webhooks configures the delivery of lifecycle webhooks.
type Webhooks struct {
	// AllowHTTP accepts http webhook URLs and loopback, private and
	// link-local addresses: for tests and local development only, never in
	// production.
	AllowHTTP bool `yaml:"allow_http" env:"TOLLGATE_WEBHOOKS_ALLOW_HTTP"`
	// Timeout bounds one delivery attempt.
	Timeout time.Duration `yaml:"timeout" env:"TOLLGATE_WEBHOOKS_TIMEOUT"`
	// PollInterval is how often each instance looks for due deliveries.
	PollInterval time.Duration `yaml:"poll_interval" env:"TOLLGATE_WEBHOOKS_POLL_INTERVAL"`
	// ExpiringBefore is how long before a credential's expiry
	// credential.expiring is sent.
	ExpiringBefore time.Duration `yaml:"expiring_before" env:"TOLLGATE_WEBHOOKS_EXPIRING_BEFORE"`
	// ExpiryCheckInterval is how often credentials about to expire are
	// looked for.
	ExpiryCheckInterval time.Duration `yaml:"expiry_check_interval" env:"TOLLGATE_WEBHOOKS_EXPIRY_CHECK_INTERVAL"`
	// DeliveryRetention is how long a delivered or failed delivery stays
	// in the delivery log, from its creation; the expiry check prunes older
	// ones. Pending deliveries are never pruned.
	DeliveryRetention time.Duration `yaml:"delivery_retention" env:"TOLLGATE_WEBHOOKS_DELIVERY_RETENTION"`
}

// Grants configures the grants: which are served, and the name of the
// custom one.
type Grants struct {
	// EskimiDSPName is the grant_type value of the username/password/client
	// custom grant.
	EskimiDSPName string `yaml:"eskimi_dsp_name" env:"TOLLGATE_ESKIMI_DSP_GRANT_NAME"`
	// Enabled are the grants served: client_credentials, the eskimi_dsp
	// grant under EskimiDSPName, api_key_session (the key session of
	// POST /auth/access/session) and token exchange (RFC 8693,
	// TokenExchangeGrant). nil is every one of them (see EnabledGrants).
	Enabled []string `yaml:"enabled,omitempty" env:"TOLLGATE_GRANTS_ENABLED"`
}

// KeySessionGrant is the name of the key session grant.
const KeySessionGrant = "api_key_session"

// TokenExchangeGrant is the grant_type value of token exchange (RFC 8693).
const TokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange" // #nosec G101 -- a protocol name, not a credential

// KnownGrants returns the names of every grant Tollgate has, the eskimi_dsp
// grant under its configured name.
func (g Grants) KnownGrants() []string {
	return []string{"client_credentials", g.EskimiDSPName, KeySessionGrant, TokenExchangeGrant}
}

// EnabledGrants returns the grants served: Enabled, or every known grant
// when it is nil.
func (g Grants) EnabledGrants() []string {
	if g.Enabled == nil {
		return g.KnownGrants()
	}
	return g.Enabled
}

// Console configures the web console under /console on the public
// listener.
type Console struct {
	Enabled bool `yaml:"enabled" env:"TOLLGATE_CONSOLE_ENABLED"`
	// SessionIdleTimeout ends a session unused for that long;
	// SessionLifetime ends any session that old, however busy.
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout" env:"TOLLGATE_CONSOLE_SESSION_IDLE_TIMEOUT"`
	SessionLifetime    time.Duration `yaml:"session_lifetime" env:"TOLLGATE_CONSOLE_SESSION_LIFETIME"`
	// SecureCookies marks the console's cookies Secure on every request.
	// They are Secure anyway on a request that came over TLS, directly or
	// through a trusted proxy saying X-Forwarded-Proto: https; set it when
	// TLS ends at a proxy that is not among brute_force.trusted_proxies.
	SecureCookies bool `yaml:"secure_cookies" env:"TOLLGATE_CONSOLE_SECURE_COOKIES"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level" env:"TOLLGATE_LOG_LEVEL"`   // debug, info, warn or error
	Format string `yaml:"format" env:"TOLLGATE_LOG_FORMAT"` // json or text
	// FlushInterval batches the log lines of `serve`: they are written out
	// this often (or when 64 KiB are waiting), warnings and errors at once.
	// 0 writes every line as it comes.
	FlushInterval time.Duration `yaml:"flush_interval" env:"TOLLGATE_LOG_FLUSH_INTERVAL"`
}

// Default returns the configuration of `tollgate serve` without a file or
// environment: the embedded SQLite database and in-process token store.
// Issuer, Database.URL and Credentials.AccessRights are left empty; Load
// derives them after the file and the environment have been applied, so they
// follow an overridden address or data directory, and configured access
// rights replace the default bundles instead of merging into them.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Addr:              "127.0.0.1:8080",
			MaxBodyBytes:      64 << 10,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   15 * time.Second,
			MaxHeaderBytes:    32 << 10,
		},
		Ops:     Ops{Addr: "127.0.0.1:9090"},
		DataDir: "./data",
		Database: Database{
			ConnMaxLifetime: 30 * time.Minute,
			ConnMaxIdleTime: 5 * time.Minute,
			QueryTimeout:    2 * time.Second,
		},
		Redis: Redis{
			KeyPrefix:    "tg:",
			DialTimeout:  500 * time.Millisecond,
			ReadTimeout:  500 * time.Millisecond,
			WriteTimeout: 500 * time.Millisecond,
		},
		Keys: KeySources{PepperID: "1"},
		DPoP: DPoP{Algorithms: slices.Clone(DPoPAlgorithms), ProofMaxAge: time.Minute, ProofMaxSkew: 10 * time.Second},
		SigningKeys: SigningKeys{Algorithm: "ES256", RotationPeriod: 30 * 24 * time.Hour, PublishAhead: time.Hour,
			RefreshInterval: 30 * time.Second},
		Tokens: Tokens{
			ClientCredentialsLifetime: time.Hour,
			EskimiDSPLifetime:         24 * time.Hour,
			ClientTokenLifetime:       365 * 24 * time.Hour,
			KeySessionLifetime:        86400 * time.Second,
			KeySessionMaxLifetime:     30 * 24 * time.Hour,
		},
		Webhooks: Webhooks{
			Timeout:             10 * time.Second,
			PollInterval:        time.Second,
			ExpiringBefore:      7 * 24 * time.Hour,
			ExpiryCheckInterval: time.Hour,
			DeliveryRetention:   30 * 24 * time.Hour,
		},
		Credentials: Credentials{
			ManagementScope:       "tollgate:manage",
			DefaultAccessRights:   "full",
			RotationOverlap:       24 * time.Hour,
			MaxRotationOverlap:    30 * 24 * time.Hour,
			DisableUnusedAfter:    90 * 24 * time.Hour,
			StaleCheckInterval:    time.Hour,
			LastUsedFlushInterval: time.Minute,
		},
		Grants:         Grants{EskimiDSPName: "eskimi_dsp"},
		SecretScanning: SecretScanning{GitHubKeysURL: DefaultGitHubKeysURL},
		RateLimits:     RateLimits{TokenRate: 10},
		BruteForce: BruteForce{Enabled: true, Threshold: 5, SourceThreshold: 20, BaseDelay: time.Second,
			MaxDelay: 5 * time.Minute, Window: 15 * time.Minute},
		Console: Console{Enabled: true, SessionIdleTimeout: 30 * time.Minute, SessionLifetime: 12 * time.Hour},
		Usage: Usage{FlushInterval: time.Second, RollupInterval: 30 * time.Second, RollupGrace: 2 * time.Minute,
			MinuteRetention: 48 * time.Hour, HourRetention: 90 * 24 * time.Hour, DayRetention: 2 * 365 * 24 * time.Hour},
		Log: Log{Level: "info", Format: "json", FlushInterval: 200 * time.Millisecond},
	}
}

// Load builds a Config: Default, then the YAML file at path (none when path is
// ""), then environment overrides read through lookupEnv (none when nil),
// then derived defaults for Issuer and Database.URL.
//
// Unknown YAML keys, environment values that do not parse, and unknown
// TOLLGATE_* variables are errors. Because a lookup function cannot list
// names, unknown variables are found among the process environment
// (os.Environ) and reported only when lookupEnv also sees them, so a test with
// its own lookup is not disturbed by the developer's shell. Names starting
// with TOLLGATE_TEST_ are reserved for tests and ignored.
//
// Load does not validate; call Validate on the result.
func Load(path string, lookupEnv func(string) (string, bool)) (Config, error) {
	c := Default()
	if path != "" {
		if err := decodeFile(path, &c); err != nil {
			return Config{}, err
		}
	}
	if lookupEnv != nil {
		if err := checkUnknownEnv(os.Environ(), lookupEnv); err != nil {
			return Config{}, err
		}
		if err := applyEnv(&c, lookupEnv); err != nil {
			return Config{}, err
		}
	}
	c.fillDerived()
	return c, nil
}

func decodeFile(path string, c *Config) error {
	data, err := os.ReadFile(path) // #nosec G304 -- the operator names the configuration file
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return fmt.Errorf("config file %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: want a single YAML document", path)
	}
	return nil
}

// fillDerived sets the defaults that depend on other settings.
func (c *Config) fillDerived() {
	if c.Issuer == "" {
		scheme := "http://"
		if c.HTTP.TLS() {
			scheme = "https://"
		}
		c.Issuer = scheme + issuerHost(c.HTTP.Addr)
	}
	if c.Database.URL == "" {
		c.Database.URL = filepath.Join(c.DataDir, "tollgate.db")
	}
	// A configured set of bundles replaces the defaults instead of merging
	// into them, so the defaults are filled in only when none is given.
	if c.Credentials.AccessRights == nil {
		c.Credentials.AccessRights = DefaultAccessRights()
	}
	if c.RateLimits.Classes == nil {
		c.RateLimits.Classes = DefaultRateClasses()
	}
	// Filled in after the grant's name is known, so renaming the grant
	// renames it here too.
	if c.Credentials.DefaultGrantTypes == nil {
		c.Credentials.DefaultGrantTypes = DefaultGrantTypes(c.Grants.EskimiDSPName)
		if c.Grants.Enabled != nil {
			// A disabled grant is nobody's default.
			c.Credentials.DefaultGrantTypes = slices.DeleteFunc(c.Credentials.DefaultGrantTypes, func(g string) bool {
				return !slices.Contains(c.Grants.Enabled, g)
			})
		}
	}
}

// DefaultGrantTypes are the grant types of a new API client when none is
// configured: client_credentials and the eskimi_dsp grant, named
// eskimiDSPName.
func DefaultGrantTypes(eskimiDSPName string) []string {
	return []string{"client_credentials", eskimiDSPName}
}

// DefaultAccessRights are the scope bundles used when none is configured.
func DefaultAccessRights() map[string]string {
	return map[string]string{
		"full":            "events contacts reports",
		"events":          "events",
		"events_contacts": "events contacts",
	}
}

// issuerHost turns a listen address into a host:port a browser can reach:
// an unspecified host (":8080", "0.0.0.0:8080", "[::]:8080") becomes
// localhost.
func issuerHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" {
		return net.JoinHostPort("localhost", port)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("localhost", port)
	}
	return net.JoinHostPort(host, port)
}
