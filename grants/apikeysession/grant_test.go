package apikeysession_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/grants/apikeysession"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/storage"
)

type settings struct{}

func (settings) KeySessionLifetime() time.Duration    { return 24 * time.Hour }
func (settings) KeySessionMaxLifetime() time.Duration { return 30 * 24 * time.Hour }

// TestGrant: an API key may open a key session without listing the grant,
// a plain client only when it lists it; the lifetime is the configured one
// or the one asked, up to the configured cap or the credential's own token
// lifetime when shorter; the token acts for the credential.
func TestGrant(t *testing.T) {
	g := apikeysession.New(settings{})
	if g.Name() != "api_key_session" {
		t.Fatalf("Name() = %q", g.Name())
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	key := storage.Client{Kind: storage.KindKey, GrantTypes: []string{"client_credentials"}}
	client := storage.Client{Kind: storage.KindClient, GrantTypes: []string{"client_credentials", "eskimi_dsp"}}
	listed := storage.Client{Kind: storage.KindClient, GrantTypes: []string{"api_key_session"}}
	short := key
	short.TokenLifetime = 10 * time.Minute
	tests := []struct {
		name     string
		client   storage.Client
		asked    time.Duration
		wantErr  error
		wantMax  time.Duration
		wantLife time.Duration
	}{
		{"a key", key, 0, nil, 0, 24 * time.Hour},
		{"a key asking", key, 30 * 24 * time.Hour, nil, 0, 30 * 24 * time.Hour},
		{"a key asking too much", key, 30*24*time.Hour + time.Second, nil, 30 * 24 * time.Hour, 0},
		{"a plain client", client, 0, grants.ErrNotAllowed, 0, 0},
		{"a plain client listing the grant", listed, time.Hour, nil, 0, time.Hour},
		{"a key with a short lifetime", short, 0, nil, 0, 10 * time.Minute},
		{"a key with a short lifetime asking more", short, 11 * time.Minute, nil, 10 * time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client
			c.ID, c.AccountID, c.Scopes = 5, 8, []string{"events"}
			adm, err := grants.Admit(t.Context(), g, grants.Request{Client: oauth.NewClient(c), Lifetime: tt.asked}, now)
			var tooLong *grants.LifetimeError
			switch {
			case tt.wantMax != 0:
				if !errors.As(err, &tooLong) || tooLong.Max != tt.wantMax {
					t.Fatalf("Admit = %v, want a *LifetimeError of %s", err, tt.wantMax)
				}
				return
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("Admit = %v, want %v", err, tt.wantErr)
			case err != nil:
				return
			}
			cl := adm.Claims
			if cl.ClientID != 5 || cl.AccountID != 8 || cl.Subject != "" || cl.GrantType != "api_key_session" || cl.Reuse {
				t.Errorf("claims = %+v; want the credential's own token in account 8", cl)
			}
			if !cl.ExpiresAt.Equal(now.Add(tt.wantLife)) {
				t.Errorf("ExpiresAt = %s, want %s", cl.ExpiresAt, now.Add(tt.wantLife))
			}
		})
	}
}
