package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/storage"
)

func TestAdminKeysLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		created := f.apiJSON("POST", "/keys", alice, `{"name":"reporting","description":"nightly export","access_rights":"events_contacts"}`, http.StatusCreated)
		key, _ := created["key"].(string)
		if !strings.HasPrefix(key, "tgk_") || created["client_secret"] == "" {
			t.Fatalf("created key = %v, want the key and secret once", created)
		}
		f.secrets = append(f.secrets, key, created["client_secret"].(string))
		if got := strings.Join(toStrings(created["scopes"]), " "); got != "events contacts" || created["access_rights"] != "events_contacts" {
			t.Errorf("scopes = %q (%v), want the events_contacts bundle", got, created["access_rights"])
		}
		kid := id(created)

		// Shown once: never again.
		got := f.apiDo("GET", "/keys/"+kid, alice, "")
		// No client_secret member and no secret anywhere (token_endpoint_auth_method's
		// value client_secret_basic names the method, not a secret).
		if got.status != 200 || strings.Contains(string(got.body), key) || strings.Contains(string(got.body), `"client_secret":`) ||
			strings.Contains(string(got.body), created["client_secret"].(string)) {
			t.Fatalf("GET key: %d %s, want 200 without the secret", got.status, got.body)
		}
		if !strings.Contains(string(got.body), `"key_hint":"tgk_`+kid+`_…`) {
			t.Errorf("GET key %s lacks the masked key hint", got.body)
		}
		etagV1 := got.header.Get("ETag")

		// The key works: Basic with any user name, and a key session.
		if res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw("me", key)); res.status != 200 {
			t.Fatalf("token with the new key: %d %s", res.status, res.body)
		}
		sessionTok := f.post("/auth/access/session", "", "", "X-API-Key", key).json(t)["access_token"].(string)

		// Edit with If-Match; a stale ETag is refused.
		f.apiJSON("PATCH", "/keys/"+kid, alice, `{"name":"reporting v2"}`, http.StatusOK)
		res := f.apiDo("PATCH", "/keys/"+kid, alice, `{"name":"lost update"}`, "If-Match", etagV1)
		admProblem(t, res, http.StatusPreconditionFailed)
		if name := f.apiJSON("GET", "/keys/"+kid, alice, "", 200)["name"]; name != "reporting v2" {
			t.Errorf("name = %v after a refused stale edit, want reporting v2", name)
		}

		// Disable: the key and every token minted with it stop at once.
		f.apiJSON("PATCH", "/keys/"+kid, alice, `{"status":"disabled"}`, http.StatusOK)
		if f.active(sessionTok) {
			t.Error("a token of a disabled key is active")
		}
		wantError(t, f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basicRaw("me", key)), 401, "invalid_client")
		f.apiJSON("PATCH", "/keys/"+kid, alice, `{"status":"active"}`, http.StatusOK)
		if f.active(sessionTok) {
			t.Error("re-enabling a key revived its old tokens")
		}

		// Rotate with an overlap: both keys work until the retire time.
		rot := f.apiJSON("POST", "/keys/"+kid+"/rotate", alice, `{"overlap_seconds":600}`, http.StatusOK)
		newKey := rot["key"].(string)
		f.secrets = append(f.secrets, newKey)
		if rot["previous_secret_retire_at"] == nil {
			t.Errorf("rotation answer lacks previous_secret_retire_at: %v", rot)
		}
		for name, k := range map[string]string{"old": key, "new": newKey} {
			if res := f.post("/auth/access/session", "", "", "X-API-Key", k); res.status != 200 {
				t.Errorf("%s key during the overlap: %d", name, res.status)
			}
		}
		f.clock.advance(10 * time.Minute)
		wantError(t, f.post("/auth/access/session", "", "", "X-API-Key", key), 401, "invalid_client")
		if res := f.post("/auth/access/session", "", "", "X-API-Key", newKey); res.status != 200 {
			t.Errorf("new key after the overlap: %d", res.status)
		}

		// List shows it, filterable by status.
		l := f.apiJSON("GET", "/keys?status=active&limit=100", alice, "", 200)
		found := false
		for _, it := range l["items"].([]any) {
			found = found || id(it.(map[string]any)) == kid
		}
		if !found {
			t.Errorf("key %s missing from the list %v", kid, l)
		}

		// Delete.
		if res := f.apiDo("DELETE", "/keys/"+kid, alice, ""); res.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", res.status, res.body)
		}
		admProblem(t, f.apiDo("GET", "/keys/"+kid, alice, ""), http.StatusNotFound)
		wantError(t, f.post("/auth/access/session", "", "", "X-API-Key", newKey), 401, "invalid_client")
	})
}

func TestAdminDefaultKeyReissued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		hash, _ := f.hasher.Hash(t.Context(), []byte("irrelevant-secret-0123456789"))
		def, err := f.db.CreateClient(t.Context(), storage.Client{AccountID: f.root.ID, OwnerID: f.alice.ID, Kind: storage.KindKey,
			IsDefault: true, Name: "Default key", SecretHash: string(hash), GrantTypes: []string{"client_credentials"}, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		res := f.apiDo("DELETE", "/keys/"+strconv.FormatInt(def.ID, 10), alice, "")
		if res.status != http.StatusNoContent {
			t.Fatalf("DELETE default key: %d %s", res.status, res.body)
		}
		keys, err := f.db.ListClients(t.Context(), storage.ClientFilter{AccountID: f.root.ID, OwnerID: f.alice.ID, Kind: storage.KindKey}, storage.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var defaults []storage.Client
		for _, k := range keys {
			if k.IsDefault {
				defaults = append(defaults, k)
			}
		}
		if len(defaults) != 1 || defaults[0].ID == def.ID {
			t.Fatalf("default keys after deleting one = %+v, want exactly one new one", defaults)
		}
		if got := res.header.Get("Tollgate-Replacement-Key"); got != strconv.FormatInt(defaults[0].ID, 10) {
			t.Errorf("Tollgate-Replacement-Key = %q, want %d", got, defaults[0].ID)
		}
	})
}

func TestAdminClientsAndTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		c := f.apiJSON("POST", "/clients", alice, `{"name":"partner app","scopes":["events"],"grant_types":["client_credentials","eskimi_dsp"],"token_lifetime":600,"expires_at":"2099-01-01T00:00:00Z"}`, http.StatusCreated)
		cid := id(c)
		sec := c["client_secret"].(string)
		f.secrets = append(f.secrets, sec)
		if _, ok := c["key"]; ok {
			t.Errorf("an API client answered a key: %v", c)
		}
		n, _ := strconv.ParseInt(cid, 10, 64)
		res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(n, sec))
		if res.status != 200 || res.json(t)["expires_in"] != float64(600) {
			t.Fatalf("token of the new client: %d %s", res.status, res.body)
		}

		// Generate client token: needs the caller's own password.
		admProblem(t, f.apiDo("POST", "/clients/"+cid+"/tokens", alice, `{"password":"wrong"}`), http.StatusForbidden)
		tk := f.apiJSON("POST", "/clients/"+cid+"/tokens", alice, `{"password":"`+testPassword+`"}`, http.StatusCreated)
		if tk["expires_in"] != float64(365*24*3600) {
			t.Errorf("client token expires_in = %v, want one year", tk["expires_in"])
		}
		long := tk["access_token"].(string)
		if !f.active(long) {
			t.Fatal("generated client token inactive")
		}
		// Revocable like any other.
		if res := f.post("/oauth/revoke", formCT, form("token", long), "Authorization", basic(n, sec)); res.status != 200 || f.active(long) {
			t.Errorf("revoking the generated token: %d, still active %v", res.status, f.active(long))
		}

		// Validation names the fields.
		admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":"","access_rights":"nope","grant_types":["password"],"token_lifetime":-1,"expires_at":"yesterday"}`),
			http.StatusUnprocessableEntity, "name", "access_rights", "grant_types", "token_lifetime", "expires_at")
		admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":"x","colour":"red"}`), http.StatusBadRequest, "colour")
		admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":42}`), http.StatusBadRequest, "name")
		// A member named twice is refused, at any depth, never "the last one wins".
		admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":"x","scopes":["events"],"scopes":["read","write"]}`), http.StatusBadRequest, "scopes")
		admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":"x","rate_limits":{"token":{"rate":1,"burst":1},"token":{"rate":1000,"burst":1000}}}`),
			http.StatusBadRequest, "rate_limits/token")
		admProblem(t, f.apiDo("PATCH", "/clients/"+cid, alice, `{"status":"disabled","status":"active"}`), http.StatusBadRequest, "status")
		admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":"x"} {}`), http.StatusBadRequest)
		admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":"`+strings.Repeat("n", 101)+`"}`), http.StatusUnprocessableEntity, "name")
		admProblem(t, f.apiDo("POST", "/clients", alice, `{"name":"`+strings.Repeat("n", 70<<10)+`"}`), http.StatusRequestEntityTooLarge)
		req, _ := http.NewRequestWithContext(t.Context(), "POST", f.srv.URL+"/api/v1/clients", strings.NewReader(`name=x`))
		req.Header.Set("Authorization", alice)
		req.Header.Set("Content-Type", formCT)
		admProblem(t, f.do(req), http.StatusUnsupportedMediaType)
		admProblem(t, f.apiDo("GET", "/clients?limit=1000", alice, ""), http.StatusBadRequest, "limit")
		admProblem(t, f.apiDo("GET", "/clients?after=-4", alice, ""), http.StatusBadRequest, "after")
	})
}

func TestAdminAuthenticationAndTenants(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice")) // admin of root
		bob := bearer(f.tokenDSP(f.dsp, "bob"))     // admin of child
		rootKey := f.apiJSON("POST", "/keys", alice, `{"name":"root key"}`, http.StatusCreated)
		f.secrets = append(f.secrets, rootKey["key"].(string))
		childKey := f.apiJSON("POST", "/keys", bob, `{"name":"child key"}`, http.StatusCreated)
		f.secrets = append(f.secrets, childKey["key"].(string))

		// carol administers a sibling tree: she gets a client of her own.
		otherClient := f.client(storage.Client{AccountID: f.other.ID, Name: "other dsp", GrantTypes: []string{"eskimi_dsp"}})
		carol := bearer(f.tokenDSP(otherClient, "carol"))

		// A member of root.
		mUser, err := f.db.CreateUser(t.Context(), storage.User{AccountID: f.root.ID, Username: "mona", PasswordHash: f.passwordHash(), Role: storage.RoleMember, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		mona := bearer(f.tokenDSP(f.dsp, mUser.Username))
		monaKey := f.apiJSON("POST", "/keys", mona, `{"name":"mine"}`, http.StatusCreated)
		f.secrets = append(f.secrets, monaKey["key"].(string))

		type check struct {
			who    string
			auth   string
			path   string
			status int
		}
		for _, c := range []check{
			{"root admin sees a child key", alice, "/keys/" + id(childKey), 200},
			{"child admin cannot see a root key", bob, "/keys/" + id(rootKey), 404},
			{"sibling admin cannot see a root key", carol, "/keys/" + id(rootKey), 404},
			{"sibling admin cannot see a child key", carol, "/keys/" + id(childKey), 404},
			{"member sees their own key", mona, "/keys/" + id(monaKey), 200},
			{"member cannot see the admin's key", mona, "/keys/" + id(rootKey), 404},
			{"admin sees the member's key", alice, "/keys/" + id(monaKey), 200},
			{"a key is not a client", alice, "/clients/" + id(rootKey), 404},
		} {
			t.Run(c.who, func(t *testing.T) {
				res := f.apiDo("GET", c.path, c.auth, "")
				if res.status != c.status {
					t.Errorf("GET %s = %d, want %d (%s)", c.path, res.status, c.status, res.body)
				}
			})
		}
		// Writes across tenants are 404 too.
		admProblem(t, f.apiDo("PATCH", "/keys/"+id(rootKey), carol, `{"name":"pwned"}`), http.StatusNotFound)
		admProblem(t, f.apiDo("DELETE", "/keys/"+id(rootKey), bob, ""), http.StatusNotFound)
		admProblem(t, f.apiDo("POST", "/keys/"+id(rootKey)+"/rotate", mona, ""), http.StatusNotFound)
		// A member lists only their own keys.
		for _, it := range f.apiJSON("GET", "/keys?limit=100", mona, "", 200)["items"].([]any) {
			if owner := it.(map[string]any)["owner_id"]; owner != float64(mUser.ID) {
				t.Errorf("member listing shows a key of owner %v", owner)
			}
		}
		// A sibling admin listing root's account: 404.
		admProblem(t, f.apiDo("GET", "/keys?account_id="+strconv.FormatInt(f.root.ID, 10), carol, ""), http.StatusNotFound)

		// Authentication.
		admProblem(t, f.apiDo("GET", "/keys", "", ""), http.StatusUnauthorized)
		admProblem(t, f.apiDo("GET", "/keys", "Bearer tg_at_nope", ""), http.StatusUnauthorized)
		admProblem(t, f.apiDo("GET", "/keys", basic(f.cc.ID, f.secretOf[f.cc.ID]), ""), http.StatusUnauthorized)
		// A client token without the management scope is refused; with it, it
		// acts as an admin of its account.
		admProblem(t, f.apiDo("GET", "/keys", bearer(f.tokenCC(f.cc)), ""), http.StatusForbidden)
		manager := f.client(storage.Client{AccountID: f.child.ID, OwnerID: f.bob.ID, Name: "automation", GrantTypes: []string{"client_credentials"}, Scopes: []string{"tollgate:manage"}})
		mgr := bearer(f.tokenCC(manager))
		f.apiJSON("GET", "/keys/"+id(childKey), mgr, "", 200)
		admProblem(t, f.apiDo("GET", "/keys/"+id(rootKey), mgr, ""), http.StatusNotFound)
		// No answer ever carries a secret hash.
		for _, path := range []string{"/keys?limit=100", "/clients?limit=100"} {
			if body := string(f.apiDo("GET", path, alice, "").body); strings.Contains(body, "tgh1$") || strings.Contains(body, "secret_hash") {
				t.Errorf("%s leaks a secret hash: %s", path, body)
			}
		}
	})
}

// passwordHash hashes testPassword with the fixture's cheap parameters.
func (f *fixture) passwordHash() string {
	f.t.Helper()
	u, err := f.db.GetUser(f.t.Context(), f.alice.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return u.PasswordHash
}

// TestAdminManagementScopeNeedsAdminOwner: a client holding the management
// scope acts as an admin only while its owner is an active admin, so a
// demoted admin cannot keep their powers through a credential.
func TestAdminManagementScopeNeedsAdminOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		mallory, err := f.db.CreateUser(t.Context(), storage.User{AccountID: f.root.ID, Username: "mallory", PasswordHash: f.passwordHash(),
			Role: storage.RoleAdmin, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		mal := bearer(f.tokenDSP(f.dsp, "mallory"))
		c := f.apiJSON("POST", "/clients", mal, `{"name":"mine","scopes":["tollgate:manage"]}`, http.StatusCreated)
		n, _ := strconv.ParseInt(id(c), 10, 64)
		f.secretOf[n] = c["client_secret"].(string)
		f.secrets = append(f.secrets, f.secretOf[n])
		managed := storage.Client{ID: n}
		f.apiJSON("GET", "/users", bearer(f.tokenCC(managed)), "", http.StatusOK) // works while mallory is an admin

		f.apiJSON("PATCH", "/users/"+strconv.FormatInt(mallory.ID, 10), alice, `{"role":"member"}`, http.StatusOK)
		admProblem(t, f.apiDo("GET", "/users", bearer(f.tokenCC(managed)), ""), http.StatusForbidden)
		admProblem(t, f.apiDo("PATCH", "/users/"+strconv.FormatInt(mallory.ID, 10), bearer(f.tokenCC(managed)), `{"role":"admin"}`), http.StatusForbidden)

		// An admin cannot hand the management scope to a member's credential.
		admProblem(t, f.apiDo("POST", "/keys", alice, `{"name":"for mallory","owner_id":`+strconv.FormatInt(mallory.ID, 10)+`,"scopes":["tollgate:manage"]}`),
			http.StatusUnprocessableEntity, "owner_id")
		// A member cannot take it, raw or through a bundle.
		admProblem(t, f.apiDo("POST", "/keys", mal, `{"name":"x","scopes":["tollgate:manage"]}`), http.StatusUnprocessableEntity, "scopes")
	})
}

func TestAdminAuditsRefusedChanges(t *testing.T) {
	f := newFixture(t, "embedded")
	alice := bearer(f.tokenDSP(f.dsp, "alice"))
	k := f.apiJSON("POST", "/keys", alice, `{"name":"audited"}`, http.StatusCreated)
	f.secrets = append(f.secrets, k["key"].(string))
	admProblem(t, f.apiDo("PATCH", "/keys/"+id(k), alice, `{"name":"x"}`, "If-Match", `"99"`), http.StatusPreconditionFailed)
	events := f.apiJSON("GET", "/audit?limit=5", alice, "", http.StatusOK)["items"].([]any)
	first := events[0].(map[string]any)
	if first["action"] != "key.update" || first["outcome"] != "failure" || !strings.Contains(first["detail"].(string), "412") {
		t.Errorf("newest audit event = %v, want a failed key.update", first)
	}
}

// A client created without grant_types gets the configured default list,
// eskimi_dsp included, so it works with the JSON grant the platforms
// document; a key keeps client_credentials alone.
func TestAdminClientDefaultGrantTypes(t *testing.T) {
	tests := []struct {
		name     string
		defaults []string // nil: the configuration's default
		path     string
		body     string
		want     string
	}{
		{"client, omitted", nil, "/clients", `{"name":"app"}`, "client_credentials eskimi_dsp"},
		{"client, given", nil, "/clients", `{"name":"app","grant_types":["client_credentials"]}`, "client_credentials"},
		{"client, configured default", []string{"eskimi_dsp"}, "/clients", `{"name":"app"}`, "eskimi_dsp"},
		{"key, omitted", nil, "/keys", `{"name":"key"}`, "client_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "embedded", func(c *config.Config) {
				if tt.defaults != nil {
					c.Credentials.DefaultGrantTypes = tt.defaults
				}
			})
			alice := bearer(f.tokenDSP(f.dsp, "alice"))
			c := f.apiJSON("POST", tt.path, alice, tt.body, http.StatusCreated)
			f.secrets = append(f.secrets, c["client_secret"].(string))
			if k, ok := c["key"].(string); ok {
				f.secrets = append(f.secrets, k)
			}
			var got []string
			for _, g := range c["grant_types"].([]any) {
				got = append(got, g.(string))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("grant_types = %v, want %s", got, tt.want)
			}
			if !strings.Contains(tt.want, "eskimi_dsp") {
				return
			}
			// The documented flow: the JSON grant with a user's password and
			// the new client's id (a JSON number) and secret.
			n, _ := strconv.ParseInt(id(c), 10, 64)
			f.secretOf[n] = c["client_secret"].(string)
			f.tokenDSP(storage.Client{ID: n}, "alice")
		})
	}
}

// A key's hint is the real end of the key, in the API and in the console,
// after creating it and after a new secret (the default key's included);
// the answers that show a secret say which field to use.
func TestKeyHintMatchesTheKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		b := f.browser(t)
		b.signIn("alice")
		// A new user's default key: its secret is shown to nobody, but its
		// hint already carries the key's ten last characters.
		u := f.apiJSON("POST", "/users", alice, `{"username":"hint-user","password":"`+testPassword+`","role":"member"}`, http.StatusCreated)
		var def string
		for _, k := range f.admAll(t, admCaller(strings.TrimPrefix(alice, "Bearer ")), "/keys?owner_id="+id(u), 100) {
			if k["is_default"] == true {
				def = id(k)
				if tail := strings.TrimPrefix(k["key_hint"].(string), "tgk_"+def+"_…"); len(tail) != 10 {
					t.Errorf("default key_hint %v, want the key's last ten characters", k["key_hint"])
				}
			}
		}
		tests := []struct {
			name   string
			method string
			path   string
			body   string
			status int
		}{
			{"created", "POST", "/keys", `{"name":"hinted"}`, http.StatusCreated},
			{"default key, new secret", "POST", "/keys/" + def + "/rotate", `{"overlap_seconds":0}`, http.StatusOK},
		}
		for _, tt := range tests {
			v := f.apiJSON(tt.method, tt.path, alice, tt.body, tt.status)
			key := v["key"].(string)
			f.secrets = append(f.secrets, key, v["client_secret"].(string))
			if v["use"] != "key" {
				t.Errorf("%s: use = %v, want key", tt.name, v["use"])
			}
			masked := v["key_hint"].(string)
			prefix := "tgk_" + id(v) + "_…"
			if tail := strings.TrimPrefix(masked, prefix); len(tail) != 10 || !strings.HasSuffix(key, tail) {
				t.Errorf("%s: key_hint %q does not end like the key %q", tt.name, masked, key)
			}
			if sh := strings.TrimPrefix(v["secret_hint"].(string), "…"); !strings.HasSuffix(v["client_secret"].(string), sh) {
				t.Errorf("%s: secret_hint %v does not end like the secret", tt.name, v["secret_hint"])
			}
			if got := f.apiJSON("GET", "/keys/"+id(v), alice, "", http.StatusOK)["key_hint"]; got != masked {
				t.Errorf("%s: GET key_hint = %v, want %q", tt.name, got, masked)
			}
			b.get("/console/keys").want(t, http.StatusOK).has(t, `<code class="hint">`+masked+"</code>")
		}
		c := f.apiJSON("POST", "/clients", alice, `{"name":"a client"}`, http.StatusCreated)
		f.secrets = append(f.secrets, c["client_secret"].(string))
		if c["use"] != "client_secret" || c["key"] != nil {
			t.Errorf("client: use = %v, key = %v, want client_secret and no key", c["use"], c["key"])
		}
	})
}

// The list endpoints search by name (?name=, a part of it, any case) and
// refuse a query parameter they do not take with 400 problem+json, instead
// of answering an unfiltered list.
func TestAdminListsSearchAndRefuseUnknownParameters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		for _, n := range []string{"Billing sync", "billing export", "Reports"} {
			v := f.apiJSON("POST", "/keys", alice, `{"name":"`+n+`"}`, http.StatusCreated)
			f.secrets = append(f.secrets, v["key"].(string), v["client_secret"].(string))
		}
		names := func(path string) []string {
			var out []string
			for _, item := range f.apiJSON("GET", path, alice, "", http.StatusOK)["items"].([]any) {
				m := item.(map[string]any)
				if n, ok := m["name"].(string); ok {
					out = append(out, n)
				} else {
					out = append(out, m["username"].(string))
				}
			}
			return out
		}
		searches := []struct {
			path string
			want string
		}{
			{"/keys?name=BILLING", "Billing sync, billing export"},
			{"/keys?name=sync&status=active", "Billing sync"},
			{"/keys?name=nothing", ""},
			{"/clients?name=Billing", ""}, // keys are not clients
			{"/users?name=ALI", "alice"},
		}
		for _, tt := range searches {
			if got := strings.Join(names(tt.path), ", "); got != tt.want {
				t.Errorf("GET %s names %q, want %q", tt.path, got, tt.want)
			}
		}
		unknown := []struct {
			path  string
			field string
		}{
			{"/keys?nmae=billing", "nmae"},
			{"/clients?q=billing", "q"},
			{"/users?username=alice", "username"},
			{"/audit?subtree=true", "subtree"},
			{"/audit?name=x", "name"},
			{"/accounts/" + strconv.FormatInt(f.root.ID, 10) + "/children?status=active", "status"},
		}
		for _, tt := range unknown {
			res := f.apiDo("GET", tt.path, alice, "")
			admProblem(t, res, http.StatusBadRequest, tt.field)
		}
	})
}

// TestAdminManagementChainsAnswerToAHuman: every credential has an
// accountable owner. A management client creating another credential makes
// it its own owner's; the child acts as an admin only while that person is
// an active admin, however long the chain; a management client without an
// owner never manages; and the audit trail names the person as well as the
// credential.
func TestAdminManagementChainsAnswerToAHuman(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		alice := bearer(f.tokenDSP(f.dsp, "alice"))
		mallory, err := f.db.CreateUser(ctx, storage.User{AccountID: f.root.ID, Username: "mallory", PasswordHash: f.passwordHash(),
			Role: storage.RoleAdmin, Status: storage.StatusActive})
		if err != nil {
			t.Fatal(err)
		}
		malloryPath := "/users/" + strconv.FormatInt(mallory.ID, 10)
		register := func(c map[string]any) storage.Client {
			t.Helper()
			n, _ := strconv.ParseInt(id(c), 10, 64)
			f.secretOf[n] = c["client_secret"].(string)
			f.secrets = append(f.secrets, f.secretOf[n])
			return storage.Client{ID: n}
		}
		// mallory → first (her client) → second (made by first) → third
		// (made by second): each answers to mallory.
		first := register(f.apiJSON("POST", "/clients", bearer(f.tokenDSP(f.dsp, "mallory")), `{"name":"first","scopes":["tollgate:manage"]}`, http.StatusCreated))
		chain := []storage.Client{first}
		for _, name := range []string{"second", "third"} {
			parent := chain[len(chain)-1]
			created := f.apiJSON("POST", "/clients", bearer(f.tokenCC(parent)), `{"name":"`+name+`","scopes":["tollgate:manage"]}`, http.StatusCreated)
			if got := int64(created["owner_id"].(float64)); got != mallory.ID {
				t.Errorf("%s: owner_id %d, want mallory %d, the person behind the client that made it", name, got, mallory.ID)
			}
			if got, _ := created["created_by"].(float64); int64(got) != mallory.ID {
				t.Errorf("%s: created_by %v, want mallory %d", name, created["created_by"], mallory.ID)
			}
			chain = append(chain, register(created))
		}
		third := chain[2]
		// The audit trail names mallory and the credential she acted through.
		events, err := f.db.ListAudit(ctx, storage.AuditFilter{AccountID: f.root.ID}, storage.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events {
			if e.Action == "client.create" && e.TargetID == third.ID {
				found = true
				if e.ActorUserID != mallory.ID || e.ActorClientID != chain[1].ID {
					t.Errorf("audit of the third's creation: actor user %d, client %d; want mallory %d through the second %d",
						e.ActorUserID, e.ActorClientID, mallory.ID, chain[1].ID)
				}
			}
		}
		if !found {
			t.Error("no audit event for the third client's creation")
		}
		// The end of the chain cannot make an ownerless manager, nor hand
		// the scope to a credential of the account.
		admProblem(t, f.apiDo("POST", "/clients", bearer(f.tokenCC(third)), `{"name":"loose","scopes":["tollgate:manage"],"account_id":`+strconv.FormatInt(f.child.ID, 10)+`}`),
			http.StatusUnprocessableEntity, "scopes")
		acct := f.apiJSON("POST", "/clients", alice, `{"name":"account app","account_id":`+strconv.FormatInt(f.child.ID, 10)+`}`, http.StatusCreated)
		register(acct)
		admProblem(t, f.apiDo("PATCH", "/clients/"+id(acct), alice, `{"scopes":["tollgate:manage"]}`), http.StatusUnprocessableEntity, "scopes")

		thirdTok := f.tokenCC(third)
		f.apiJSON("GET", "/users", bearer(thirdTok), "", http.StatusOK)
		// Demote mallory: the whole chain stops managing at once; it cannot
		// make an admin or re-promote her.
		f.apiJSON("PATCH", malloryPath, alice, `{"role":"member"}`, http.StatusOK)
		for i, c := range chain {
			tok := bearer(f.tokenCC(c))
			admProblem(t, f.apiDo("POST", "/users", tok, admBody(map[string]any{"username": "sleeper" + strconv.Itoa(i), "password": testPassword, "role": "admin"})), http.StatusForbidden)
			admProblem(t, f.apiDo("PATCH", malloryPath, tok, `{"role":"admin"}`), http.StatusForbidden)
		}
		// Deleting her deletes what she owns, the whole chain.
		f.apiJSON("PATCH", malloryPath, alice, `{"role":"admin"}`, http.StatusOK)
		f.apiJSON("DELETE", malloryPath, alice, "", http.StatusNoContent)
		if f.active(thirdTok) {
			t.Error("a token of the chain's end is active after its owner was deleted")
		}
		// A management client without an owner (made before owners were
		// required) never manages.
		loose := f.client(storage.Client{AccountID: f.root.ID, Name: "legacy manager", GrantTypes: []string{"client_credentials"},
			Scopes: []string{f.cfg.Credentials.ManagementScope}})
		admProblem(t, f.apiDo("GET", "/users", bearer(f.tokenCC(loose)), ""), http.StatusForbidden)
	})
}
