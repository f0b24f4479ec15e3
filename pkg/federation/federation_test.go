package federation_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/internal/oidctest"
	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/federation"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
)

const audience = "https://tollgate.example"

// credentials is a fixed list of every client's federated credentials.
type credentials []storage.FederatedCredential

func (cs credentials) ListFederatedCredentials(_ context.Context, clientID int64) ([]storage.FederatedCredential, error) {
	var out []storage.FederatedCredential
	for _, c := range cs {
		if c.ClientID == clientID {
			out = append(out, c)
		}
	}
	return out, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type fixture struct {
	is     *oidctest.Issuer
	v      *federation.Verifier
	clk    *clock
	client storage.Client
}

func newFixture(t *testing.T, allowHTTP bool, creds func(issuer string) credentials) fixture {
	t.Helper()
	is := oidctest.New(t)
	clk := &clock{t: time.Now()}
	v, err := federation.New(federation.Options{
		Credentials: creds(is.URL),
		Fetcher:     egress.New(egress.Options{AllowInsecure: allowHTTP, Timeout: 500 * time.Millisecond}),
		AllowHTTP:   allowHTTP,
		Used:        memory.NewOneTimeIDs(memory.OneTimeOptions{Now: clk.now}),
		Now:         clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{is: is, v: v, clk: clk, client: storage.Client{ID: 7}}
}

func github(issuer string) credentials {
	return credentials{{
		ID: 1, ClientID: 7, Name: "release", Issuer: issuer,
		Subject:   "repo:octo-org/deploy:ref:refs/heads/main",
		Audiences: []string{"api://other", audience},
		Claims: map[string]string{
			"repository_id":    "123456789",
			"job_workflow_ref": "octo-org/deploy/.github/workflows/release.yml@refs/heads/main",
		},
	}}
}

func (f fixture) check(t *testing.T, raw string) error {
	t.Helper()
	e, err := assertion.ParseExternal(raw)
	if err != nil {
		return err
	}
	return f.v.Check(t.Context(), f.client, e)
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(f fixture, claims map[string]any)
		ok     bool
	}{
		{"GitHub Actions token", func(fixture, map[string]any) {}, true},
		{"aud as an array naming one audience", func(_ fixture, c map[string]any) { c["aud"] = []string{"x", audience} }, true},
		{"wrong sub", func(_ fixture, c map[string]any) { c["sub"] = "repo:octo-org/deploy:ref:refs/heads/feature" }, false},
		{"sub differing in case", func(_ fixture, c map[string]any) { c["sub"] = "repo:Octo-org/deploy:ref:refs/heads/main" }, false},
		{"wrong aud", func(_ fixture, c map[string]any) { c["aud"] = "https://elsewhere.example" }, false},
		{"no aud", func(_ fixture, c map[string]any) { delete(c, "aud") }, false},
		{"wrong iss", func(_ fixture, c map[string]any) { c["iss"] = "https://token.actions.githubusercontent.com" }, false},
		{"iss with a trailing slash", func(f fixture, c map[string]any) { c["iss"] = f.is.URL + "/" }, false},
		{"expired", func(f fixture, c map[string]any) { c["exp"] = f.clk.t.Add(-time.Minute).Unix() }, false},
		{"no exp", func(_ fixture, c map[string]any) { delete(c, "exp") }, false},
		{"exp too far ahead", func(f fixture, c map[string]any) { c["exp"] = f.clk.t.Add(25 * time.Hour).Unix() }, false},
		{"nbf in the future", func(f fixture, c map[string]any) { c["nbf"] = f.clk.t.Add(time.Hour).Unix() }, false},
		{"iat in the future", func(f fixture, c map[string]any) { c["iat"] = f.clk.t.Add(time.Hour).Unix() }, false},
		{"repository_id of another repository", func(_ fixture, c map[string]any) { c["repository_id"] = "1" }, false},
		{"repository_id missing", func(_ fixture, c map[string]any) { delete(c, "repository_id") }, false},
		{"repository_id a number", func(_ fixture, c map[string]any) { c["repository_id"] = 123456789 }, false},
		{"another workflow", func(_ fixture, c map[string]any) {
			c["job_workflow_ref"] = "octo-org/deploy/.github/workflows/other.yml@refs/heads/main"
		}, false},
		{"jti too long", func(_ fixture, c map[string]any) { c["jti"] = strings.Repeat("j", 300) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, true, github)
			claims := f.is.GitHubActions(audience, f.clk.t)
			tt.change(f, claims)
			err := f.check(t, f.is.Sign(t, claims))
			if tt.ok && err != nil {
				t.Fatalf("Check: %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, assertion.ErrInvalid) {
				t.Fatalf("Check: got %v, want ErrInvalid", err)
			}
		})
	}
}

// TestRS256: GitHub Actions and Kubernetes sign RS256 (2048-bit keys).
func TestRS256(t *testing.T) {
	is := oidctest.NewWith(t, jose.RS256)
	v, err := federation.New(federation.Options{Credentials: github(is.URL), Fetcher: egress.New(egress.Options{AllowInsecure: true}),
		AllowHTTP: true, Used: memory.NewOneTimeIDs(memory.OneTimeOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	check := func(raw string) error {
		e, err := assertion.ParseExternal(raw)
		if err != nil {
			return err
		}
		return v.Check(t.Context(), storage.Client{ID: 7}, e)
	}
	if err := check(is.Sign(t, is.GitHubActions(audience, time.Now()))); err != nil {
		t.Fatalf("RS256 token: %v", err)
	}
	if err := check(is.Forge(t, is.GitHubActions(audience, time.Now()))); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("forged RS256 token: got %v, want ErrInvalid", err)
	}
}

func TestForgedSignature(t *testing.T) {
	f := newFixture(t, true, github)
	err := f.check(t, f.is.Forge(t, f.is.GitHubActions(audience, f.clk.t)))
	if !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("a token signed by an unpublished key under the published kid: got %v, want ErrInvalid", err)
	}
}

// documents is a Fetcher answering fixed documents by URL: an https issuer
// on a public name cannot run here.
type documents struct {
	docs    map[string]string
	fetched []string
}

func (d *documents) Get(_ context.Context, url string) ([]byte, error) {
	d.fetched = append(d.fetched, url)
	body, ok := d.docs[url]
	if !ok {
		return nil, errors.New("not found")
	}
	return []byte(body), nil
}

// TestJWKSURIMustBeHTTPS: a discovery document of an https issuer cannot
// send Tollgate to an http or internal jwks_uri.
func TestJWKSURIMustBeHTTPS(t *testing.T) {
	const issuer = "https://issuer.example"
	for _, jwksURI := range []string{"http://issuer.example/jwks", "https://169.254.169.254/keys", "https://localhost/jwks"} {
		t.Run(jwksURI, func(t *testing.T) {
			docs := &documents{docs: map[string]string{
				issuer + federation.DiscoveryPath: `{"issuer":"` + issuer + `","jwks_uri":"` + jwksURI + `"}`,
				jwksURI:                           `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
			}}
			v, err := federation.New(federation.Options{Credentials: github(issuer), Fetcher: docs,
				Used: memory.NewOneTimeIDs(memory.OneTimeOptions{})})
			if err != nil {
				t.Fatal(err)
			}
			is := oidctest.New(t)
			claims := is.GitHubActions(audience, time.Now())
			claims["iss"] = issuer
			e, err := assertion.ParseExternal(is.Sign(t, claims))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Check(t.Context(), storage.Client{ID: 7}, e); !errors.Is(err, assertion.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if len(docs.fetched) != 1 {
				t.Errorf("fetched %v, want the discovery document only", docs.fetched)
			}
		})
	}
}

func TestParseDiscovery(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		ok   bool
	}{
		{"minimal", `{"issuer":"https://i.example","jwks_uri":"https://i.example/keys"}`, true},
		{"other members", `{"issuer":"https://i.example","jwks_uri":"https://i.example/keys","claims_supported":["sub"],"x":{"y":1}}`, true},
		{"no issuer", `{"jwks_uri":"https://i.example/keys"}`, false},
		{"no jwks_uri", `{"issuer":"https://i.example"}`, false},
		{"issuer not a string", `{"issuer":1,"jwks_uri":"https://i.example/keys"}`, false},
		{"empty issuer", `{"issuer":"","jwks_uri":"https://i.example/keys"}`, false},
		{"issuer in capitals", `{"ISSUER":"https://i.example","jwks_uri":"https://i.example/keys"}`, false},
		{"issuer repeated", `{"issuer":"https://a.example","issuer":"https://i.example","jwks_uri":"https://i.example/keys"}`, false},
		{"trailing data", `{"issuer":"https://i.example","jwks_uri":"https://i.example/keys"}{}`, false},
		{"array", `[]`, false},
		{"null", `null`, false},
		{"issuer too long", `{"issuer":"https://` + strings.Repeat("i", 2100) + `","jwks_uri":"https://i.example/keys"}`, false},
		{"oversized", `{"issuer":"https://i.example","jwks_uri":"https://i.example/keys","pad":"` + strings.Repeat("p", federation.MaxDiscoveryBytes) + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := federation.ParseDiscovery([]byte(tt.raw))
			if tt.ok != (err == nil) {
				t.Fatalf("ParseDiscovery: %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, federation.ErrDiscovery) {
				t.Fatalf("ParseDiscovery: %v, want ErrDiscovery", err)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	f := newFixture(t, true, github)
	raw := f.is.Sign(t, f.is.GitHubActions(audience, f.clk.t))
	if err := f.check(t, raw); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := f.check(t, raw); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("replay: got %v, want ErrInvalid", err)
	}
	// Another token of the same jti is a replay too.
	claims := f.is.GitHubActions(audience, f.clk.t)
	claims["jti"] = "fixed"
	if err := f.check(t, f.is.Sign(t, claims)); err != nil {
		t.Fatalf("jti fixed, first: %v", err)
	}
	claims["run_attempt"] = "2"
	if err := f.check(t, f.is.Sign(t, claims)); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("same jti, another token: got %v, want ErrInvalid", err)
	}
}

func kubernetes(issuer string) credentials {
	return credentials{{ID: 2, ClientID: 7, Name: "cluster", Issuer: issuer,
		Subject: "system:serviceaccount:billing:exporter", Audiences: []string{audience}}}
}

func TestKubernetesWithoutJTI(t *testing.T) {
	f := newFixture(t, true, kubernetes)
	raw := f.is.Sign(t, f.is.Kubernetes(audience, f.clk.t))
	if err := f.check(t, raw); err != nil {
		t.Fatalf("Kubernetes token: %v", err)
	}
	if err := f.check(t, raw); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("Kubernetes token replayed (no jti: its digest is spent): got %v, want ErrInvalid", err)
	}
	other := f.is.Kubernetes(audience, f.clk.t)
	other["sub"] = "system:serviceaccount:billing:other"
	if err := f.check(t, f.is.Sign(t, other)); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("another service account: got %v, want ErrInvalid", err)
	}
}

func TestNoCredentialOfTheIssuer(t *testing.T) {
	f := newFixture(t, true, func(string) credentials { return github("https://token.actions.githubusercontent.com") })
	err := f.check(t, f.is.Sign(t, f.is.GitHubActions(audience, f.clk.t)))
	if !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if n := f.is.Fetches.Load(); n != 0 {
		t.Errorf("the issuer was fetched %d times for a client that does not trust it; want 0", n)
	}
}

func TestHTTPIssuerRefused(t *testing.T) {
	f := newFixture(t, false, github)
	err := f.check(t, f.is.Sign(t, f.is.GitHubActions(audience, f.clk.t)))
	if !errors.Is(err, assertion.ErrInvalid) || !strings.Contains(err.Error(), "https") {
		t.Fatalf("http loopback issuer without the setting: got %v, want ErrInvalid (https only)", err)
	}
	if n := f.is.Fetches.Load(); n != 0 {
		t.Errorf("the issuer was fetched %d times; want 0", n)
	}
}

func TestHostileIssuer(t *testing.T) {
	big := bytes.Repeat([]byte(" "), 70<<10)
	tests := []struct {
		name  string
		setup func(t *testing.T, f fixture)
	}{
		{"unknown kid", func(t *testing.T, f fixture) { f.is.Unpublished(t) }},
		{"down", func(_ *testing.T, f fixture) { f.is.Close() }},
		{"slow", func(_ *testing.T, f fixture) { f.is.Delay(2 * time.Second) }},
		{"discovery names another issuer", func(_ *testing.T, f fixture) {
			f.is.ServeDiscovery([]byte(`{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"` + f.is.URL + `/jwks"}`))
		}},
		{"discovery names the issuer twice", func(_ *testing.T, f fixture) {
			f.is.ServeDiscovery([]byte(`{"issuer":"https://evil.example","issuer":"` + f.is.URL + `","jwks_uri":"` + f.is.URL + `/jwks"}`))
		}},
		{"discovery oversized", func(_ *testing.T, f fixture) {
			f.is.ServeDiscovery(append([]byte(`{"issuer":"`+f.is.URL+`","jwks_uri":"`+f.is.URL+`/jwks"}`), big...))
		}},
		{"discovery not JSON", func(_ *testing.T, f fixture) { f.is.ServeDiscovery([]byte(`<html>`)) }},
		{"jwks oversized", func(_ *testing.T, f fixture) { f.is.ServeJWKS(append([]byte(`{"keys":[]}`), big...)) }},
		{"jwks with too many keys", func(t *testing.T, f fixture) {
			for range 9 {
				f.is.Rotate(t)
			}
		}},
		{"jwks symmetric", func(_ *testing.T, f fixture) { f.is.ServeJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, true, github)
			claims := f.is.GitHubActions(audience, f.clk.t)
			tt.setup(t, f)
			raw := f.is.Sign(t, claims)
			start := time.Now()
			err := f.check(t, raw)
			if !errors.Is(err, assertion.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("took %v, want at most the fetch timeout", d)
			}
		})
	}
}

func TestRefetchOnUnknownKID(t *testing.T) {
	f := newFixture(t, true, github)
	if err := f.check(t, f.is.Sign(t, f.is.GitHubActions(audience, f.clk.t))); err != nil {
		t.Fatal(err)
	}
	fetched := f.is.Fetches.Load()
	// A rotation within the refetch interval: the first token of the new
	// kid finds the cached set too recent to fetch again.
	f.is.Rotate(t)
	if err := f.check(t, f.is.Sign(t, f.is.GitHubActions(audience, f.clk.t))); !errors.Is(err, assertion.ErrInvalid) {
		t.Fatalf("new kid within the refetch interval: got %v, want ErrInvalid", err)
	}
	if got := f.is.Fetches.Load(); got != fetched {
		t.Fatalf("fetches within the refetch interval: %d, want %d", got, fetched)
	}
	f.clk.t = f.clk.t.Add(federation.DefaultRefetchInterval)
	if err := f.check(t, f.is.Sign(t, f.is.GitHubActions(audience, f.clk.t))); err != nil {
		t.Fatalf("new kid after the refetch interval: %v", err)
	}
	if got := f.is.Fetches.Load(); got != fetched+2 {
		t.Fatalf("fetches: %d, want %d (discovery and JWKS once more)", got, fetched+2)
	}
	// A known kid is served from the cache.
	if err := f.check(t, f.is.Sign(t, f.is.GitHubActions(audience, f.clk.t))); err != nil {
		t.Fatal(err)
	}
	if got := f.is.Fetches.Load(); got != fetched+2 {
		t.Fatalf("fetches for a known kid: %d, want %d", got, fetched+2)
	}
}

func TestDownIssuerFetchedOncePerInterval(t *testing.T) {
	f := newFixture(t, true, github)
	f.is.ServeDiscovery([]byte(`{}`))
	for range 5 {
		if err := f.check(t, f.is.Sign(t, f.is.GitHubActions(audience, f.clk.t))); !errors.Is(err, assertion.ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	}
	if got := f.is.Fetches.Load(); got != 1 {
		t.Fatalf("fetches of a failing issuer within the interval: %d, want 1", got)
	}
}
