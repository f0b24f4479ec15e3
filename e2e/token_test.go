package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

func TestTokenClientCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		id := strconv.FormatInt(f.cc.ID, 10)
		sec := f.secretOf[f.cc.ID]
		tests := []struct {
			name      string
			ct, body  string
			header    []string
			wantScope string
		}{
			{"basic form", formCT, form("grant_type", "client_credentials"), []string{"Authorization", basic(f.cc.ID, sec)}, "read write"},
			{"post form", formCT, form("grant_type", "client_credentials", "client_id", id, "client_secret", sec), nil, "read write"},
			{"basic json", "application/json", `{"grant_type":"client_credentials"}`, []string{"Authorization", basic(f.cc.ID, sec)}, "read write"},
			{"post json numeric id", "application/json", `{"grant_type":"client_credentials","client_id":` + id + `,"client_secret":"` + sec + `"}`, nil, "read write"},
			{"post json string id", "application/json; charset=utf-8", `{"grant_type":"client_credentials","client_id":"` + id + `","client_secret":"` + sec + `"}`, nil, "read write"},
			{"requested subset", formCT, form("grant_type", "client_credentials", "scope", "write"), []string{"Authorization", basic(f.cc.ID, sec)}, "write"},
			{"requested partly allowed", formCT, form("grant_type", "client_credentials", "scope", "admin read"), []string{"Authorization", basic(f.cc.ID, sec)}, "read"},
			{"basic id repeated in body", formCT, form("grant_type", "client_credentials", "client_id", id), []string{"Authorization", basic(f.cc.ID, sec)}, "read write"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := f.post("/oauth/token", tt.ct, tt.body, tt.header...)
				if res.status != http.StatusOK {
					t.Fatalf("status = %d, want 200 (body %s)", res.status, res.body)
				}
				if got := res.header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", got)
				}
				if got := res.header.Get("Pragma"); got != "no-cache" {
					t.Errorf("Pragma = %q, want no-cache", got)
				}
				body := res.json(t)
				tok, _ := body["access_token"].(string)
				if !strings.HasPrefix(tok, "tg_at_") || len(tok) < len("tg_at_")+43 {
					t.Errorf("access_token = %q, want tg_at_ and ≥ 256 bits", tok)
				}
				if body["token_type"] != "bearer" {
					t.Errorf("token_type = %v, want bearer", body["token_type"])
				}
				if body["expires_in"] != float64(3600) {
					t.Errorf("expires_in = %v, want 3600", body["expires_in"])
				}
				if body["scope"] != tt.wantScope {
					t.Errorf("scope = %v, want %q", body["scope"], tt.wantScope)
				}
				if _, ok := body["refresh_token"]; ok {
					t.Error("client_credentials answered a refresh token")
				}
				in := f.introspect(f.rs, tok).json(t)
				if in["active"] != true || in["scope"] != tt.wantScope || in["client_id"] != id || in["grant_type"] != "client_credentials" {
					t.Errorf("introspection = %v", in)
				}
			})
		}
	})
}

func TestTokenClientLifetimeOverride(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		res := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID]))
		if got := res.json(t)["expires_in"]; got != float64(7200) {
			t.Errorf("expires_in = %v, want the client's 7200", got)
		}
	})
}

func TestTokenSecretsWithReservedCharacters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		id := strconv.FormatInt(f.weird.ID, 10)
		sec := f.secretOf[f.weird.ID]
		for name, res := range map[string]response{
			"basic, form-encoded as RFC 6749 §2.3.1 says": f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.weird.ID, sec)),
			"post form": f.post("/oauth/token", formCT, form("grant_type", "client_credentials", "client_id", id, "client_secret", sec)),
			"post json": f.post("/oauth/token", "application/json", `{"grant_type":"client_credentials","client_id":`+id+`,"client_secret":"`+sec+`"}`),
		} {
			if res.status != http.StatusOK {
				t.Errorf("%s: status = %d, want 200 (body %s)", name, res.status, res.body)
			}
		}
	})
}

func TestTokenEskimiDSP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		id := strconv.FormatInt(f.dsp.ID, 10)
		sec := f.secretOf[f.dsp.ID]
		t.Run("json numeric client_id", func(t *testing.T) {
			tok := f.tokenDSP(f.dsp, "alice")
			in := f.introspect(f.rs, tok).json(t)
			want := map[string]any{"active": true, "sub": strconv.FormatInt(f.alice.ID, 10), "username": "alice",
				"account_id": float64(f.root.ID), "grant_type": "eskimi_dsp", "client_id": id, "scope": "read events",
				"token_type": "Bearer", "iss": "https://auth.example.test"}
			for k, v := range want {
				if in[k] != v {
					t.Errorf("introspection %s = %v, want %v", k, in[k], v)
				}
			}
			if exp, iat := in["exp"].(float64), in["iat"].(float64); exp-iat != 7200 {
				t.Errorf("exp - iat = %v, want the client's lifetime 7200", exp-iat)
			}
		})
		t.Run("form with basic", func(t *testing.T) {
			res := f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", "alice", "password", testPassword, "scope", "events"),
				"Authorization", basic(f.dsp.ID, sec))
			if res.status != http.StatusOK || res.json(t)["scope"] != "events" {
				t.Fatalf("status %d body %s", res.status, res.body)
			}
		})
		t.Run("user of a child account", func(t *testing.T) {
			in := f.introspect(f.rs, f.tokenDSP(f.dsp, "bob")).json(t)
			if in["account_id"] != float64(f.child.ID) || in["username"] != "bob" {
				t.Errorf("introspection = %v, want bob in the child account", in)
			}
		})
		// Every way the user part can be wrong answers the same.
		var first []byte
		for _, tt := range []struct{ name, username, password string }{
			{"wrong password", "alice", "not the password"},
			{"unknown user", "nobody", testPassword},
			{"disabled user", "dave", testPassword},
			{"user of a sibling account", "carol", testPassword},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res := f.post("/oauth/token", "application/json", `{"grant_type":"eskimi_dsp","username":"`+tt.username+`","password":"`+tt.password+`","client_id":`+id+`,"client_secret":"`+sec+`"}`)
				wantError(t, res, http.StatusBadRequest, "invalid_grant")
				// The grant's own words, not fosite's generic text about
				// authorization codes and redirection URIs, and nothing
				// saying which part was wrong.
				const want = "The username or password is wrong."
				if got, _ := res.json(t)["error_description"].(string); got != want {
					t.Errorf("error_description = %q, want %q", got, want)
				}
				if first == nil {
					first = res.body
				} else if string(res.body) != string(first) {
					t.Errorf("body = %s, want the same as for a wrong password: %s", res.body, first)
				}
			})
		}
		t.Run("missing password", func(t *testing.T) {
			res := f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", "alice"), "Authorization", basic(f.dsp.ID, sec))
			wantError(t, res, http.StatusBadRequest, "invalid_request")
		})
		t.Run("client without the grant", func(t *testing.T) {
			res := f.post("/oauth/token", formCT, form("grant_type", "eskimi_dsp", "username", "alice", "password", testPassword),
				"Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID]))
			wantError(t, res, http.StatusBadRequest, "unauthorized_client")
		})
		t.Run("wrong client secret", func(t *testing.T) {
			res := f.post("/oauth/token", "application/json", `{"grant_type":"eskimi_dsp","username":"alice","password":"`+testPassword+`","client_id":`+id+`,"client_secret":"nope"}`)
			wantError(t, res, http.StatusUnauthorized, "invalid_client")
		})
	})
}

func TestTokenErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		ccBasic := basic(f.cc.ID, f.secretOf[f.cc.ID])
		id := strconv.FormatInt(f.cc.ID, 10)
		sec := f.secretOf[f.cc.ID]
		tests := []struct {
			name     string
			ct, body string
			header   []string
			status   int
			code     string
		}{
			{"unknown grant", formCT, form("grant_type", "password", "username", "a", "password", "b"), []string{"Authorization", ccBasic}, 400, "unsupported_grant_type"},
			{"unknown grant without client auth", formCT, form("grant_type", "urn:x"), nil, 400, "unsupported_grant_type"},
			{"missing grant_type", formCT, form("scope", "read"), []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"scope none allowed", formCT, form("grant_type", "client_credentials", "scope", "admin"), []string{"Authorization", ccBasic}, 400, "invalid_scope"},
			{"scope malformed", formCT, form("grant_type", "client_credentials", "scope", `re"ad`), []string{"Authorization", ccBasic}, 400, "invalid_scope"},
			{"wrong secret basic", formCT, form("grant_type", "client_credentials"), []string{"Authorization", basic(f.cc.ID, "wrong")}, 401, "invalid_client"},
			{"wrong secret post", formCT, form("grant_type", "client_credentials", "client_id", id, "client_secret", "wrong"), nil, 401, "invalid_client"},
			{"unknown client", formCT, form("grant_type", "client_credentials"), []string{"Authorization", basic(999999, "x")}, 401, "invalid_client"},
			{"non-numeric client id", formCT, form("grant_type", "client_credentials", "client_id", "abc", "client_secret", "x"), nil, 401, "invalid_client"},
			{"disabled client", formCT, form("grant_type", "client_credentials"), []string{"Authorization", basic(f.off.ID, f.secretOf[f.off.ID])}, 401, "invalid_client"},
			{"expired client", formCT, form("grant_type", "client_credentials"), []string{"Authorization", basic(f.expired.ID, f.secretOf[f.expired.ID])}, 401, "invalid_client"},
			{"no client authentication", formCT, form("grant_type", "client_credentials"), nil, 401, "invalid_client"},
			{"bearer instead of basic", formCT, form("grant_type", "client_credentials"), []string{"Authorization", "Bearer abc"}, 401, "invalid_client"},
			{"malformed basic", formCT, form("grant_type", "client_credentials"), []string{"Authorization", "Basic !!!"}, 401, "invalid_client"},
			{"two auth methods", formCT, form("grant_type", "client_credentials", "client_secret", sec), []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"basic and other body client_id", formCT, form("grant_type", "client_credentials", "client_id", "42"), []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"repeated authorization", formCT, form("grant_type", "client_credentials"), []string{"Authorization", ccBasic, "Authorization", ccBasic}, 400, "invalid_request"},
			{"repeated parameter", formCT, "grant_type=client_credentials&grant_type=client_credentials", []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"malformed form", formCT, "grant_type=%zz", []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"invalid utf-8", formCT, "grant_type=client_credentials&scope=%ff", []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"empty body", formCT, "", []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"no content type", "", form("grant_type", "client_credentials"), []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"text/plain", "text/plain", form("grant_type", "client_credentials"), []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"multipart", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--\r\n", []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"latin1 charset", formCT + "; charset=iso-8859-1", form("grant_type", "client_credentials"), []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"malformed json", "application/json", `{"grant_type":`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json array", "application/json", `["client_credentials"]`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json float client_id", "application/json", `{"grant_type":"client_credentials","client_id":` + id + `.5,"client_secret":"` + sec + `"}`, nil, 400, "invalid_request"},
			{"json exponent client_id", "application/json", `{"grant_type":"client_credentials","client_id":1e3,"client_secret":"x"}`, nil, 400, "invalid_request"},
			{"json negative client_id", "application/json", `{"grant_type":"client_credentials","client_id":-1,"client_secret":"x"}`, nil, 400, "invalid_request"},
			{"json object value", "application/json", `{"grant_type":"client_credentials","client_id":{"id":1},"client_secret":"x"}`, nil, 400, "invalid_request"},
			{"json array value", "application/json", `{"grant_type":["client_credentials"]}`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json number password", "application/json", `{"grant_type":"eskimi_dsp","username":"alice","password":123}`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json bool", "application/json", `{"grant_type":true}`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json null", "application/json", `{"grant_type":null}`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json trailing data", "application/json", `{"grant_type":"client_credentials"} {}`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json trailing garbage", "application/json", `{"grant_type":"client_credentials"}x`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json duplicate member", "application/json", `{"grant_type":"client_credentials","grant_type":"eskimi_dsp"}`, []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"json invalid utf-8", "application/json", "{\"grant_type\":\"client_credentials\",\"scope\":\"\xff\"}", []string{"Authorization", ccBasic}, 400, "invalid_request"},
			{"client assertion of a known client", formCT, form("grant_type", "client_credentials", "client_id", id, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."), nil, 401, "invalid_client"},
			{"client assertion of an unknown client", formCT, form("grant_type", "client_credentials", "client_id", "999999", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."), nil, 401, "invalid_client"},
			{"NUL in a form value", formCT, form("grant_type", "eskimi_dsp", "username", "ad\x00min", "password", "x"), []string{"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID])}, 400, "invalid_request"},
			{"NUL in a JSON value", "application/json", `{"grant_type":"eskimi_dsp","username":"a\u0000","password":"x"}`, []string{"Authorization", basic(f.dsp.ID, f.secretOf[f.dsp.ID])}, 400, "invalid_request"},
			{"oversized body", formCT, form("grant_type", "client_credentials", "pad", strings.Repeat("a", 70<<10)), []string{"Authorization", ccBasic}, 413, "invalid_request"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantError(t, f.post("/oauth/token", tt.ct, tt.body, tt.header...), tt.status, tt.code)
			})
		}
		t.Run("unknown client and wrong secret look alike", func(t *testing.T) {
			a := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(999999, "x"))
			b := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.cc.ID, "x"))
			if string(a.body) != string(b.body) {
				t.Errorf("unknown client answers %s, wrong secret answers %s", a.body, b.body)
			}
		})
		t.Run("GET", func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/oauth/token?grant_type=client_credentials", nil)
			res := f.do(req)
			wantError(t, res, http.StatusMethodNotAllowed, "invalid_request")
			if got := res.header.Get("Allow"); got != "POST" {
				t.Errorf("Allow = %q, want POST", got)
			}
		})
	})
}

func TestTokenClientDisabledAfterIssuance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		tok := f.tokenCC(f.cc)
		other := f.tokenCC(f.dsp)
		if !f.active(tok) {
			t.Fatal("fresh token inactive")
		}
		if _, err := f.db.UpdateClient(t.Context(), f.cc.ID, func(c *storage.Client) error {
			c.Status = "disabled"
			c.Generation++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if f.active(tok) {
			t.Error("token of a disabled client is active")
		}
		if !f.active(other) {
			t.Error("token of another client went inactive")
		}
		// Re-enabling does not revive tokens minted before: the generation moved.
		if _, err := f.db.UpdateClient(t.Context(), f.cc.ID, func(c *storage.Client) error {
			c.Status = "active"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if f.active(tok) {
			t.Error("token revived by re-enabling its client")
		}
		if !f.active(f.tokenCC(f.cc)) {
			t.Error("new token of the re-enabled client is inactive")
		}
	})
}

func TestTokenClientDeletedOrExpiredAfterIssuance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		tok := f.tokenCC(f.cc)
		if err := f.db.DeleteClient(t.Context(), f.cc.ID); err != nil {
			t.Fatal(err)
		}
		if f.active(tok) {
			t.Error("token of a deleted client is active")
		}
		tok = f.tokenCC(f.dsp)
		if _, err := f.db.UpdateClient(t.Context(), f.dsp.ID, func(c *storage.Client) error {
			c.ExpiresAt = f.clock.now().Add(time.Minute)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !f.active(tok) {
			t.Fatal("token inactive before its client expired")
		}
		f.clock.advance(2 * time.Minute)
		if f.active(tok) {
			t.Error("token of an expired client is active")
		}
	})
}

func TestTokenRecordsLastUse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		lastUsed := func() time.Time {
			c, err := f.db.GetClient(t.Context(), f.cc.ID)
			if err != nil {
				t.Fatal(err)
			}
			return c.LastUsedAt
		}
		if got := lastUsed(); !got.IsZero() {
			t.Fatalf("new client last used %v, want never", got)
		}
		for range 50 {
			f.tokenCC(f.cc)
		}
		if got := lastUsed(); !got.IsZero() {
			t.Errorf("last used written before the batch flush: %v", got)
		}
		if err := f.app.Usage().Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.Equal(f.clock.now()) {
			t.Fatalf("last used = %v after the flush, want %v", got, f.clock.now())
		}
		f.clock.advance(30 * time.Second)
		f.introspect(f.rs, "x") // the resource server's use is recorded, not the client's
		f.tokenCC(f.cc)
		if err := f.app.Usage().Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.Equal(f.clock.now()) {
			t.Errorf("last used = %v after a later use, want %v", got, f.clock.now())
		}
		// A failed authentication is no use.
		f.clock.advance(30 * time.Second)
		f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.cc.ID, "wrong"))
		if err := f.app.Usage().Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); got.Equal(f.clock.now()) {
			t.Error("a failed authentication was recorded as a use")
		}
	})
}
