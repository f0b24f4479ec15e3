package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of http.max_body_bytes.
const (
	MinBodyBytes = 1 << 10
	MaxBodyBytes = 10 << 20
)

// Limits of http.max_header_bytes.
const (
	MinHeaderBytes = 4 << 10
	MaxHeaderBytes = 1 << 20
)

// checkTLSPair checks that a listener's certificate and key files are set
// together. The files themselves are read when the listener starts.
func checkTLSPair(p *problems, listener, cert, key string) {
	switch {
	case strings.TrimSpace(cert) == "" && strings.TrimSpace(key) != "":
		p.addf(at(listener+".tls_cert_file"), "must be set together with %s.tls_key_file", listener)
	case strings.TrimSpace(cert) != "" && strings.TrimSpace(key) == "":
		p.addf(at(listener+".tls_key_file"), "must be set together with %s.tls_cert_file", listener)
	}
}

// Embedded reports whether c runs on the one-command default: a SQLite
// database and no Redis, so state lives in this one process and its data
// directory.
func (c Config) Embedded() bool {
	return !c.Database.IsPostgres() && !c.Redis.Enabled()
}

// problems collects validation failures, each labelled with the setting.
type problems []error

func (p *problems) addf(setting, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", setting, fmt.Sprintf(format, args...)))
}

// at labels a setting by its YAML key and environment variable.
func at(yamlPath string) string { return envLabel(yamlPath) }

// Validate checks c and reports every problem found, joined into one error
// (nil when there is none). Call it on the result of Load. It does not read
// key files; LoadKeys does.
func (c Config) Validate() error {
	var p problems
	c.validateHTTP(&p)
	c.validateStores(&p)
	c.validateKeys(&p)
	c.validateSigningKeys(&p)
	c.validateDPoP(&p)
	c.validateProtocol(&p)
	c.validateSecretScanning(&p)
	c.validateUsage(&p)
	return errors.Join(p...)
}

func (c Config) validateHTTP(p *problems) {
	httpPort, httpErr := checkAddr(c.HTTP.Addr)
	if httpErr != nil {
		p.addf(at("http.addr"), "%v", httpErr)
	}
	opsPort, opsErr := checkAddr(c.Ops.Addr)
	if opsErr != nil {
		p.addf(at("ops.addr"), "%v", opsErr)
	}
	if httpErr == nil && opsErr == nil && httpPort != 0 && opsPort == httpPort && sameHost(c.HTTP.Addr, c.Ops.Addr) {
		p.addf(at("ops.addr"), "must differ from http.addr %q", c.HTTP.Addr)
	}
	if b := c.HTTP.MaxBodyBytes; b < MinBodyBytes || b > MaxBodyBytes {
		p.addf(at("http.max_body_bytes"), "must be between %d (1 KiB) and %d (10 MiB), got %d", MinBodyBytes, MaxBodyBytes, b)
	}
	positive(p, "http.read_header_timeout", c.HTTP.ReadHeaderTimeout)
	positive(p, "http.read_timeout", c.HTTP.ReadTimeout)
	positive(p, "http.write_timeout", c.HTTP.WriteTimeout)
	positive(p, "http.idle_timeout", c.HTTP.IdleTimeout)
	positive(p, "http.shutdown_timeout", c.HTTP.ShutdownTimeout)
	if d := c.HTTP.ShutdownDelay; d < 0 || d > 10*time.Minute {
		p.addf(at("http.shutdown_delay"), "must be between 0 and 10m, got %s", d)
	}
	if b := c.HTTP.MaxHeaderBytes; b < MinHeaderBytes || b > MaxHeaderBytes {
		p.addf(at("http.max_header_bytes"), "must be between %d (4 KiB) and %d (1 MiB), got %d", MinHeaderBytes, MaxHeaderBytes, b)
	}
	checkTLSPair(p, "http", c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile)
	checkTLSPair(p, "ops", c.Ops.TLSCertFile, c.Ops.TLSKeyFile)
	if err := checkIssuer(c.Issuer); err != nil {
		p.addf(at("issuer"), "%v", err)
	}
	if c.Log.Level != "debug" && c.Log.Level != "info" && c.Log.Level != "warn" && c.Log.Level != "error" {
		p.addf(at("log.level"), "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.FlushInterval < 0 || c.Log.FlushInterval > 10*time.Second {
		p.addf(at("log.flush_interval"), "must be between 0 and 10s, got %v", c.Log.FlushInterval)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		p.addf(at("log.format"), "must be json or text, got %q", c.Log.Format)
	}
}

func (c Config) validateStores(p *problems) {
	if c.DataDir == "" {
		p.addf(at("data_dir"), "must not be empty")
	}
	// URLs may carry passwords: messages never quote them.
	if err := checkDatabaseURL(c.Database.URL); err != nil {
		p.addf(at("database.url"), "%v", err)
	}
	nonNegative(p, "database.max_open_conns", c.Database.MaxOpenConns)
	nonNegative(p, "database.max_idle_conns", c.Database.MaxIdleConns)
	if c.Database.ConnMaxLifetime < 0 {
		p.addf(at("database.conn_max_lifetime"), "must not be negative (0 means no limit), got %s", c.Database.ConnMaxLifetime)
	}
	if c.Database.ConnMaxIdleTime < 0 {
		p.addf(at("database.conn_max_idle_time"), "must not be negative (0 means no limit), got %s", c.Database.ConnMaxIdleTime)
	}
	positive(p, "database.query_timeout", c.Database.QueryTimeout)

	if err := checkRedisURL(c.Redis.URL); err != nil {
		p.addf(at("redis.url"), "%v", err)
	}
	c.validateRedisTopology(p)
	positive(p, "redis.dial_timeout", c.Redis.DialTimeout)
	positive(p, "redis.read_timeout", c.Redis.ReadTimeout)
	positive(p, "redis.write_timeout", c.Redis.WriteTimeout)
	nonNegative(p, "redis.pool_size", c.Redis.PoolSize)
}

var pepperIDPattern = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

func (c Config) validateKeys(p *problems) {
	k := c.Keys
	checkSecretSource(p, "token secret", "TOLLGATE_TOKEN_SECRET", "keys.token_secret_file", k.TokenSecret, k.TokenSecretFile)
	checkSecretSource(p, "pepper", "TOLLGATE_PEPPER", "keys.pepper_file", k.Pepper, k.PepperFile)
	if k.KeyEncryptionKey != "" && k.KeyEncryptionKeyFile != "" {
		p.addf("key-encryption key", "set either TOLLGATE_KEY_ENCRYPTION_KEY or %s, not both", at("keys.key_encryption_key_file"))
	}
	if k.KeyEncryptionKey != "" {
		if _, err := ParseKeyEncryptionKey([]byte(k.KeyEncryptionKey)); err != nil {
			p.addf("TOLLGATE_KEY_ENCRYPTION_KEY", "%v", err)
		}
	}

	for i, path := range k.RotatedTokenSecretFiles {
		if strings.TrimSpace(path) == "" {
			p.addf(at("keys.rotated_token_secret_files"), "entry %d is an empty path", i)
		}
	}
	if len(k.RotatedTokenSecretFiles) > 0 && !hasSource(k.TokenSecret, k.TokenSecretFile) {
		p.addf(at("keys.rotated_token_secret_files"), "set only together with a current token secret (TOLLGATE_TOKEN_SECRET or keys.token_secret_file)")
	}

	if !pepperIDPattern.MatchString(k.PepperID) {
		p.addf(at("keys.pepper_id"), "must be 1 to 8 characters a-z or 0-9, got %q", k.PepperID)
	}
	ids := make([]string, 0, len(k.RetiredPepperFiles))
	for id := range k.RetiredPepperFiles {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		switch {
		case !pepperIDPattern.MatchString(id):
			p.addf(at("keys.retired_pepper_files"), "id %q must be 1 to 8 characters a-z or 0-9", id)
		case id == k.PepperID:
			p.addf(at("keys.retired_pepper_files"), "id %q is the current keys.pepper_id; a new pepper needs a new id", id)
		}
		if strings.TrimSpace(k.RetiredPepperFiles[id]) == "" {
			p.addf(at("keys.retired_pepper_files"), "id %q has an empty path", id)
		}
	}
	if len(k.RetiredPepperFiles) > 0 && !hasSource(k.Pepper, k.PepperFile) {
		p.addf(at("keys.retired_pepper_files"), "set only together with a current pepper (TOLLGATE_PEPPER or keys.pepper_file)")
	}

	// Only the embedded default may generate keys; a shared deployment must
	// give every instance the same ones.
	if !c.Embedded() {
		if !hasSource(k.TokenSecret, k.TokenSecretFile) {
			p.addf("token secret", "required when PostgreSQL or Redis is configured: set TOLLGATE_TOKEN_SECRET or keys.token_secret_file (TOLLGATE_TOKEN_SECRET_FILE)")
		}
		if !hasSource(k.Pepper, k.PepperFile) {
			p.addf("pepper", "required when PostgreSQL or Redis is configured: set TOLLGATE_PEPPER or keys.pepper_file (TOLLGATE_PEPPER_FILE)")
		}
		if !hasSource(k.KeyEncryptionKey, k.KeyEncryptionKeyFile) {
			p.addf("key-encryption key", "required when PostgreSQL or Redis is configured: set TOLLGATE_KEY_ENCRYPTION_KEY or keys.key_encryption_key_file (TOLLGATE_KEY_ENCRYPTION_KEY_FILE)")
		}
	}
}

func (c Config) validateSigningKeys(p *problems) {
	s := c.SigningKeys
	if !slices.Contains(SigningAlgorithms, s.Algorithm) {
		p.addf(at("signing_keys.algorithm"), "must be one of %s, got %q", strings.Join(SigningAlgorithms, ", "), s.Algorithm)
	}
	if s.RefreshInterval < time.Second || s.RefreshInterval > 10*time.Minute {
		p.addf(at("signing_keys.refresh_interval"), "must be between 1s and 10m, got %v", s.RefreshInterval)
	}
	// Every instance must load a new key, and every verifier's cached JWKS
	// expire, before the key signs.
	if s.PublishAhead < 2*s.RefreshInterval {
		p.addf(at("signing_keys.publish_ahead"), "must be at least twice signing_keys.refresh_interval, got %v", s.PublishAhead)
	}
	if s.RotationPeriod != 0 && s.RotationPeriod < 2*s.PublishAhead {
		p.addf(at("signing_keys.rotation_period"), "must be 0 (rotate on demand only) or at least twice signing_keys.publish_ahead, got %v", s.RotationPeriod)
	}
}

func (c Config) validateDPoP(p *problems) {
	d := c.DPoP
	if len(d.Algorithms) == 0 {
		p.addf(at("dpop.algorithms"), "must name at least one of %s", strings.Join(DPoPAlgorithms, ", "))
	}
	for _, a := range d.Algorithms {
		if !slices.Contains(DPoPAlgorithms, a) {
			p.addf(at("dpop.algorithms"), "must be among %s, got %q", strings.Join(DPoPAlgorithms, ", "), a)
		}
	}
	if d.ProofMaxAge < time.Second || d.ProofMaxAge > 10*time.Minute {
		p.addf(at("dpop.proof_max_age"), "must be between 1s and 10m, got %v", d.ProofMaxAge)
	}
	if d.ProofMaxSkew < time.Second || d.ProofMaxSkew > 5*time.Minute {
		p.addf(at("dpop.proof_max_skew"), "must be between 1s and 5m, got %v", d.ProofMaxSkew)
	}
}

// SigningAlgorithms are the JWS algorithms a signing key may use.
var SigningAlgorithms = []string{"ES256", "RS256", "EdDSA"}

// checkSecretSource checks what can be checked without reading files. The
// value is never quoted.
func checkSecretSource(p *problems, what, envName, fileKey string, value Secret, path string) {
	if value != "" && path != "" {
		p.addf(what, "set either %s or %s, not both", envName, at(fileKey))
	}
	if value != "" && len(value) < MinSecretBytes {
		p.addf(envName, "too short: want at least %d bytes", MinSecretBytes)
	}
}

var (
	// grantNamePattern is RFC 6749 appendix A.10 grant-name: 1*name-char.
	grantNamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	// scopeTokenPattern is RFC 6749 §3.3 scope-token.
	scopeTokenPattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,128}$`)
	reservedGrants    = []string{"authorization_code", "client_credentials", "implicit", "password", "refresh_token"}
)

func (c Config) validateProtocol(p *problems) {
	positive(p, "tokens.client_credentials_lifetime", c.Tokens.ClientCredentialsLifetime)
	positive(p, "tokens.eskimi_dsp_lifetime", c.Tokens.EskimiDSPLifetime)
	positive(p, "tokens.client_token_lifetime", c.Tokens.ClientTokenLifetime)
	positive(p, "tokens.key_session_lifetime", c.Tokens.KeySessionLifetime)
	positive(p, "tokens.key_session_max_lifetime", c.Tokens.KeySessionMaxLifetime)
	if c.Tokens.KeySessionLifetime > c.Tokens.KeySessionMaxLifetime {
		p.addf(at("tokens.key_session_lifetime"), "must not exceed tokens.key_session_max_lifetime")
	}
	c.validateDefaultGrantTypes(p)
	nonNegative(p, "rate_limits.token_rate", c.RateLimits.TokenRate)
	if bf := c.BruteForce; bf.Enabled {
		if bf.Threshold < 1 {
			p.addf(at("brute_force.threshold"), "must be at least 1, got %d", bf.Threshold)
		}
		if bf.SourceThreshold < 1 {
			p.addf(at("brute_force.source_threshold"), "must be at least 1, got %d", bf.SourceThreshold)
		}
		positive(p, "brute_force.base_delay", bf.BaseDelay)
		positive(p, "brute_force.max_delay", bf.MaxDelay)
		positive(p, "brute_force.window", bf.Window)
		if bf.BaseDelay > bf.MaxDelay {
			p.addf(at("brute_force.base_delay"), "must not exceed brute_force.max_delay")
		}
		for _, proxy := range bf.TrustedProxies {
			if _, err := ParseProxy(proxy); err != nil {
				p.addf(at("brute_force.trusted_proxies"), "%v", err)
			}
		}
	}
	if con := c.Console; con.Enabled {
		positive(p, "console.session_idle_timeout", con.SessionIdleTimeout)
		positive(p, "console.session_lifetime", con.SessionLifetime)
		if con.SessionIdleTimeout > con.SessionLifetime {
			p.addf(at("console.session_idle_timeout"), "must not exceed console.session_lifetime")
		}
	}
	if _, ok := c.RateLimits.Classes["default"]; !ok && c.RateLimits.Classes != nil {
		p.addf(at("rate_limits.classes"), "must define the default class")
	}
	for _, name := range slices.Sorted(maps.Keys(c.RateLimits.Classes)) {
		if !grantNamePattern.MatchString(name) {
			p.addf(at("rate_limits.classes"), "class name %q: want letters, digits, '-', '.' or '_'", name)
		}
		if _, _, err := ParseRate(c.RateLimits.Classes[name]); err != nil {
			p.addf(at("rate_limits.classes"), "class %q: %v", name, err)
		}
	}
	positive(p, "webhooks.timeout", c.Webhooks.Timeout)
	positive(p, "webhooks.poll_interval", c.Webhooks.PollInterval)
	positive(p, "webhooks.expiring_before", c.Webhooks.ExpiringBefore)
	positive(p, "webhooks.expiry_check_interval", c.Webhooks.ExpiryCheckInterval)
	// A delivery is retried for about 24 hours, and a credential.expiring
	// event is queued once only while its delivery row is kept: up to
	// expiring_before after its first scan.
	if wh := c.Webhooks; wh.DeliveryRetention < 48*time.Hour {
		p.addf(at("webhooks.delivery_retention"), "must be at least 48h (a delivery is retried for about 24h), got %s", wh.DeliveryRetention)
	} else if wh.DeliveryRetention < wh.ExpiringBefore {
		p.addf(at("webhooks.delivery_retention"), "must not be shorter than webhooks.expiring_before (%s), or a credential.expiring event is sent again", wh.ExpiringBefore)
	}
	cr := c.Credentials
	positive(p, "credentials.rotation_overlap", cr.RotationOverlap)
	positive(p, "credentials.max_rotation_overlap", cr.MaxRotationOverlap)
	if cr.RotationOverlap > cr.MaxRotationOverlap {
		p.addf(at("credentials.rotation_overlap"), "must not exceed credentials.max_rotation_overlap")
	}
	if cr.DisableUnusedAfter < 0 {
		p.addf(at("credentials.disable_unused_after"), "must not be negative (0 turns it off)")
	}
	positive(p, "credentials.stale_check_interval", cr.StaleCheckInterval)
	positive(p, "credentials.last_used_flush_interval", cr.LastUsedFlushInterval)
	if !scopeTokenPattern.MatchString(cr.ManagementScope) {
		p.addf(at("credentials.management_scope"), "must be one scope token, got %q", cr.ManagementScope)
	}
	if len(cr.AccessRights) == 0 {
		p.addf(at("credentials.access_rights"), "must name at least one bundle")
	}
	// Sorted, so that problems come out in the same order on every run.
	bundles := make([]string, 0, len(cr.AccessRights))
	for name := range cr.AccessRights {
		bundles = append(bundles, name)
	}
	slices.Sort(bundles)
	for _, name := range bundles {
		scopes := cr.AccessRights[name]
		if !grantNamePattern.MatchString(name) {
			p.addf(at("credentials.access_rights"), "bundle name %q: want letters, digits, '-', '.' or '_'", name)
		}
		fields := strings.Fields(scopes)
		if len(fields) == 0 {
			p.addf(at("credentials.access_rights"), "bundle %q has no scopes", name)
		}
		for _, f := range fields {
			if !scopeTokenPattern.MatchString(f) {
				p.addf(at("credentials.access_rights"), "bundle %q: %q is not a scope token", name, f)
			}
			if f == cr.ManagementScope {
				p.addf(at("credentials.access_rights"), "bundle %q holds the management scope %q: grant it explicitly, never through a bundle", name, f)
			}
		}
	}
	if _, ok := cr.AccessRights[cr.DefaultAccessRights]; !ok {
		p.addf(at("credentials.default_access_rights"), "must name a bundle of credentials.access_rights, got %q", cr.DefaultAccessRights)
	}

	name := c.Grants.EskimiDSPName
	switch {
	case !grantNamePattern.MatchString(name):
		p.addf(at("grants.eskimi_dsp_name"), "must be a grant name of letters, digits, '-', '.' or '_', got %q", name)
	case slices.Contains(reservedGrants, name):
		p.addf(at("grants.eskimi_dsp_name"), "%q is a standard grant type", name)
	}
	c.validateEnabledGrants(p)
}

func positive(p *problems, yamlPath string, d time.Duration) {
	if d <= 0 {
		p.addf(at(yamlPath), "must be positive, got %s", d)
	}
}

func nonNegative(p *problems, yamlPath string, n int) {
	if n < 0 {
		p.addf(at(yamlPath), "must not be negative, got %d", n)
	}
}

// checkAddr checks a listen address of the form host:port with a numeric
// port and returns the port. The host may be empty (all interfaces); port 0
// picks a free port.
func checkAddr(addr string) (uint16, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("want host:port, got %q", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return uint16(n), nil
}

// sameHost reports whether two listen addresses may collide: same host, or
// either listens on all interfaces.
func sameHost(a, b string) bool {
	ha, _, _ := net.SplitHostPort(a)
	hb, _, _ := net.SplitHostPort(b)
	all := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "" || (ip != nil && ip.IsUnspecified())
	}
	return ha == hb || all(ha) || all(hb)
}

// checkIssuer accepts an absolute http or https URL with a host and without
// user info, query, fragment or trailing slash, so that it can be compared
// byte for byte and have paths appended.
func checkIssuer(issuer string) error {
	if issuer == "" {
		return errors.New("must not be empty")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("not a valid URL: %q", issuer)
	}
	var errs []string
	if u.Scheme != "http" && u.Scheme != "https" {
		errs = append(errs, "scheme must be http or https")
	}
	if u.Host == "" || u.Opaque != "" {
		errs = append(errs, "must be an absolute URL with a host")
	}
	if u.User != nil {
		errs = append(errs, "must not contain user info")
	}
	if u.RawQuery != "" || u.ForceQuery {
		errs = append(errs, "must not have a query")
	}
	if u.Fragment != "" || strings.Contains(issuer, "#") {
		errs = append(errs, "must not have a fragment")
	}
	if strings.HasSuffix(u.Path, "/") {
		errs = append(errs, "must not end with a slash")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s, got %q", strings.Join(errs, "; "), u.Redacted())
	}
	return nil
}

// splitScheme returns the lower-cased scheme of "scheme://…"; ok is false
// when s does not start with one (a file path).
func splitScheme(s string) (scheme string, ok bool) {
	scheme, _, ok = strings.Cut(s, "://")
	if !ok || scheme == "" {
		return "", false
	}
	for _, r := range scheme {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '+' || r == '-' || r == '.') {
			return "", false
		}
	}
	return strings.ToLower(scheme), true
}

// checkDatabaseURL accepts a PostgreSQL URL or a SQLite file path. The URL is
// never quoted: it may contain a password.
func checkDatabaseURL(dsn string) error {
	if strings.TrimSpace(dsn) == "" {
		return errors.New("must not be empty")
	}
	scheme, ok := splitScheme(dsn)
	if !ok {
		// A SQLite file path. A keyword/value PostgreSQL DSN
		// ("host=… password=…") must not quietly become a file name.
		if strings.ContainsAny(dsn, "= \t\n@") {
			return errors.New("looks like a keyword/value PostgreSQL DSN: use a postgres:// URL (a SQLite path may not contain '=', '@' or spaces)")
		}
		return nil
	}
	if scheme != "postgres" && scheme != "postgresql" {
		return fmt.Errorf("unsupported scheme %q: want postgres://, postgresql:// or a SQLite file path", scheme)
	}
	if _, err := url.Parse(dsn); err != nil {
		return errors.New("not a valid PostgreSQL URL")
	}
	return nil
}

// validateRedisTopology checks that the Redis settings name one kind of
// deployment: a single server by redis.url, or redis.addrs with exactly one
// of redis.master_name (Sentinel) and redis.cluster. Passwords are never
// quoted.
func (c Config) validateRedisTopology(p *problems) {
	r := c.Redis
	if strings.ContainsAny(r.KeyPrefix, "{}") {
		p.addf(at("redis.key_prefix"), "must not contain '{' or '}', which would change the keys' Redis Cluster hash tags")
	}
	// The settings of a Sentinel or Cluster deployment, redis.addrs aside.
	topology := []struct {
		set  bool
		path string
	}{
		{r.MasterName != "", "redis.master_name"},
		{r.Cluster, "redis.cluster"},
		{r.Username != "", "redis.username"},
		{r.Password != "", "redis.password"},
		{r.SentinelPassword != "", "redis.sentinel_password"},
		{r.TLS, "redis.tls"},
	}
	if r.URL != "" || len(r.Addrs) == 0 {
		msg := "needs redis.addrs (TOLLGATE_REDIS_ADDRS)"
		if r.URL != "" {
			msg = "set either redis.url (one server, with its credentials and TLS in the URL) or redis.addrs (Sentinel or Cluster), not both"
			if len(r.Addrs) > 0 {
				p.addf(redisLabel("redis.addrs"), "%s", msg)
			}
		}
		for _, f := range topology {
			if f.set {
				p.addf(redisLabel(f.path), "%s", msg)
			}
		}
		return
	}
	switch {
	case r.MasterName != "" && r.Cluster:
		p.addf(at("redis.cluster"), "set either redis.master_name (Sentinel) or redis.cluster (Cluster), not both")
	case r.MasterName == "" && !r.Cluster:
		p.addf(at("redis.addrs"), "set redis.master_name (the Sentinels' master) or redis.cluster: true (Cluster nodes)")
	}
	if r.SentinelPassword != "" && r.MasterName == "" {
		p.addf(redisLabel("redis.sentinel_password"), "is for Sentinel: set only with redis.master_name")
	}
	if strings.ContainsAny(r.MasterName, " \t\r\n") {
		p.addf(at("redis.master_name"), "must not contain white space, got %q", r.MasterName)
	}
	seen := make(map[string]bool, len(r.Addrs))
	for _, addr := range r.Addrs {
		host, port, err := net.SplitHostPort(addr)
		n, perr := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil || host == "":
			p.addf(at("redis.addrs"), "want host:port, got %q", addr)
		case perr != nil || n == 0:
			p.addf(at("redis.addrs"), "port of %q must be a number from 1 to 65535", addr)
		case seen[addr]:
			p.addf(at("redis.addrs"), "%q is listed twice", addr)
		}
		seen[addr] = true
	}
}

// redisLabel labels a Redis setting; the passwords are environment only.
func redisLabel(path string) string {
	switch path {
	case "redis.password":
		return "TOLLGATE_REDIS_PASSWORD"
	case "redis.sentinel_password":
		return "TOLLGATE_REDIS_SENTINEL_PASSWORD"
	}
	return at(path)
}

// checkRedisURL accepts "" or a redis://, rediss:// or unix:// URL. The URL
// is never quoted: it may contain a password.
func checkRedisURL(raw string) error {
	if raw == "" {
		return nil
	}
	scheme, ok := splitScheme(raw)
	if !ok || (scheme != "redis" && scheme != "rediss" && scheme != "unix") {
		return errors.New("must be empty or a redis://, rediss:// or unix:// URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if scheme == "unix" && u.Path == "" {
		return errors.New("unix:// URL needs a socket path")
	}
	return nil
}

// validateEnabledGrants checks that grants.enabled names known grants, at
// least one, none twice.
func (c Config) validateEnabledGrants(p *problems) {
	known := c.Grants.KnownGrants()
	if c.Grants.Enabled != nil && len(c.Grants.Enabled) == 0 {
		p.addf(at("grants.enabled"), "must name at least one grant (%s)", strings.Join(known, ", "))
	}
	seen := map[string]bool{}
	for _, g := range c.Grants.Enabled {
		switch {
		case !slices.Contains(known, g):
			p.addf(at("grants.enabled"), "%q is not a grant Tollgate has (%s)", g, strings.Join(known, ", "))
		case seen[g]:
			p.addf(at("grants.enabled"), "names %q twice", g)
		}
		seen[g] = true
	}
}

// validateDefaultGrantTypes checks that new clients get at least one grant
// type, each served by Tollgate, none twice.
func (c Config) validateDefaultGrantTypes(p *problems) {
	served := slices.DeleteFunc([]string{"client_credentials", c.Grants.EskimiDSPName}, func(g string) bool {
		return !slices.Contains(c.Grants.EnabledGrants(), g)
	})
	// nil is Default without Load, which fills it in; an empty list is a
	// configuration that names none.
	if c.Credentials.DefaultGrantTypes != nil && len(c.Credentials.DefaultGrantTypes) == 0 {
		p.addf(at("credentials.default_grant_types"), "must name at least one grant type (%s)", strings.Join(served, ", "))
	}
	seen := map[string]bool{}
	for _, g := range c.Credentials.DefaultGrantTypes {
		switch {
		case !slices.Contains(served, g):
			p.addf(at("credentials.default_grant_types"), "%q is not a grant type Tollgate serves (%s; grants.eskimi_dsp_name renames the second)", g, strings.Join(served, ", "))
		case seen[g]:
			p.addf(at("credentials.default_grant_types"), "names %q twice", g)
		}
		seen[g] = true
	}
}

// validateSecretScanning checks the URL of GitHub's secret-scanning keys:
// empty (the endpoint off), or an absolute https URL (http too with
// allow_http). Its address is checked again at every fetch.
func (c Config) validateSecretScanning(p *problems) {
	raw := c.SecretScanning.GitHubKeysURL
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.Fragment != "":
		p.addf(at("secret_scanning.github_keys_url"), "must be an absolute URL without user info or a fragment")
	case u.Scheme != "https" && !(u.Scheme == "http" && c.SecretScanning.AllowHTTP):
		p.addf(at("secret_scanning.github_keys_url"), "must use https (http only with secret_scanning.allow_http)")
	}
}

// validateUsage checks the usage settings: an hour is summed from its
// minutes and a day from its hours, so minutes must be kept longer than an
// hour and hours longer than a day.
func (c Config) validateUsage(p *problems) {
	u := c.Usage
	positive(p, "usage.flush_interval", u.FlushInterval)
	positive(p, "usage.rollup_interval", u.RollupInterval)
	if u.FlushInterval > time.Minute {
		p.addf(at("usage.flush_interval"), "must be at most 1m, got %s", u.FlushInterval)
	}
	if u.RollupGrace < 10*time.Second || u.RollupGrace > time.Hour {
		p.addf(at("usage.rollup_grace"), "must be between 10s and 1h, got %s", u.RollupGrace)
	}
	if u.RollupGrace <= 2*u.FlushInterval {
		p.addf(at("usage.rollup_grace"), "must exceed twice usage.flush_interval (%s)", u.FlushInterval)
	}
	if u.MinuteRetention < 2*time.Hour {
		p.addf(at("usage.minute_retention"), "must be at least 2h (an hour is summed from its minutes), got %s", u.MinuteRetention)
	}
	if u.HourRetention < 48*time.Hour {
		p.addf(at("usage.hour_retention"), "must be at least 48h (a day is summed from its hours), got %s", u.HourRetention)
	}
	if u.DayRetention < 24*time.Hour {
		p.addf(at("usage.day_retention"), "must be at least 24h, got %s", u.DayRetention)
	}
}
