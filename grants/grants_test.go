package grants_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/storage"
)

// fakeGrant is a grant whose every decision the test sets.
type fakeGrant struct {
	name     string
	policy   grants.Policy
	checkErr error
	subject  grants.Subject
	authErr  error
	// authorized counts Authorize calls: the grant's own work (a password
	// check) must not run for a request the shared steps refuse.
	authorized int
}

var _ grants.Grant = (*fakeGrant)(nil)

func (g *fakeGrant) Name() string           { return g.name }
func (g *fakeGrant) Policy() grants.Policy  { return g.policy }
func (g *fakeGrant) Check(url.Values) error { return g.checkErr }
func (g *fakeGrant) Authorize(context.Context, storage.Client, url.Values) (grants.Subject, error) {
	g.authorized++
	return g.subject, g.authErr
}

func TestAdmit(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	errOwn := errors.New("the grant's own refusal")
	base := storage.Client{ID: 7, AccountID: 3, Generation: 4, GrantTypes: []string{"g"}, Scopes: []string{"a", "b"}}
	with := func(f func(c *storage.Client)) storage.Client { c := base; f(&c); return c }
	tests := []struct {
		name      string
		client    storage.Client
		grant     fakeGrant
		scopes    []string
		asked     time.Duration
		wantErr   error
		wantMax   time.Duration // of a *LifetimeError
		wantLife  time.Duration
		wantScope []string
		wantAuth  int
	}{
		{name: "allowed by its grant types", client: base, grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour}},
			wantLife: time.Hour, wantScope: []string{"a", "b"}, wantAuth: 1},
		{name: "grant not listed", client: with(func(c *storage.Client) { c.GrantTypes = []string{"other"} }),
			grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour}}, wantErr: grants.ErrNotAllowed},
		{name: "grant not listed, allowed implicitly", client: with(func(c *storage.Client) { c.GrantTypes = nil }),
			grant:    fakeGrant{policy: grants.Policy{Lifetime: time.Hour, Implicit: func(c storage.Client) bool { return c.ID == 7 }}},
			wantLife: time.Hour, wantScope: []string{"a", "b"}, wantAuth: 1},
		{name: "grant not listed, implicit for others", client: with(func(c *storage.Client) { c.GrantTypes = nil }),
			grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour, Implicit: func(c storage.Client) bool { return c.ID == 8 }}}, wantErr: grants.ErrNotAllowed},
		{name: "the grant's own check", client: base, grant: fakeGrant{checkErr: errOwn}, wantErr: errOwn},
		{name: "requested scopes", client: base, grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour}}, scopes: []string{"b", "z"},
			wantLife: time.Hour, wantScope: []string{"b"}, wantAuth: 1},
		{name: "no requested scope allowed", client: base, grant: fakeGrant{}, scopes: []string{"z"}, wantErr: grants.ErrNoScope},
		{name: "the grant's own refusal", client: base, grant: fakeGrant{authErr: errOwn}, wantErr: errOwn, wantAuth: 1},
		{name: "client's lifetime replaces the grant's", client: with(func(c *storage.Client) { c.TokenLifetime = 5 * time.Hour }),
			grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour}}, wantLife: 5 * time.Hour, wantScope: []string{"a", "b"}, wantAuth: 1},
		{name: "askable: the default", client: base, grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour, MaxLifetime: 10 * time.Hour}},
			wantLife: time.Hour, wantScope: []string{"a", "b"}, wantAuth: 1},
		{name: "askable: asked", client: base, grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour, MaxLifetime: 10 * time.Hour}},
			asked: 10 * time.Hour, wantLife: 10 * time.Hour, wantScope: []string{"a", "b"}, wantAuth: 1},
		{name: "askable: over the maximum", client: base, grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour, MaxLifetime: 10 * time.Hour}},
			asked: 11 * time.Hour, wantMax: 10 * time.Hour},
		{name: "askable: the client's lifetime caps the default", client: with(func(c *storage.Client) { c.TokenLifetime = time.Minute }),
			grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour, MaxLifetime: 10 * time.Hour}}, wantLife: time.Minute, wantScope: []string{"a", "b"}, wantAuth: 1},
		{name: "askable: the client's lifetime caps what is asked", client: with(func(c *storage.Client) { c.TokenLifetime = time.Minute }),
			grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour, MaxLifetime: 10 * time.Hour}}, asked: time.Hour, wantMax: time.Minute},
		{name: "askable: a client's longer lifetime caps nothing", client: with(func(c *storage.Client) { c.TokenLifetime = 100 * time.Hour }),
			grant: fakeGrant{policy: grants.Policy{Lifetime: time.Hour, MaxLifetime: 10 * time.Hour}}, asked: 11 * time.Hour, wantMax: 10 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.grant
			g.name = "g"
			g.subject = grants.Subject{AccountID: 9, Subject: "12", Username: "u"}
			authed := oauth.NewClient(tt.client)
			authed.AuthGeneration = 3 // the previous secret's, during a rotation
			adm, err := grants.Admit(t.Context(), &g, grants.Request{Client: authed, Scopes: tt.scopes, Lifetime: tt.asked}, now)
			if g.authorized != tt.wantAuth {
				t.Errorf("Authorize ran %d times, want %d", g.authorized, tt.wantAuth)
			}
			var tooLong *grants.LifetimeError
			switch {
			case tt.wantMax != 0:
				if !errors.As(err, &tooLong) || tooLong.Max != tt.wantMax {
					t.Fatalf("Admit = %v, want a *LifetimeError of %s", err, tt.wantMax)
				}
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Admit = %v, want %v", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("Admit = %v", err)
			}
			want := now.Truncate(time.Second).Add(tt.wantLife)
			c := adm.Claims
			if c.ClientID != 7 || c.Generation != 3 || c.AccountID != 9 || c.Subject != "12" || c.Username != "u" || c.GrantType != "g" ||
				!c.ExpiresAt.Equal(want) || c.Reuse {
				t.Errorf("claims = %+v; want client 7, generation 3, the grant's subject, expiring at %s", c, want)
			}
			if !slices.Equal(adm.Scopes, tt.wantScope) {
				t.Errorf("scopes = %v, want %v", adm.Scopes, tt.wantScope)
			}
		})
	}
}

// TestAdmitReuse: a token is reused only when both the grant and the client
// ask for it, and then expires at the end of its reuse window.
func TestAdmitReuse(t *testing.T) {
	now := time.Unix(1_000_000_000+1234, 0)
	for _, tt := range []struct {
		grantReuse, clientReuse, want bool
	}{{false, false, false}, {true, false, false}, {false, true, false}, {true, true, true}} {
		g := &fakeGrant{name: "g", policy: grants.Policy{Lifetime: time.Hour, Reuse: tt.grantReuse}}
		c := storage.Client{ID: 1, GrantTypes: []string{"g"}, ReuseTokens: tt.clientReuse}
		adm, err := grants.Admit(t.Context(), g, grants.Request{Client: oauth.NewClient(c)}, now)
		if err != nil {
			t.Fatal(err)
		}
		if adm.Claims.Reuse != tt.want {
			t.Errorf("grant reuse %v, client reuse %v: Reuse = %v, want %v", tt.grantReuse, tt.clientReuse, adm.Claims.Reuse, tt.want)
		}
		wantExp := now.Add(time.Hour)
		if tt.want {
			// Half-hour windows from the epoch: 1_000_001_234 falls in the
			// one starting at 1_000_000_800.
			wantExp = time.Unix(1_000_000_800, 0).Add(time.Hour)
		}
		if !adm.Claims.ExpiresAt.Equal(wantExp) {
			t.Errorf("grant reuse %v, client reuse %v: ExpiresAt = %s, want %s", tt.grantReuse, tt.clientReuse, adm.Claims.ExpiresAt, wantExp)
		}
	}
}

func TestRegistry(t *testing.T) {
	built := map[string]int{}
	factory := func(name string) grants.Factory {
		return func() grants.Grant { built[name]++; return &fakeGrant{name: name} }
	}
	r := &grants.Registry{}
	r.Register("a", grants.TokenEndpoint, factory("a"))
	r.Register("own", grants.OwnEndpoint, factory("own"))
	r.Register("b", grants.TokenEndpoint, factory("b"))
	if got := r.Names(); !slices.Equal(got, []string{"a", "own", "b"}) {
		t.Errorf("Names() = %v", got)
	}

	set, err := r.Enable([]string{"b", "own"})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Names(); !slices.Equal(got, []string{"own", "b"}) {
		t.Errorf("enabled Names() = %v, want [own b] (registration order)", got)
	}
	if got := set.TokenEndpointNames(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("TokenEndpointNames() = %v, want [b]", got)
	}
	if got := set.Assignable(); !slices.Equal(got, []string{"own", "b"}) {
		t.Errorf("Assignable() = %v, want [own b]", got)
	}
	if got := len(set.Handlers(nil)); got != 1 {
		t.Errorf("%d token endpoint handlers, want 1", got)
	}
	if set.Get("a") != nil || set.Get("own") == nil || set.Get("nope") != nil {
		t.Errorf("Get(a), Get(own), Get(nope) = %v, %v, %v; want nil, own, nil", set.Get("a"), set.Get("own"), set.Get("nope"))
	}
	if built["a"] != 0 {
		t.Error("a disabled grant was built")
	}

	if _, err := r.Enable([]string{"a", "c"}); err == nil {
		t.Error("Enable(an unregistered grant) = nil error")
	}
	r.Register("misnamed", grants.TokenEndpoint, func() grants.Grant { return &fakeGrant{name: "other"} })
	if _, err := r.Enable([]string{"misnamed"}); err == nil {
		t.Error("Enable(a grant built under another name) = nil error")
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a name twice did not panic")
		}
	}()
	r.Register("a", grants.TokenEndpoint, factory("a"))
}

// TestAdmitWithin: a token bounded by another (Subject.Within, token
// exchange) gets only scopes among the other's, expires no later than it,
// and stands on its secret generation.
func TestAdmitWithin(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	client := storage.Client{ID: 7, AccountID: 3, Generation: 4, GrantTypes: []string{"g"}, Scopes: []string{"a", "b", "c"}}
	tests := []struct {
		name      string
		bounds    grants.Bounds
		scopes    []string
		wantErr   error
		wantScope []string
		wantExp   time.Time
	}{
		{name: "scopes of the other token only", bounds: grants.Bounds{Scopes: []string{"b", "z"}, ExpiresAt: now.Add(10 * time.Hour), Generation: 2},
			wantScope: []string{"b"}, wantExp: now.Add(time.Hour)},
		{name: "requested among them", bounds: grants.Bounds{Scopes: []string{"a", "b"}, ExpiresAt: now.Add(10 * time.Hour), Generation: 2},
			scopes: []string{"a"}, wantScope: []string{"a"}, wantExp: now.Add(time.Hour)},
		{name: "expires with the other token", bounds: grants.Bounds{Scopes: []string{"a"}, ExpiresAt: now.Add(5 * time.Minute), Generation: 2},
			wantScope: []string{"a"}, wantExp: now.Add(5 * time.Minute)},
		{name: "none of the other's scopes left to the client", bounds: grants.Bounds{Scopes: []string{"z"}, ExpiresAt: now.Add(time.Hour), Generation: 2},
			wantErr: grants.ErrNoScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.bounds
			b.JKT = "thumbprint"
			g := &fakeGrant{name: "g", policy: grants.Policy{Lifetime: time.Hour, Reuse: true}, subject: grants.Subject{AccountID: 9, Within: &b}}
			c := client
			c.ReuseTokens = true
			adm, err := grants.Admit(t.Context(), g, grants.Request{Client: oauth.NewClient(c), Scopes: tt.scopes}, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Admit = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Admit = %v", err)
			}
			if !slices.Equal(adm.Scopes, tt.wantScope) {
				t.Errorf("scopes = %v, want %v", adm.Scopes, tt.wantScope)
			}
			if !adm.Claims.ExpiresAt.Equal(tt.wantExp) {
				t.Errorf("expires at %s, want %s", adm.Claims.ExpiresAt, tt.wantExp)
			}
			if adm.Claims.Generation != 2 || adm.Claims.AccountID != 9 || adm.Claims.JKT != "thumbprint" {
				t.Errorf("claims = %+v, want generation 2 and the DPoP key (the other token's), account 9", adm.Claims)
			}
			if adm.Claims.Reuse {
				t.Error("a bounded token is reused: its expiry is its own")
			}
		})
	}
}

// TestUniversal: a universal grant is allowed to every client, whatever its
// grant types, and is not among the grants a client may be given.
func TestUniversal(t *testing.T) {
	p := grants.Policy{Universal: true}
	if !grants.Allowed("u", p, storage.Client{}) {
		t.Error("a universal grant is not allowed to a client without grant types")
	}
	if grants.Allowed("u", grants.Policy{}, storage.Client{}) {
		t.Error("a plain grant is allowed to a client without grant types")
	}
	r := &grants.Registry{}
	r.Register("a", grants.TokenEndpoint, func() grants.Grant { return &fakeGrant{name: "a"} })
	r.Register("u", grants.TokenEndpoint, func() grants.Grant { return &fakeGrant{name: "u", policy: p} })
	set, err := r.Enable([]string{"a", "u"})
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Assignable(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Assignable() = %v, want [a]", got)
	}
	if got := set.TokenEndpointNames(); !slices.Equal(got, []string{"a", "u"}) {
		t.Errorf("TokenEndpointNames() = %v, want [a u]: a universal grant is still served and listed in the metadata", got)
	}
}
