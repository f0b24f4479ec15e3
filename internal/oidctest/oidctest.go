// Package oidctest is a small OpenID Connect issuer for tests: an
// httptest server with a discovery document and a JWK Set, signing tokens
// shaped like those of GitHub Actions and of Kubernetes service accounts.
// Its documents can be made to lie, grow or fail, to test the hostile
// cases of workload identity federation.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a running test issuer. Its URL is the issuer identifier.
type Issuer struct {
	URL string
	srv *httptest.Server

	alg jose.SignatureAlgorithm

	mu        sync.Mutex
	key       crypto.Signer
	kid       string
	published []jose.JSONWebKey
	discovery []byte // served as is when set
	jwks      []byte // served as is when set
	delay     time.Duration

	// Fetches counts the requests of either document.
	Fetches atomic.Int64
}

// New starts an issuer signing ES256, stopped at the end of the test.
func New(t testing.TB) *Issuer { return NewWith(t, jose.ES256) }

// NewWith starts an issuer signing with alg: ES256 or RS256 (what GitHub
// Actions and Kubernetes use).
func NewWith(t testing.TB, alg jose.SignatureAlgorithm) *Issuer {
	t.Helper()
	is := &Issuer{alg: alg}
	is.srv = httptest.NewServer(http.HandlerFunc(is.serve))
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	is.Rotate(t)
	return is
}

// newKey makes a key of the issuer's algorithm.
func (is *Issuer) newKey(t testing.TB) crypto.Signer {
	t.Helper()
	var key crypto.Signer
	var err error
	if is.alg == jose.RS256 {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Rotate makes a new signing key with a new kid and publishes it beside
// the old ones.
func (is *Issuer) Rotate(t testing.TB) {
	t.Helper()
	key := is.newKey(t)
	is.mu.Lock()
	defer is.mu.Unlock()
	is.key, is.kid = key, rand.Text()[:16]
	is.published = append(is.published, jose.JSONWebKey{Key: key.Public(), KeyID: is.kid, Algorithm: string(is.alg), Use: "sig"})
}

// Unpublished makes a key the issuer signs with but does not publish.
func (is *Issuer) Unpublished(t testing.TB) {
	t.Helper()
	key := is.newKey(t)
	is.mu.Lock()
	defer is.mu.Unlock()
	is.key, is.kid = key, rand.Text()[:16]
}

// ServeDiscovery makes the issuer serve body as its discovery document
// (nil: the true one).
func (is *Issuer) ServeDiscovery(body []byte) { is.mu.Lock(); is.discovery = body; is.mu.Unlock() }

// ServeJWKS makes the issuer serve body as its JWK Set (nil: the true one).
func (is *Issuer) ServeJWKS(body []byte) { is.mu.Lock(); is.jwks = body; is.mu.Unlock() }

// Delay makes every answer wait d first.
func (is *Issuer) Delay(d time.Duration) { is.mu.Lock(); is.delay = d; is.mu.Unlock() }

// Close stops the issuer: its documents are then unreachable.
func (is *Issuer) Close() { is.srv.Close() }

func (is *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	delay, discovery, jwks := is.delay, is.discovery, is.jwks
	published := append([]jose.JSONWebKey(nil), is.published...)
	is.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	is.Fetches.Add(1)
	var body []byte
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		body = discovery
		if body == nil {
			body, _ = json.Marshal(map[string]any{
				"issuer":                                is.URL,
				"jwks_uri":                              is.URL + "/jwks",
				"response_types_supported":              []string{"id_token"},
				"subject_types_supported":               []string{"public"},
				"id_token_signing_alg_values_supported": []string{string(is.alg)},
			})
		}
	case "/jwks":
		body = jwks
		if body == nil {
			body, _ = json.Marshal(jose.JSONWebKeySet{Keys: published})
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// Sign signs claims with the current key, under the current kid.
func (is *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	key, kid := is.key, is.kid
	is.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: is.alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Forge signs claims with a fresh key that is not published, under the
// current kid: a token only a signature check refuses.
func (is *Issuer) Forge(t testing.TB, claims map[string]any) string {
	t.Helper()
	key := is.newKey(t)
	is.mu.Lock()
	kid := is.kid
	is.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: is.alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// GitHubActions returns the claims of a GitHub Actions OIDC token of a
// run of workflow release.yml on main in octo-org/deploy (repository id
// 123456789), for audience aud, issued now and valid 5 minutes.
func (is *Issuer) GitHubActions(aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss":                   is.URL,
		"sub":                   "repo:octo-org/deploy:ref:refs/heads/main",
		"aud":                   aud,
		"jti":                   rand.Text(),
		"iat":                   now.Unix(),
		"nbf":                   now.Add(-5 * time.Second).Unix(),
		"exp":                   now.Add(5 * time.Minute).Unix(),
		"ref":                   "refs/heads/main",
		"sha":                   "d6fde92930d4715a2b49857d24b940956b26d2d3",
		"repository":            "octo-org/deploy",
		"repository_id":         "123456789",
		"repository_owner":      "octo-org",
		"repository_owner_id":   "987654",
		"run_id":                "8842001",
		"run_number":            "42",
		"run_attempt":           "1",
		"actor":                 "octocat",
		"actor_id":              "583231",
		"workflow":              "release",
		"event_name":            "push",
		"ref_type":              "branch",
		"job_workflow_ref":      "octo-org/deploy/.github/workflows/release.yml@refs/heads/main",
		"runner_environment":    "github-hosted",
		"repository_visibility": "private",
	}
}

// Kubernetes returns the claims of a projected service account token of
// service account exporter in namespace billing, for audience aud, issued
// now and valid an hour. It has no jti, as tokens of Kubernetes before 1.29
// have none.
func (is *Issuer) Kubernetes(aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss": is.URL,
		"sub": "system:serviceaccount:billing:exporter",
		"aud": []string{aud},
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "billing",
			"pod":            map[string]any{"name": "exporter-7d9c", "uid": "1a2b3c4d-0000-4000-8000-000000000001"},
			"serviceaccount": map[string]any{"name": "exporter", "uid": "5e6f7a8b-0000-4000-8000-000000000002"},
		},
	}
}
