package tokenexchange_test

import (
	"bytes"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/grants/tokenexchange"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/memory"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

type settings struct{}

func (settings) KeySessionLifetime() time.Duration    { return 24 * time.Hour }
func (settings) KeySessionMaxLifetime() time.Duration { return 720 * time.Hour }

// code returns the RFC 6749 error code of err, or "" for none.
func code(err error) string {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) {
		return rfc.ErrorField
	}
	return ""
}

func values(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// TestCheck: the parameters RFC 8693 defines are checked before any
// lookup, each refusal with the code §2.2.2 names.
func TestCheck(t *testing.T) {
	g := tokenexchange.New(settings{}, nil, nil)
	ok := []string{"subject_token", "t", "subject_token_type", tokenexchange.TypeAccessToken}
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"access token", values(ok...), ""},
		{"API key", values("subject_token", "tgk_x", "subject_token_type", tokenexchange.TypeAPIKey), ""},
		{"account audience", values(append(ok, "audience", "urn:tollgate:account:42")...), ""},
		{"access token requested", values(append(ok, "requested_token_type", tokenexchange.TypeAccessToken)...), ""},
		{"no subject_token", values("subject_token_type", tokenexchange.TypeAccessToken), "invalid_request"},
		{"no subject_token_type", values("subject_token", "t"), "invalid_request"},
		{"subject_token at the cap", values("subject_token", strings.Repeat("t", tokenexchange.MaxSubjectTokenBytes), "subject_token_type", tokenexchange.TypeAccessToken), ""},
		{"subject_token beyond the cap", values("subject_token", strings.Repeat("t", tokenexchange.MaxSubjectTokenBytes+1), "subject_token_type", tokenexchange.TypeAccessToken), "invalid_request"},
		{"id token", values("subject_token", "t", "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), "unsupported_token_type"},
		{"refresh token requested", values(append(ok, "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")...), "unsupported_token_type"},
		{"actor token", values(append(ok, "actor_token", "t")...), "invalid_request"},
		{"actor token type", values(append(ok, "actor_token_type", tokenexchange.TypeAccessToken)...), "invalid_request"},
		{"resource", values(append(ok, "resource", "https://api.example/")...), "invalid_target"},
		{"audience not an account", values(append(ok, "audience", "https://api.example/")...), "invalid_target"},
		{"audience without id", values(append(ok, "audience", "urn:tollgate:account:")...), "invalid_target"},
		{"audience with a negative id", values(append(ok, "audience", "urn:tollgate:account:-1")...), "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := code(g.Check(tt.form)); got != tt.want {
				t.Errorf("Check = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseAudience(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"urn:tollgate:account:1", 1, true},
		{"urn:tollgate:account:9223372036854775807", 9223372036854775807, true},
		{"urn:tollgate:account:9223372036854775808", 0, false},
		{"urn:tollgate:account:01", 0, false},
		{"urn:tollgate:account:0", 0, false},
		{"urn:tollgate:account:1 ", 0, false},
		{"URN:tollgate:account:1", 0, false},
		{"urn:tollgate:account:", 0, false},
		{"", 0, false},
	} {
		got, err := tokenexchange.ParseAudience(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseAudience(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzCheck: whatever the parameters, Check returns nil or an RFC 6749
// error of one of the codes RFC 8693 uses, and accepts an audience only if
// it names an account.
func FuzzCheck(f *testing.F) {
	f.Add("t", tokenexchange.TypeAccessToken, "urn:tollgate:account:42", "", "")
	f.Add("tgk_1_x", tokenexchange.TypeAPIKey, "", tokenexchange.TypeAccessToken, "")
	f.Add("", "x", "urn:tollgate:account:-0", "y", "z")
	f.Fuzz(func(t *testing.T, subject, typ, aud, requested, actor string) {
		form := values("subject_token", subject, "subject_token_type", typ, "audience", aud, "requested_token_type", requested, "actor_token", actor)
		for k, v := range form {
			if v[0] == "" {
				delete(form, k)
			}
		}
		err := tokenexchange.New(settings{}, nil, nil).Check(form)
		if err == nil {
			if len(subject) > tokenexchange.MaxSubjectTokenBytes {
				t.Fatalf("Check accepted a subject_token of %d bytes", len(subject))
			}
			if aud != "" {
				if id, perr := tokenexchange.ParseAudience(aud); perr != nil || "urn:tollgate:account:"+strconv.FormatInt(id, 10) != aud {
					t.Fatalf("Check accepted audience %q", aud)
				}
			}
			return
		}
		if c := code(err); !slices.Contains([]string{"invalid_request", "invalid_target", "unsupported_token_type"}, c) {
			t.Fatalf("Check = %v, code %q", err, c)
		}
	})
}

// env is a grant over a real store (SQLite) and token service: root ──
// child, and a second tree other.
type env struct {
	grant              *tokenexchange.Grant
	svc                *tokens.Service
	db                 *sqlstore.Store
	root, child, other storage.Account
	client, another    storage.Client
	now                time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{URL: sqltest.SQLite(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, now: time.Now().Truncate(time.Second)}
	account := func(name string, parent int64, st storage.Status) storage.Account {
		a, err := db.CreateAccount(ctx, storage.Account{Name: name, ParentID: parent, Status: st})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	e.root = account("root", 0, storage.StatusActive)
	e.child = account("child", e.root.ID, storage.StatusActive)
	e.other = account("other", 0, storage.StatusActive)
	client := func(kind storage.Kind) storage.Client {
		c, err := db.CreateClient(ctx, storage.Client{AccountID: e.root.ID, Name: "c", Kind: kind, SecretHash: "h", Status: storage.StatusActive,
			GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	e.client, e.another = client(storage.KindClient), client(storage.KindKey)
	format, err := tokens.NewOpaque(bytes.Repeat([]byte{'k'}, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return e.now }
	e.svc = tokens.New(tokens.Options{Format: format, Tokens: memory.New(memory.Options{Now: now}), Store: db, Now: now})
	e.grant = tokenexchange.New(settings{}, e.svc, db)
	return e
}

// issue mints a token of c on the root account, living an hour.
func (e *env) issue(t *testing.T, c storage.Client, scopes ...string) string {
	t.Helper()
	tok, _, err := e.svc.Issue(t.Context(), "", tokens.Claims{ClientID: c.ID, Generation: c.Generation, AccountID: e.root.ID,
		GrantType: "client_credentials", ExpiresAt: e.now.Add(time.Hour)}, scopes, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAuthorize: the subject token must be an active token of the
// exchanging client; the target an active account of its subtree; the new
// token is bounded by the subject token.
func TestAuthorize(t *testing.T) {
	e := newEnv(t)
	subject := e.issue(t, e.client, "read")
	aud := func(a storage.Account) string { return tokenexchange.AudiencePrefix + strconv.FormatInt(a.ID, 10) }
	key, err := apikey.Format(e.another.ID, strings.Repeat("s", 43))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		client      storage.Client
		form        url.Values
		wantCode    string
		wantAccount int64
		wantBounds  bool
	}{
		{"own token, child", e.client, values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken, "audience", aud(e.child)), "", e.child.ID, true},
		{"own token, own account", e.client, values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken, "audience", aud(e.root)), "", e.root.ID, true},
		{"own token, no audience", e.client, values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken), "", e.root.ID, true},
		{"own token, other tree", e.client, values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken, "audience", aud(e.other)), "invalid_target", 0, false},
		{"own token, unknown account", e.client, values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken, "audience", "urn:tollgate:account:99999"), "invalid_target", 0, false},
		{"own token, wider scope", e.client, values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken, "scope", "read write"), "invalid_scope", 0, false},
		{"another's token", e.another, values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken), "invalid_request", 0, false},
		{"no token", e.client, values("subject_token", "x", "subject_token_type", tokenexchange.TypeAccessToken), "invalid_request", 0, false},
		{"API key, the authenticated one", e.another, values("subject_token", key, "subject_token_type", tokenexchange.TypeAPIKey, "audience", aud(e.child)), "", e.child.ID, false},
		{"API key of another client", e.client, values("subject_token", key, "subject_token_type", tokenexchange.TypeAPIKey), "invalid_request", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := e.grant.Authorize(t.Context(), tt.client, tt.form)
			if got := code(err); got != tt.wantCode {
				t.Fatalf("Authorize = %v, want code %q", err, tt.wantCode)
			}
			if err != nil {
				return
			}
			if sub.AccountID != tt.wantAccount {
				t.Errorf("account = %d, want %d", sub.AccountID, tt.wantAccount)
			}
			if aud := tt.form.Get("audience"); aud != "" && !slices.Equal(sub.Audience, []string{aud}) || aud == "" && sub.Audience != nil {
				t.Errorf("audience = %v, want the requested %q", sub.Audience, aud)
			}
			if (sub.Within != nil) != tt.wantBounds {
				t.Fatalf("bounds = %+v, want bounds: %v", sub.Within, tt.wantBounds)
			}
			if b := sub.Within; b != nil && (!slices.Equal(b.Scopes, []string{"read"}) || !b.ExpiresAt.Equal(e.now.Add(time.Hour)) || b.Generation != e.client.Generation) {
				t.Errorf("bounds = %+v, want the subject token's scopes, expiry and generation", b)
			}
		})
	}
	// A disabled target account is refused, as is one below a disabled one.
	if _, err := e.db.UpdateAccount(t.Context(), e.child.ID, func(a *storage.Account) error { a.Status = storage.StatusDisabled; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = e.grant.Authorize(t.Context(), e.client, values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken, "audience", aud(e.child)))
	if got := code(err); got != "invalid_target" {
		t.Errorf("disabled child: Authorize = %v, want invalid_target", err)
	}
}

// TestAdmitThroughGrant: through the shared steps, an exchanged token is
// the subject token's client on the target account, with the subject
// token's scopes at most, expiring with it at the latest, and answers
// issued_token_type.
func TestAdmitThroughGrant(t *testing.T) {
	e := newEnv(t)
	subject := e.issue(t, e.client, "read")
	e.now = e.now.Add(50 * time.Minute)
	authed := oauth.NewClient(e.client)
	form := values("subject_token", subject, "subject_token_type", tokenexchange.TypeAccessToken,
		"audience", tokenexchange.AudiencePrefix+strconv.FormatInt(e.child.ID, 10))
	adm, err := grants.Admit(t.Context(), e.grant, grants.Request{Client: authed, Form: form}, e.now)
	if err != nil {
		t.Fatal(err)
	}
	c := adm.Claims
	if c.ClientID != e.client.ID || c.AccountID != e.child.ID || c.GrantType != tokenexchange.GrantType || !c.ExpiresAt.Equal(e.now.Add(10*time.Minute)) {
		t.Errorf("claims = %+v; want the client on the child, expiring with the subject token in 10 minutes", c)
	}
	if !slices.Equal(adm.Scopes, []string{"read"}) {
		t.Errorf("scopes = %v, want read", adm.Scopes)
	}
	if got := e.grant.ResponseExtra()["issued_token_type"]; got != tokenexchange.TypeAccessToken {
		t.Errorf("issued_token_type = %v", got)
	}
}
