package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/cache"
	"github.com/tollgate/tollgate/storage/redis/redistest"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// In-process benchmarks of whole requests through the wired public handler
// (the same app.New, stores and logger settings as `tollgate serve`), without
// the network: the HTTP layer is httptest's. They complement .ci/bench.sh,
// which measures the same paths over loopback with wrk.
//
//	go test -run '^$' -bench . -benchmem ./e2e/

// benchBackends are the storage setups the request benchmarks run on.
var benchBackends = []string{"embedded", "postgres+redis"}

// benchApp is a wired server with a root account, an active user and a
// client allowed client_credentials, eskimi_dsp and introspection.
type benchApp struct {
	handler   http.Handler
	db        *cache.Store
	client    storage.Client
	secret    string
	username  string
	password  string
	hash      string // the user's password hash
	passwords *secret.Passwords
}

// newBenchApp wires the server on backend: "embedded" (SQLite, tokens,
// limits and brute-force counters in process) or "postgres+redis" (a
// PostgreSQL database of its own and a Redis key prefix of its own, both
// removed afterwards). Logs go to io.Discard at the default level, as
// production logs at it; passwords use the production argon2id parameters.
func newBenchApp(b *testing.B, backend string) *benchApp {
	b.Helper()
	ctx := b.Context()
	cfg := config.Default()
	cfg.Issuer = "https://auth.example.test"
	cfg.Credentials.AccessRights = config.DefaultAccessRights()
	cfg.RateLimits.Classes = config.DefaultRateClasses()
	// A class the check benchmarks never exhaust.
	cfg.RateLimits.Classes["bench"] = "1000000"
	// Load from one client: no token rate, as in .ci/bench.sh.
	cfg.RateLimits.TokenRate = 0
	switch backend {
	case "embedded":
		cfg.Database.URL = filepath.Join(b.TempDir(), "tollgate.db")
	case "postgres+redis":
		cfg.Database.URL = benchPostgres(b)
		_, prefix := redistest.New(b) // deletes the keys under prefix afterwards
		cfg.Redis.URL = redistest.URL()
		cfg.Redis.KeyPrefix = prefix
	default:
		b.Fatalf("unknown backend %q", backend)
	}
	logger := app.NewLogger(cfg.Log, io.Discard)
	raw, err := app.OpenDatabase(ctx, cfg, true, logger)
	if err != nil {
		b.Fatalf("open database: %v", err)
	}
	b.Cleanup(func() { raw.Close() })
	be, closeBackends, err := app.OpenBackends(cfg)
	if err != nil {
		b.Fatalf("open backends: %v", err)
	}
	b.Cleanup(func() { _ = closeBackends() })
	db := cache.New(raw, cache.Options{Logger: logger})
	keys := config.Keys{
		TokenSecret:      []byte("0123456789abcdef0123456789abcdef-token"),
		PepperID:         "1",
		Pepper:           []byte("0123456789abcdef0123456789abcdef-pepper"),
		KeyEncryptionKey: []byte("0123456789abcdef0123456789abcdef"),
	}
	passwords, err := secret.NewPasswords(secret.DefaultArgon2Params)
	if err != nil {
		b.Fatal(err)
	}
	a, err := app.New(cfg, app.Deps{Keys: keys, DB: db, SigningKeys: raw, Tokens: be.Tokens, Limiter: be.Limiter, Meter: be.Meter, TokenMeter: be.TokenMeter, Counter: be.Counter, Failures: be.Failures,
		OneTimeIDs: be.OneTimeIDs, Proofs: be.Proofs, Passwords: passwords, Logger: logger})
	if err != nil {
		b.Fatalf("app.New: %v", err)
	}

	ba := &benchApp{handler: a.Public(), username: "bench", password: "correct horse battery staple", passwords: passwords, db: db}
	account, err := db.CreateAccount(ctx, storage.Account{Name: "root", Status: storage.StatusActive})
	if err != nil {
		b.Fatalf("create account: %v", err)
	}
	if ba.hash, err = passwords.Hash(ba.password); err != nil {
		b.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, storage.User{AccountID: account.ID, Username: ba.username, PasswordHash: ba.hash,
		Role: storage.RoleMember, Status: storage.StatusActive}); err != nil {
		b.Fatalf("create user: %v", err)
	}
	hasher, err := app.NewHasher(keys)
	if err != nil {
		b.Fatal(err)
	}
	if ba.secret, err = secret.Generate(); err != nil {
		b.Fatal(err)
	}
	hash, err := hasher.Hash(ctx, []byte(ba.secret))
	if err != nil {
		b.Fatal(err)
	}
	ba.client, err = db.CreateClient(ctx, storage.Client{AccountID: account.ID, Name: "bench", Kind: storage.KindClient,
		SecretHash: string(hash), GrantTypes: []string{"client_credentials", cfg.Grants.EskimiDSPName},
		Scopes: []string{"read", "write"}, MayIntrospect: true, Status: storage.StatusActive})
	if err != nil {
		b.Fatalf("create client: %v", err)
	}
	return ba
}

// benchPostgres creates a database of its own on the test PostgreSQL server
// and drops it when b ends (sqltest.Postgres, for a benchmark).
func benchPostgres(b *testing.B) string {
	b.Helper()
	serverURL := os.Getenv("TOLLGATE_TEST_POSTGRES_URL")
	if serverURL == "" {
		serverURL = sqltest.DefaultPostgresURL
	}
	connect := func(ctx context.Context) (*pgx.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return pgx.Connect(ctx, serverURL)
	}
	admin, err := connect(b.Context())
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("postgres unreachable (CI=true, not skipping): %v", err)
		}
		b.Skipf("postgres unreachable, skipping: %v", err)
	}
	defer admin.Close(context.Background())
	name := pgx.Identifier{"tollgate_bench_" + strings.ToLower(rand.Text()[:16])}.Sanitize()
	if _, err := admin.Exec(b.Context(), "CREATE DATABASE "+name); err != nil {
		b.Fatalf("create database: %v", err)
	}
	b.Cleanup(func() {
		conn, err := connect(context.Background())
		if err != nil {
			b.Errorf("drop database: %v", err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			b.Errorf("drop database: %v", err)
		}
	})
	u, err := url.Parse(serverURL)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + strings.Trim(name, `"`)
	return u.String()
}

// serve sends one request through the handler and fails b unless it
// answers 200.
func (ba *benchApp) serve(b *testing.B, method, path, contentType, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	ba.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s %s: status %d, body %s", method, path, rec.Code, rec.Body)
	}
	return rec
}

func (ba *benchApp) basic() string { return basic(ba.client.ID, ba.secret) }

// token answers a client_credentials token of the bench client.
func (ba *benchApp) token(b *testing.B) string {
	rec := ba.serve(b, http.MethodPost, "/oauth/token", formCT, "grant_type=client_credentials", "Authorization", ba.basic())
	_, rest, ok := strings.Cut(rec.Body.String(), `"access_token":"`)
	tok, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		b.Fatalf("no access_token in %s", rec.Body)
	}
	return tok
}

// benchRun runs request serially and, as "parallel", from 8 goroutines per
// GOMAXPROCS.
func benchRun(b *testing.B, request func()) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			request()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				request()
			}
		})
	})
}

// BenchmarkTokenClientCredentials: POST /oauth/token, client_credentials
// with Basic authentication and a form body.
func BenchmarkTokenClientCredentials(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			ba := newBenchApp(b, backend)
			basic := ba.basic()
			benchRun(b, func() {
				ba.serve(b, http.MethodPost, "/oauth/token", formCT, "grant_type=client_credentials", "Authorization", basic)
			})
		})
	}
}

// BenchmarkTokenExchange: POST /oauth/token, token exchange (RFC 8693) of
// a client_credentials token for one acting on a child account: the
// client_credentials request's work plus the subject token's validation
// (its record, client, accounts) and the descendant check. Compare with
// BenchmarkTokenClientCredentials.
//
//	go test -run '^$' -bench 'TokenExchange|TokenClientCredentials' -benchmem ./e2e/
func BenchmarkTokenExchange(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			ba := newBenchApp(b, backend)
			child, err := ba.db.CreateAccount(b.Context(), storage.Account{Name: "child", ParentID: ba.client.AccountID, Status: storage.StatusActive})
			if err != nil {
				b.Fatal(err)
			}
			basic := ba.basic()
			body := form("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token", ba.token(b),
				"subject_token_type", "urn:ietf:params:oauth:token-type:access_token", "audience", "urn:tollgate:account:"+strconv.FormatInt(child.ID, 10))
			benchRun(b, func() {
				ba.serve(b, http.MethodPost, "/oauth/token", formCT, body, "Authorization", basic)
			})
		})
	}
}

// BenchmarkIntrospect: POST /oauth/introspect of an active token by a
// Basic-authenticated resource server, with the real token store (Redis on
// postgres+redis) and the client cache in front of the database.
func BenchmarkIntrospect(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			ba := newBenchApp(b, backend)
			basic := ba.basic()
			body := "token=" + ba.token(b)
			benchRun(b, func() {
				rec := ba.serve(b, http.MethodPost, "/oauth/introspect", formCT, body, "Authorization", basic)
				if !strings.HasPrefix(rec.Body.String(), `{"active":true`) {
					b.Fatalf("introspection answer %s, want active", rec.Body)
				}
			})
		})
	}
}

// BenchmarkCheckDPoP: GET /auth/check of a Bearer token, and of a
// DPoP-bound token with a fresh proof each time (the proof is made with the
// timer stopped: its signature is the client's cost). The difference is the
// proof's verification: parsing, an ES256 signature check, the thumbprint,
// and the jti's SET NX (a Redis round trip on postgres+redis).
//
//	go test -run '^$' -bench CheckDPoP -benchmem ./e2e/
func BenchmarkCheckDPoP(b *testing.B) {
	forwarded := []string{"X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "api.example.test",
		"X-Forwarded-Uri", "/v1/events", "X-Tollgate-Rate-Class", "bench"}
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			ba := newBenchApp(b, backend)
			bearer := ba.token(b)
			b.Run("bearer", func(b *testing.B) {
				b.ReportAllocs()
				h := append([]string{"Authorization", "Bearer " + bearer}, forwarded...)
				for b.Loop() {
					ba.serve(b, http.MethodGet, "/auth/check", "", "", h...)
				}
			})
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			k := &dpopKey{t: b, key: key, now: time.Now}
			rec := ba.serve(b, http.MethodPost, "/oauth/token", formCT, "grant_type=client_credentials", "Authorization", ba.basic(),
				"DPoP", k.proof("POST", tokenURL, ""))
			_, rest, _ := strings.Cut(rec.Body.String(), `"access_token":"`)
			bound, _, _ := strings.Cut(rest, `"`)
			b.Run("dpop", func(b *testing.B) {
				b.ReportAllocs()
				h := append([]string{"Authorization", "DPoP " + bound, "DPoP", ""}, forwarded...)
				for b.Loop() {
					b.StopTimer()
					h[3] = k.proof("GET", apiURL, bound)
					b.StartTimer()
					ba.serve(b, http.MethodGet, "/auth/check", "", "", h...)
				}
			})
		})
	}
}

// BenchmarkEskimiDSP compares a whole eskimi_dsp token request (JSON body,
// client authentication, brute-force guard, user lookup, password
// verification, account check, token minting and storing, answer) on the
// embedded backend with the argon2id verification of the same password
// alone, at the production parameters (secret.DefaultArgon2Params: 19 MiB,
// 2 iterations, 1 lane). The grant is CPU-bound by design: the request
// should cost at most 10 % more than "argon2id".
//
//	go test -run '^$' -bench EskimiDSP -benchmem ./e2e/
func BenchmarkEskimiDSP(b *testing.B) {
	ba := newBenchApp(b, "embedded")
	b.Run("argon2id", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok, err := ba.passwords.Verify(ba.hash, ba.password)
			if err != nil || !ok {
				b.Fatalf("Verify() = %t, %v; want true, nil", ok, err)
			}
		}
	})
	body := `{"grant_type":"eskimi_dsp","username":"` + ba.username + `","password":"` + ba.password +
		`","client_id":` + strconv.FormatInt(ba.client.ID, 10) + `,"client_secret":"` + ba.secret + `"}`
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ba.serve(b, http.MethodPost, "/oauth/token", "application/json", body)
		}
	})
	// Both in turn, in alternating order, so that a noisy machine and the
	// garbage collector (each verification allocates 19 MiB) slow them
	// alike: the medians of each, and their ratio, the figure to compare
	// with 1.10.
	b.Run("paired", func(b *testing.B) {
		var verify, request []time.Duration
		timed := func(f func()) time.Duration { t := time.Now(); f(); return time.Since(t) }
		v := func() {
			if ok, err := ba.passwords.Verify(ba.hash, ba.password); err != nil || !ok {
				b.Fatalf("Verify() = %t, %v; want true, nil", ok, err)
			}
		}
		r := func() { ba.serve(b, http.MethodPost, "/oauth/token", "application/json", body) }
		for i := 0; b.Loop(); i++ {
			if i%2 == 0 {
				verify = append(verify, timed(v))
				request = append(request, timed(r))
			} else {
				request = append(request, timed(r))
				verify = append(verify, timed(v))
			}
		}
		median := func(d []time.Duration) float64 {
			slices.Sort(d)
			return float64(d[len(d)/2])
		}
		mv, mr := median(verify), median(request)
		b.ReportMetric(mv, "argon2id-ns")
		b.ReportMetric(mr, "request-ns")
		b.ReportMetric(mr/mv, "request/argon2id")
	})
}

// BenchmarkTokenPrivateKeyJWT: POST /oauth/token, client_credentials
// authenticated by an ES256 client assertion (private_key_jwt), beside
// BenchmarkTokenClientCredentials: the difference is the assertion's
// parsing and signature verification and the jti's single-use write (Redis
// on postgres+redis). Each assertion is single-use: b.N of them are signed
// before the timer starts.
func BenchmarkTokenPrivateKeyJWT(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend, func(b *testing.B) {
			ba := newBenchApp(b, backend)
			k := newClientKeyB(b, "bench")
			c, err := ba.db.CreateClient(b.Context(), storage.Client{AccountID: ba.client.AccountID, Name: "bench pkjwt", Kind: storage.KindClient,
				SecretHash: ba.client.SecretHash, GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, Status: storage.StatusActive,
				TokenEndpointAuthMethod: storage.AuthPrivateKeyJWT, JWKS: k.set(b)})
			if err != nil {
				b.Fatal(err)
			}
			bodies := func(b *testing.B) []string {
				out := make([]string, b.N)
				for i := range out {
					out[i] = k.body(b, c.ID)
				}
				return out
			}
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				all := bodies(b)
				b.ResetTimer()
				for i := range b.N {
					ba.serve(b, http.MethodPost, "/oauth/token", formCT, all[i])
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(8)
				all := bodies(b)
				var next atomic.Int64
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						ba.serve(b, http.MethodPost, "/oauth/token", formCT, all[next.Add(1)-1])
					}
				})
			})
		})
	}
}

// benchKey is an ES256 client key for the benchmark.
type benchKey struct {
	priv *ecdsa.PrivateKey
	kid  string
	sig  jose.Signer
}

func newClientKeyB(b *testing.B, kid string) benchKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		b.Fatal(err)
	}
	return benchKey{priv: priv, kid: kid, sig: sig}
}

func (k benchKey) set(b *testing.B) string {
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		b.Fatal(err)
	}
	return string(raw)
}

// body is a token request with a fresh assertion of client id.
func (k benchKey) body(b *testing.B, id int64) string {
	sub := strconv.FormatInt(id, 10)
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"iss": sub, "sub": sub, "aud": "https://auth.example.test",
		"iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix(), "jti": rand.Text()})
	jws, err := k.sig.Sign(claims)
	if err != nil {
		b.Fatal(err)
	}
	a, _ := jws.CompactSerialize()
	return "grant_type=client_credentials&client_assertion_type=" + url.QueryEscape(assertionType) + "&client_assertion=" + a
}
