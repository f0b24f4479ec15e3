package clientcredentials_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/grants/clientcredentials"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/storage"
)

type settings struct{}

func (settings) ClientCredentialsLifetime() time.Duration { return 90 * time.Minute }

// TestGrant: a client listing the grant gets a token acting for itself, in
// its own account, for the configured lifetime unless it has its own, and
// reused when it asks for that; a client not listing it is refused, API
// keys included.
func TestGrant(t *testing.T) {
	g := clientcredentials.New(settings{})
	if g.Name() != "client_credentials" {
		t.Fatalf("Name() = %q", g.Name())
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		client    storage.Client
		wantErr   error
		wantLife  time.Duration
		wantReuse bool
	}{
		{"listed", storage.Client{GrantTypes: []string{"client_credentials"}}, nil, 90 * time.Minute, false},
		{"own lifetime", storage.Client{GrantTypes: []string{"client_credentials"}, TokenLifetime: 5 * time.Hour}, nil, 5 * time.Hour, false},
		{"reuse", storage.Client{GrantTypes: []string{"client_credentials"}, ReuseTokens: true}, nil, 90 * time.Minute, true},
		{"not listed", storage.Client{GrantTypes: []string{"eskimi_dsp"}}, grants.ErrNotAllowed, 0, false},
		{"a key not listing it", storage.Client{Kind: storage.KindKey, GrantTypes: []string{"api_key_session"}}, grants.ErrNotAllowed, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client
			c.ID, c.AccountID, c.Scopes = 5, 8, []string{"read"}
			adm, err := grants.Admit(t.Context(), g, grants.Request{Client: oauth.NewClient(c)}, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Admit = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			cl := adm.Claims
			if cl.ClientID != 5 || cl.AccountID != 8 || cl.Subject != "" || cl.Username != "" || cl.GrantType != "client_credentials" || cl.Reuse != tt.wantReuse {
				t.Errorf("claims = %+v; want the client's own token in account 8, reuse %v", cl, tt.wantReuse)
			}
			if !tt.wantReuse && !cl.ExpiresAt.Equal(now.Add(tt.wantLife)) {
				t.Errorf("ExpiresAt = %s, want %s", cl.ExpiresAt, now.Add(tt.wantLife))
			}
		})
	}
}
