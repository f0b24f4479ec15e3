// Command tollgate-floor is the floor .ci/bench.sh measures Tollgate
// against: a minimal HTTP server doing the least work each benchmarked path
// must do, on the same Redis, so that Tollgate's throughput can be reported
// as a ratio to it (issue 5).
//
//   - POST /oauth/token: read the form, one Redis SET with a TTL of a random
//     32-byte token, write a JSON token answer.
//   - POST /oauth/introspect: read the form, one Redis GET of the token,
//     write {"active":true,...} (or {"active":false}).
//   - GET /auth/check: one Redis GET of the Bearer token or X-API-Key,
//     200 with a header (401 when unknown).
//
// With a client_assertion (private_key_jwt), the token path verifies it:
// an ES256 compact JWS checked with the key of -assertion-jwks, its exp
// read, and its jti set once in Redis until then (401 when it was used):
// the cost that authentication cannot avoid.
//
// With grant_type=eskimi_dsp, the token path also verifies the password
// parameter against an argon2id hash of FloorPassword made at start with
// Tollgate's parameters (secret.DefaultArgon2Params): the cost that grant
// cannot avoid.
//
// No client authentication, token minting, rate limiting or logging: that
// is the real work Tollgate does and the floor skips. Every key it writes is
// under -prefix; the bench script deletes them.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/secret"
	tgredis "github.com/tollgate/tollgate/storage/redis"
)

// FloorPassword is the one password the floor's eskimi_dsp path accepts.
const FloorPassword = "floor password"

func main() {
	addr := flag.String("addr", envOr("TOLLGATE_FLOOR_ADDR", "127.0.0.1:18081"), "listen address ($TOLLGATE_FLOOR_ADDR)")
	redisURL := flag.String("redis", envOr("TOLLGATE_FLOOR_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL ($TOLLGATE_FLOOR_REDIS_URL)")
	prefix := flag.String("prefix", envOr("TOLLGATE_FLOOR_PREFIX", "tgfloor:"), "Redis key prefix ($TOLLGATE_FLOOR_PREFIX)")
	ttl := flag.Duration("ttl", time.Hour, "token lifetime (Redis TTL)")
	concurrency := flag.Int("password-concurrency", 0, "eskimi_dsp password verifications at once (0: unbounded, as Tollgate)")
	jwksFile := flag.String("assertion-jwks", "", "JWK Set whose first key verifies client assertions (none: assertions are refused)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *redisURL, *prefix, *ttl, *concurrency, *jwksFile); err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-floor:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, addr, redisURL, prefix string, ttl time.Duration, concurrency int, jwksFile string) error {
	// The same client settings as Tollgate's, so the floor differs only in
	// the work per request.
	client, err := tgredis.NewClient(redisURL, tgredis.ClientOptions{})
	if err != nil {
		return err
	}
	defer func() { _ = client.Close() }()
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}

	passwords, err := secret.NewPasswords(secret.DefaultArgon2Params)
	if err != nil {
		return err
	}
	hash, err := passwords.Hash(FloorPassword)
	if err != nil {
		return err
	}
	verify := func(_ context.Context, password string) bool {
		ok, err := passwords.Verify(hash, password)
		return err == nil && ok
	}
	if concurrency > 0 {
		// At most concurrency verifications hold argon2id's memory at once;
		// a request whose client has gone stops waiting.
		sem := make(chan struct{}, concurrency)
		unbounded := verify
		verify = func(ctx context.Context, password string) bool {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return false
			}
			defer func() { <-sem }()
			return unbounded(ctx, password)
		}
	}

	var assertionKey any
	if jwksFile != "" {
		raw, err := os.ReadFile(jwksFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return err
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
			return fmt.Errorf("%s: not a JWK Set with a key", jwksFile)
		}
		assertionKey = set.Keys[0].Key
	}
	h := newHandler(client, prefix, ttl, verify)
	if assertionKey != nil {
		h = withAssertions(h, client, prefix, assertionKey)
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// record stands in for a stored token record (Tollgate's is 60 bytes).
var record = []byte(strings.Repeat("r", 60))

// newHandler answers the floor's three endpoints over client, every key
// under prefix; verify checks an eskimi_dsp password.
func newHandler(client goredis.UniversalClient, prefix string, ttl time.Duration, verify func(ctx context.Context, password string) bool) http.Handler {
	expiresIn := int64(ttl / time.Second)
	mux := http.NewServeMux()

	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if r.PostForm.Get("grant_type") == "eskimi_dsp" {
			if !verify(r.Context(), r.PostForm.Get("password")) {
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
				return
			}
		}
		raw := make([]byte, 32)
		_, _ = rand.Read(raw) // never fails (crypto/rand)
		token := base64.RawURLEncoding.EncodeToString(raw)
		if err := client.Set(r.Context(), prefix+"t:"+token, record, ttl).Err(); err != nil {
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		_, _ = fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":%d}`, token, expiresIn)
	})

	mux.HandleFunc("POST /oauth/introspect", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		_, err := client.Get(r.Context(), prefix+"t:"+r.PostForm.Get("token")).Bytes()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		switch {
		case errors.Is(err, goredis.Nil):
			_, _ = w.Write([]byte(`{"active":false}`))
		case err != nil:
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		default:
			_, _ = fmt.Fprintf(w, `{"active":true,"client_id":"floor","token_type":"bearer","exp":%d}`,
				time.Now().Add(ttl).Unix())
		}
	})

	mux.HandleFunc("GET /auth/check", func(w http.ResponseWriter, r *http.Request) {
		cred := r.Header.Get("X-API-Key")
		if auth := r.Header.Get("Authorization"); cred == "" && len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			cred = auth[7:]
		}
		if cred == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, err := client.Get(r.Context(), prefix+"t:"+cred).Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
			w.WriteHeader(http.StatusUnauthorized)
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.Header().Set("X-Tollgate-Subject", "floor")
			w.WriteHeader(http.StatusOK)
		}
	})
	return mux
}

// withAssertions verifies the client assertion of a token request before
// next serves it: the signature, exp, and the jti set once in Redis.
func withAssertions(next http.Handler, client goredis.UniversalClient, prefix string, key any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		raw := r.PostForm.Get("client_assertion")
		if raw == "" {
			next.ServeHTTP(w, r)
			return
		}
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		payload, err := jws.Verify(key)
		var claims struct {
			Exp int64  `json:"exp"`
			JTI string `json:"jti"`
		}
		if err != nil || json.Unmarshal(payload, &claims) != nil || claims.JTI == "" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		left := time.Until(time.Unix(claims.Exp, 0))
		if left <= 0 {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		err = client.SetArgs(r.Context(), prefix+"j:"+claims.JTI, "", goredis.SetArgs{Mode: "NX", TTL: left}).Err()
		switch {
		case errors.Is(err, goredis.Nil):
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r)
	})
}
