package e2e

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/oidctest"
	"github.com/tollgate/tollgate/pkg/client"
	"github.com/tollgate/tollgate/storage"
)

// fedAudience is the audience the workloads ask their issuer for.
const fedAudience = "https://auth.example.test"

func allowHTTPIssuers(c *config.Config) { c.Federation.AllowHTTPIssuers = true }

// fedClient creates, through the management API as alice (an admin), a
// client and a federated credential of it trusting issuer for subject,
// with claim conditions, and returns the client id and the credential.
func (f *fixture) fedClient(t *testing.T, name, issuer, subject string, claims map[string]string) (int64, map[string]any) {
	t.Helper()
	admin := f.admUser("alice")
	c := f.admWant(t, admin, http.MethodPost, "/clients", admBody(map[string]any{"name": name, "grant_types": []string{"client_credentials"},
		"access_rights": "events"}), http.StatusCreated)
	if s, ok := c["client_secret"].(string); ok {
		f.secrets = append(f.secrets, s)
	}
	id := admID(t, c)
	body := map[string]any{"name": name, "issuer": issuer, "subject": subject, "audiences": []string{"api://other", fedAudience}}
	if claims != nil {
		body["claims"] = claims
	}
	fc := f.admWant(t, admin, http.MethodPost, admPath("/clients", id)+"/federated-credentials", admBody(body), http.StatusCreated)
	return id, fc
}

// fedToken asks for a client_credentials token of client id with the
// external token ext as its client assertion.
func (f *fixture) fedToken(id int64, ext string, extra ...string) response {
	f.t.Helper()
	f.secrets = append(f.secrets, ext)
	return f.tokenWithAssertion(ext, append([]string{"client_id", strconv.FormatInt(id, 10)}, extra...)...)
}

const (
	ghSubject  = "repo:octo-org/deploy:ref:refs/heads/main"
	ghWorkflow = "octo-org/deploy/.github/workflows/release.yml@refs/heads/main"
)

// TestFederation: a client whose admin trusts a GitHub Actions issuer and
// a Kubernetes cluster gets tokens with their workloads' own tokens, at
// the token, introspection and revocation endpoints; every wrong, expired,
// replayed or unverifiable token is invalid_client, and every change is
// audited.
func TestFederation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		// GitHub Actions and Kubernetes sign RS256.
		gh := oidctest.NewWith(t, jose.RS256)
		k8s := oidctest.NewWith(t, jose.RS256)
		id, fc := f.fedClient(t, "release", gh.URL, ghSubject, map[string]string{"repository_id": "123456789", "job_workflow_ref": ghWorkflow})
		if fc["issuer"] != gh.URL || fc["subject"] != ghSubject || fc["claims"].(map[string]any)["repository_id"] != "123456789" {
			t.Fatalf("created credential = %v", fc)
		}
		admin := f.admUser("alice")
		path := admPath("/clients", id) + "/federated-credentials"
		f.admWant(t, admin, http.MethodPost, path, admBody(map[string]any{"name": "cluster", "issuer": k8s.URL,
			"subject": "system:serviceaccount:billing:exporter", "audiences": []string{fedAudience}}), http.StatusCreated)
		now := f.clock.now
		// Kubernetes tokens have no jti and RS256 signatures are
		// deterministic: two tokens of one second are one token, spent
		// once. Each of these is issued a second apart.
		issued := 0
		k8sToken := func() string {
			issued++
			return k8s.Sign(t, set(k8s.Kubernetes(fedAudience, now()), "iat", now().Unix()-int64(issued)))
		}

		t.Run("GitHub Actions", func(t *testing.T) {
			res := f.fedToken(id, gh.Sign(t, gh.GitHubActions(fedAudience, now())), "scope", "events")
			if res.status != http.StatusOK {
				t.Fatalf("status %d, body %s", res.status, res.body)
			}
			if !f.active(res.json(t)["access_token"].(string)) {
				t.Fatal("the token is not active")
			}
		})
		t.Run("Kubernetes", func(t *testing.T) {
			res := f.fedToken(id, k8sToken())
			if res.status != http.StatusOK {
				t.Fatalf("status %d, body %s", res.status, res.body)
			}
		})
		t.Run("list", func(t *testing.T) {
			items := admItems(t, f.admWant(t, admin, http.MethodGet, path, "", http.StatusOK))
			if len(items) != 2 || items[0]["name"] != "release" || items[1]["name"] != "cluster" {
				t.Fatalf("list = %v", items)
			}
		})

		t.Run("hostile", func(t *testing.T) {
			replayed := gh.Sign(t, gh.GitHubActions(fedAudience, now()))
			if res := f.fedToken(id, replayed); res.status != http.StatusOK {
				t.Fatalf("first use: status %d, body %s", res.status, res.body)
			}
			k8sReplayed := k8sToken()
			if res := f.fedToken(id, k8sReplayed); res.status != http.StatusOK {
				t.Fatalf("first use: status %d, body %s", res.status, res.body)
			}
			ghc := func(kv ...any) map[string]any { return set(gh.GitHubActions(fedAudience, now()), kv...) }
			stranger := oidctest.New(t) // trusted by nobody, signs the right sub
			for _, tc := range []struct{ name, token string }{
				{"wrong sub", gh.Sign(t, ghc("sub", "repo:octo-org/deploy:ref:refs/heads/feature"))},
				{"wrong aud", gh.Sign(t, ghc("aud", "https://evil.example"))},
				{"wrong iss", stranger.Sign(t, set(stranger.GitHubActions(fedAudience, now())))},
				{"iss of the trusted issuer, signed by another", stranger.Sign(t, ghc())},
				{"expired", gh.Sign(t, ghc("exp", now().Add(-time.Minute).Unix()))},
				{"no exp", gh.Sign(t, ghc("exp", nil))},
				{"future nbf", gh.Sign(t, ghc("nbf", now().Add(time.Hour).Unix()))},
				{"future iat", gh.Sign(t, ghc("iat", now().Add(time.Hour).Unix()))},
				{"exp two days ahead", gh.Sign(t, ghc("exp", now().Add(48*time.Hour).Unix()))},
				{"replayed jti", replayed},
				{"replayed without jti", k8sReplayed},
				{"repository_id mismatch", gh.Sign(t, ghc("repository_id", "1"))},
				{"job_workflow_ref mismatch", gh.Sign(t, ghc("job_workflow_ref", "octo-org/deploy/.github/workflows/evil.yml@refs/heads/main"))},
				{"oversized", gh.Sign(t, ghc("pad", strings.Repeat("x", 17<<10)))},
				{"garbage", "a.b.c"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					wantError(t, f.fedToken(id, tc.token), http.StatusUnauthorized, "invalid_client")
				})
			}
			t.Run("unknown kid", func(t *testing.T) {
				rogue := oidctest.New(t)
				_, _ = f.fedClient(t, "rogue kid", rogue.URL, ghSubject, nil)
				rogueID, _ := f.fedClient(t, "rogue kid 2", rogue.URL, ghSubject, nil)
				if res := f.fedToken(rogueID, rogue.Sign(t, rogue.GitHubActions(fedAudience, now()))); res.status != http.StatusOK {
					t.Fatalf("before: status %d, body %s", res.status, res.body)
				}
				rogue.Unpublished(t)
				wantError(t, f.fedToken(rogueID, rogue.Sign(t, rogue.GitHubActions(fedAudience, now()))), http.StatusUnauthorized, "invalid_client")
			})
			t.Run("without client_id", func(t *testing.T) {
				ext := gh.Sign(t, ghc())
				f.secrets = append(f.secrets, ext)
				wantError(t, f.tokenWithAssertion(ext), http.StatusUnauthorized, "invalid_client")
			})
			t.Run("for another client", func(t *testing.T) {
				wantError(t, f.fedToken(f.cc.ID, gh.Sign(t, ghc())), http.StatusUnauthorized, "invalid_client")
			})
		})

		t.Run("introspection and revocation", func(t *testing.T) {
			// A resource server that authenticates with its pod's token.
			rsID, _ := f.fedClient(t, "resource server", k8s.URL, "system:serviceaccount:billing:exporter", nil)
			if _, err := f.db.UpdateClient(t.Context(), rsID, func(c *storage.Client) error { c.MayIntrospect = true; return nil }); err != nil {
				t.Fatal(err)
			}
			ccTok := f.tokenCC(f.cc)
			intro := f.post("/oauth/introspect", formCT, form("token", ccTok, "client_id", strconv.FormatInt(rsID, 10),
				"client_assertion_type", assertionType, "client_assertion", k8sToken()))
			if intro.status != http.StatusOK || intro.json(t)["active"] != true {
				t.Fatalf("introspect with a federated token: status %d, body %s", intro.status, intro.body)
			}
			wantError(t, f.post("/oauth/introspect", formCT, form("token", ccTok, "client_id", strconv.FormatInt(rsID, 10),
				"client_assertion_type", assertionType, "client_assertion", k8s.Sign(t, set(k8s.Kubernetes("https://evil.example", now()))))),
				http.StatusUnauthorized, "invalid_client")
			tok := f.fedToken(id, gh.Sign(t, gh.GitHubActions(fedAudience, now()))).json(t)["access_token"].(string)
			rev := f.post("/oauth/revoke", formCT, form("token", tok, "client_id", strconv.FormatInt(id, 10),
				"client_assertion_type", assertionType, "client_assertion", gh.Sign(t, gh.GitHubActions(fedAudience, now()))))
			if rev.status != http.StatusOK {
				t.Fatalf("revoke: status %d, body %s", rev.status, rev.body)
			}
			if f.active(tok) {
				t.Fatal("the revoked token is still active")
			}
		})

		t.Run("delete", func(t *testing.T) {
			items := admItems(t, f.admWant(t, admin, http.MethodGet, path, "", http.StatusOK))
			fid := int64(items[0]["id"].(float64))
			if res := f.admDo(t, admin, http.MethodDelete, path+"/"+strconv.FormatInt(fid, 10), ""); res.status != http.StatusNoContent {
				t.Fatalf("delete: status %d, body %s", res.status, res.body)
			}
			admProblem(t, f.admDo(t, admin, http.MethodDelete, path+"/"+strconv.FormatInt(fid, 10), ""), http.StatusNotFound)
			wantError(t, f.fedToken(id, gh.Sign(t, gh.GitHubActions(fedAudience, now()))), http.StatusUnauthorized, "invalid_client")
			// The Kubernetes credential still works.
			if res := f.fedToken(id, k8sToken()); res.status != http.StatusOK {
				t.Fatalf("the other credential: status %d, body %s", res.status, res.body)
			}
		})

		t.Run("disabled client", func(t *testing.T) {
			offID, _ := f.fedClient(t, "disabled", gh.URL, ghSubject, nil)
			f.admWant(t, admin, http.MethodPatch, admPath("/clients", offID), `{"status":"disabled"}`, http.StatusOK)
			wantError(t, f.fedToken(offID, gh.Sign(t, gh.GitHubActions(fedAudience, now()))), http.StatusUnauthorized, "invalid_client")
		})

		t.Run("audit", func(t *testing.T) {
			events := admItems(t, f.admWant(t, admin, http.MethodGet, "/audit?limit=50", "", http.StatusOK))
			var actions []string
			for _, e := range events {
				if e["target_id"] == float64(id) {
					actions = append(actions, e["action"].(string))
				}
			}
			joined := strings.Join(actions, " ")
			for _, want := range []string{"client.federated_credential_create", "client.federated_credential_delete"} {
				if !strings.Contains(joined, want) {
					t.Errorf("audit of client %d: %v, want %s", id, actions, want)
				}
			}
		})
	}, allowHTTPIssuers, manyFailures)
}

// TestFederationHostileIssuer: an issuer that is down, slow, lies about
// who it is or serves oversized documents makes its tokens invalid_client,
// within the fetch timeout, never a 500.
func TestFederationHostileIssuer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		big := bytes.Repeat([]byte(" "), 70<<10)
		for _, tc := range []struct {
			name  string
			setup func(t *testing.T, is *oidctest.Issuer)
		}{
			{"down", func(_ *testing.T, is *oidctest.Issuer) { is.Close() }},
			{"slow", func(_ *testing.T, is *oidctest.Issuer) { is.Delay(5 * time.Second) }},
			{"discovery names another issuer", func(_ *testing.T, is *oidctest.Issuer) {
				is.ServeDiscovery([]byte(`{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"` + is.URL + `/jwks"}`))
			}},
			{"discovery oversized", func(_ *testing.T, is *oidctest.Issuer) {
				is.ServeDiscovery(append([]byte(`{"issuer":"`+is.URL+`","jwks_uri":"`+is.URL+`/jwks"}`), big...))
			}},
			{"JWKS oversized", func(_ *testing.T, is *oidctest.Issuer) { is.ServeJWKS(append([]byte(`{"keys":[]}`), big...)) }},
			{"JWKS with too many keys", func(t *testing.T, is *oidctest.Issuer) {
				for range 9 {
					is.Rotate(t)
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				is := oidctest.New(t)
				id, _ := f.fedClient(t, tc.name, is.URL, ghSubject, nil)
				tc.setup(t, is)
				start := time.Now()
				wantError(t, f.fedToken(id, is.Sign(t, is.GitHubActions(fedAudience, f.clock.now()))), http.StatusUnauthorized, "invalid_client")
				if d := time.Since(start); d > 4*time.Second {
					t.Errorf("took %v, want at most the fetch timeout", d)
				}
			})
		}
	}, allowHTTPIssuers, manyFailures)
}

// TestFederationHTTPIssuerRefused: without federation.allow_http_issuers
// an http (loopback) issuer can be neither registered nor used.
func TestFederationHTTPIssuerRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		is := oidctest.New(t)
		admin := f.admUser("alice")
		c := f.admWant(t, admin, http.MethodPost, "/clients", admBody(map[string]any{"name": "fed", "grant_types": []string{"client_credentials"}}), http.StatusCreated)
		f.secrets = append(f.secrets, c["client_secret"].(string))
		id := admID(t, c)
		path := admPath("/clients", id) + "/federated-credentials"
		admProblem(t, f.admDo(t, admin, http.MethodPost, path, admBody(map[string]any{"issuer": is.URL, "subject": ghSubject,
			"audiences": []string{fedAudience}})), http.StatusUnprocessableEntity, "issuer")
		for _, issuer := range []string{"https://127.0.0.1/", "https://169.254.169.254", "https://localhost:8443"} {
			admProblem(t, f.admDo(t, admin, http.MethodPost, path, admBody(map[string]any{"issuer": issuer, "subject": ghSubject,
				"audiences": []string{fedAudience}})), http.StatusUnprocessableEntity, "issuer")
		}
		// Written behind the management API's back, it is still refused
		// when the keys are fetched.
		if _, err := f.db.CreateFederatedCredential(t.Context(), fedCredential(id, is.URL)); err != nil {
			t.Fatal(err)
		}
		wantError(t, f.fedToken(id, is.Sign(t, is.GitHubActions(fedAudience, f.clock.now()))), http.StatusUnauthorized, "invalid_client")
		if n := is.Fetches.Load(); n != 0 {
			t.Errorf("the loopback issuer was fetched %d times; want 0", n)
		}
	})
}

// TestFederationManagement: bad input is a precise 422 or 400, a client
// holds at most 20 credentials, another tenant's client is not found, and
// deleting the client deletes its credentials.
func TestFederationManagement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		admin := f.admUser("alice")
		id, _ := f.fedClient(t, "managed", "https://token.actions.githubusercontent.com", ghSubject, map[string]string{"repository_id": "1"})
		path := admPath("/clients", id) + "/federated-credentials"
		good := func(kv ...any) string {
			m := map[string]any{"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:environment:prod", "audiences": []string{fedAudience}}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(m, kv[i].(string))
				} else {
					m[kv[i].(string)] = kv[i+1]
				}
			}
			return admBody(m)
		}
		for _, tc := range []struct {
			name, body string
			field      string
		}{
			{"no issuer", good("issuer", nil), "issuer"},
			{"issuer not a URL", good("issuer", "token.actions"), "issuer"},
			{"issuer with a query", good("issuer", "https://issuer.example/?a=b"), "issuer"},
			{"issuer http", good("issuer", "http://issuer.example"), "issuer"},
			{"no subject", good("subject", nil), "subject"},
			{"subject with a control character", good("subject", "repo:o/r\u0000"), "subject"},
			{"subject oversized", good("subject", strings.Repeat("s", 600)), "subject"},
			{"no audiences", good("audiences", []string{}), "audiences"},
			{"too many audiences", good("audiences", strings.Split("a b c d e f g h i j k", " ")), "audiences"},
			{"claim on sub", good("claims", map[string]string{"sub": "x"}), "claims"},
			{"too many claims", good("claims", map[string]string{"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1", "g": "1", "h": "1", "i": "1", "j": "1", "k": "1"}), "claims"},
			{"empty claim value", good("claims", map[string]string{"repository_id": ""}), "claims"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				admProblem(t, f.admDo(t, admin, http.MethodPost, path, tc.body), http.StatusUnprocessableEntity, tc.field)
			})
		}
		admProblem(t, f.admDo(t, admin, http.MethodPost, path, `{"issuer":"https://i.example","subject":"s","audiences":["a"],"extra":1}`), http.StatusBadRequest)
		admProblem(t, f.admDo(t, admin, http.MethodPost, path, `{"issuer":"https://i.example","subject":"s","audiences":"a"}`), http.StatusBadRequest)
		admProblem(t, f.admDo(t, admin, http.MethodPost, path, `{"issuer":"https://i.example","subject":"s","audiences":["a"],"claims":{"x":1}}`), http.StatusBadRequest)
		admProblem(t, f.admDo(t, admin, http.MethodPost, path, good("name", "managed")), http.StatusConflict, "name")
		admProblem(t, f.admDo(t, admin, http.MethodPost, admPath("/clients", f.cc.ID+1000000)+"/federated-credentials", good()), http.StatusNotFound)
		admProblem(t, f.admDo(t, f.admCarol(), http.MethodPost, path, good()), http.StatusNotFound)
		admProblem(t, f.admDo(t, f.admCarol(), http.MethodGet, path, ""), http.StatusNotFound)

		for i := 1; i < 20; i++ {
			f.admWant(t, admin, http.MethodPost, path, good("name", "n"+strconv.Itoa(i)), http.StatusCreated)
		}
		admProblem(t, f.admDo(t, admin, http.MethodPost, path, good("name", "one too many")), http.StatusConflict)

		f.admWant(t, admin, http.MethodDelete, admPath("/clients", id), "", http.StatusNoContent)
		list, err := f.db.ListFederatedCredentials(t.Context(), id)
		if err != nil || len(list) != 0 {
			t.Fatalf("credentials of a deleted client = %v, %v; want none", list, err)
		}
	})
}

// TestFederationBruteForce: refused federated tokens count against the
// client id like wrong secrets.
func TestFederationBruteForce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		is := oidctest.New(t)
		id, _ := f.fedClient(t, "target", is.URL, ghSubject, nil)
		for range f.cfg.BruteForce.Threshold {
			wantError(t, f.fedToken(id, is.Sign(t, set(is.GitHubActions(fedAudience, f.clock.now()), "sub", "repo:evil/x:ref:refs/heads/main"))),
				http.StatusUnauthorized, "invalid_client")
		}
		res := f.fedToken(id, is.Sign(t, set(is.GitHubActions(fedAudience, f.clock.now()), "sub", "repo:evil/x:ref:refs/heads/main")))
		if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
			t.Fatalf("after %d refused tokens: status %d, Retry-After %q, want 429 (body %s)", f.cfg.BruteForce.Threshold, res.status, res.header.Get("Retry-After"), res.body)
		}
	}, allowHTTPIssuers, func(c *config.Config) { c.BruteForce.SourceThreshold = 1000 })
}

func fedCredential(clientID int64, issuer string) storage.FederatedCredential {
	return storage.FederatedCredential{ClientID: clientID, Name: "behind the API", Issuer: issuer, Subject: ghSubject,
		Audiences: []string{fedAudience}, CreatedAt: time.Now()}
}

// TestSDKFederatedCredentials: the Go SDK adds, lists and deletes a
// client's federated credentials, and the credential works at once.
func TestSDKFederatedCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := f.sdk(t, f.admUser("alice"))
		is := oidctest.New(t)
		c, err := alice.CreateClient(ctx, client.CredentialCreate{Name: "sdk federated", GrantTypes: []string{"client_credentials"}})
		if err != nil {
			t.Fatalf("create client: %v", err)
		}
		f.secrets = append(f.secrets, c.ClientSecret)
		fc, err := alice.CreateFederatedCredential(ctx, c.ID, client.FederatedCredentialCreate{Name: "cluster", Issuer: is.URL,
			Subject: "system:serviceaccount:billing:exporter", Audiences: []string{fedAudience}})
		if err != nil {
			t.Fatalf("create federated credential: %v", err)
		}
		if fc.ID == 0 || fc.ClientID != c.ID || fc.Issuer != is.URL || fc.CreatedBy == nil || fc.CreatedAt.IsZero() {
			t.Errorf("created = %+v", fc)
		}
		if res := f.fedToken(c.ID, is.Sign(t, is.Kubernetes(fedAudience, f.clock.now()))); res.status != http.StatusOK {
			t.Fatalf("token: status %d, body %s", res.status, res.body)
		}
		_, err = alice.CreateFederatedCredential(ctx, c.ID, client.FederatedCredentialCreate{Name: "cluster", Issuer: is.URL, Subject: "s", Audiences: []string{"a"}})
		wantAPIError(t, "a taken name", err, client.IsConflict, http.StatusConflict, "name")
		l, err := alice.ListFederatedCredentials(ctx, c.ID)
		if err != nil || len(l.Items) != 1 || l.Items[0].ID != fc.ID {
			t.Fatalf("list = %+v, %v", l, err)
		}
		if err := alice.DeleteFederatedCredential(ctx, c.ID, fc.ID, ""); err != nil {
			t.Fatalf("delete: %v", err)
		}
		err = alice.DeleteFederatedCredential(ctx, c.ID, fc.ID, "")
		wantAPIError(t, "delete again", err, client.IsNotFound, http.StatusNotFound)
	}, allowHTTPIssuers)
}

// TestConsoleFederatedCredentials: on an API client's page an admin adds
// a federated credential with claim conditions, its workload gets a token,
// a refused one is explained, and deleting it takes effect at once.
func TestConsoleFederatedCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		is := oidctest.New(t)
		id, _ := f.fedClient(t, "console federated", "https://token.actions.githubusercontent.com", "repo:o/r:ref:refs/heads/main", nil)
		b := f.browser(t)
		b.signIn("alice")
		page := "/console/clients/" + strconv.FormatInt(id, 10)
		b.get(page).want(t, http.StatusOK).has(t, `id="federated"`, `name="fed_issuer"`, "https://token.actions.githubusercontent.com")

		refused := b.post(page+"/federated", "fed_issuer", "https://issuer.example/?q=1", "fed_subject", "s", "fed_audiences", fedAudience).
			want(t, http.StatusUnprocessableEntity)
		refused.has(t, "Issuer must not have a query", `value="https://issuer.example/?q=1"`)

		b.post(page+"/federated", "fed_issuer", is.URL, "fed_subject", "system:serviceaccount:billing:exporter",
			"fed_audiences", fedAudience, "fed_claims", "repository_id\n").
			want(t, http.StatusUnprocessableEntity).has(t, "Claim conditions the value of")
		added := b.post(page+"/federated", "fed_issuer", is.URL, "fed_subject", "system:serviceaccount:billing:exporter",
			"fed_audiences", "api://other, "+fedAudience, "fed_name", "cluster").want(t, http.StatusSeeOther)
		if loc := added.header.Get("Location"); !strings.Contains(loc, "ok=federated-added") {
			t.Fatalf("Location %q", loc)
		}
		if res := f.fedToken(id, is.Sign(t, is.Kubernetes(fedAudience, f.clock.now()))); res.status != http.StatusOK {
			t.Fatalf("token: status %d, body %s", res.status, res.body)
		}
		list, err := f.db.ListFederatedCredentials(t.Context(), id)
		if err != nil || len(list) != 2 {
			t.Fatalf("credentials = %v, %v", list, err)
		}
		b.get(page).want(t, http.StatusOK).has(t, "system:serviceaccount:billing:exporter", `name="credential" value="`+strconv.FormatInt(list[1].ID, 10)+`"`)
		b.post(page+"/federated/delete", "credential", strconv.FormatInt(list[1].ID, 10)).want(t, http.StatusSeeOther)
		wantError(t, f.fedToken(id, is.Sign(t, is.Kubernetes(fedAudience, f.clock.now()))), http.StatusUnauthorized, "invalid_client")
	}, allowHTTPIssuers)
}

// TestFederationReplayAcrossInstances: a federated token spent at one
// instance is a replay at another on the same Redis, with a jti and (a
// Kubernetes token) without.
func TestFederationReplayAcrossInstances(t *testing.T) {
	first := newFixture(t, "postgres+redis", allowHTTPIssuers)
	second := first.secondInstance()
	is := oidctest.New(t)
	id, _ := first.fedClient(t, "two instances", is.URL, ghSubject, nil)
	admin := first.admUser("alice")
	first.admWant(t, admin, http.MethodPost, admPath("/clients", id)+"/federated-credentials", admBody(map[string]any{"name": "cluster",
		"issuer": is.URL, "subject": "system:serviceaccount:billing:exporter", "audiences": []string{fedAudience}}), http.StatusCreated)
	for name, tok := range map[string]string{
		"GitHub Actions": is.Sign(t, is.GitHubActions(fedAudience, first.clock.now())),
		"Kubernetes":     is.Sign(t, is.Kubernetes(fedAudience, first.clock.now())),
	} {
		if res := first.fedToken(id, tok); res.status != http.StatusOK {
			t.Fatalf("%s, first instance: status %d, body %s", name, res.status, res.body)
		}
		wantError(t, second.fedToken(id, tok), http.StatusUnauthorized, "invalid_client")
	}
}

// TestFederationMemberRules: a member manages the federated credentials of
// the clients they own, not of others' (404), and none under the account's
// keys_managed_by admins policy (403, audited); they may still list them.
func TestFederationMemberRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		f.admCreateUser(t, alice, f.root, "mel", "member")
		mel := f.admUser("mel")
		c := f.admWant(t, mel, http.MethodPost, "/clients", admBody(map[string]any{"name": "mel's", "grant_types": []string{"client_credentials"},
			"access_rights": "events"}), http.StatusCreated)
		f.secrets = append(f.secrets, c["client_secret"].(string))
		path := admPath("/clients", admID(t, c)) + "/federated-credentials"
		body := func(name string) string {
			return admBody(map[string]any{"name": name, "issuer": "https://token.actions.githubusercontent.com", "subject": ghSubject,
				"audiences": []string{fedAudience}})
		}
		f.admWant(t, mel, http.MethodPost, path, body("own"), http.StatusCreated)
		aliceID, _ := f.fedClient(t, "alice's", "https://token.actions.githubusercontent.com", ghSubject, nil)
		admProblem(t, f.admDo(t, mel, http.MethodPost, admPath("/clients", aliceID)+"/federated-credentials", body("other")), http.StatusNotFound)
		admProblem(t, f.admDo(t, mel, http.MethodGet, admPath("/clients", aliceID)+"/federated-credentials", ""), http.StatusNotFound)

		f.admWant(t, alice, http.MethodPatch, admPath("/accounts", f.root.ID), `{"policies":{"keys_managed_by":"admins"}}`, http.StatusOK)
		admProblem(t, f.admDo(t, mel, http.MethodPost, path, body("after the policy")), http.StatusForbidden)
		items := admItems(t, f.admWant(t, mel, http.MethodGet, path, "", http.StatusOK))
		if len(items) != 1 {
			t.Fatalf("mel's list = %v, want the one credential", items)
		}
		admProblem(t, f.admDo(t, mel, http.MethodDelete, path+"/"+strconv.FormatInt(int64(items[0]["id"].(float64)), 10), ""), http.StatusForbidden)
		f.admWant(t, alice, http.MethodPost, path, body("by an admin"), http.StatusCreated)
	})
}
