package e2e

import (
	"errors"
	"net/url"
	"strconv"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestGoOAuth2ClientAssertion: golang.org/x/oauth2's clientcredentials, a
// client Tollgate did not write, sends a client assertion in its endpoint
// parameters and gets a token; the same assertion sent again is a replay,
// which the library reports as invalid_client.
func TestGoOAuth2ClientAssertion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		k := newClientKey(t, jose.EdDSA, "go")
		c := f.pkjwtClient("x/oauth2", keySet(t, k))
		cfg := clientcredentials.Config{
			ClientID: strconv.FormatInt(c.ID, 10),
			TokenURL: f.srv.URL + "/oauth/token",
			Scopes:   []string{"read"},
			EndpointParams: url.Values{
				"client_assertion_type": {assertionType},
				"client_assertion":      {k.sign(t, f.claimsFor(c.ID))},
			},
			AuthStyle: oauth2.AuthStyleInParams,
		}
		ctx := t.Context()
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if !f.active(tok.AccessToken) {
			t.Fatal("the token is not active")
		}
		_, err = cfg.Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
			t.Fatalf("Token with a replayed assertion: got %v, want invalid_client", err)
		}
	})
}
