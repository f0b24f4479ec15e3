package e2e

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

// TestDisabledGrants: a grant left out of grants.enabled answers
// unsupported_grant_type — at the token endpoint, or at the key session's
// own endpoint — and is absent from the metadata's grant_types_supported,
// while the enabled ones keep working.
func TestDisabledGrants(t *testing.T) {
	tests := []struct {
		name         string
		enabled      []string
		wantMetadata string
	}{
		{"client_credentials only", []string{"client_credentials"}, "client_credentials"},
		{"eskimi_dsp and key session", []string{"eskimi_dsp", "api_key_session"}, "eskimi_dsp"},
		{"client_credentials and token exchange", []string{"client_credentials", exchangeGrant}, "client_credentials " + exchangeGrant},
		{"every grant", nil, "client_credentials eskimi_dsp " + exchangeGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "embedded", func(c *config.Config) {
				c.Grants.Enabled = tt.enabled
				// The default grant types follow the enabled grants, as Load
				// fills them in.
				c.Credentials.DefaultGrantTypes = slices.DeleteFunc(strings.Fields(tt.wantMetadata), func(g string) bool { return g == exchangeGrant })
			})
			on := func(grant string) bool {
				return tt.enabled == nil || slices.Contains(tt.enabled, grant)
			}

			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL+"/.well-known/oauth-authorization-server", nil)
			res := f.do(req)
			if got := strings.Join(toStrings(res.json(t)["grant_types_supported"]), " "); got != tt.wantMetadata {
				t.Errorf("grant_types_supported = %q, want %q", got, tt.wantMetadata)
			}

			cc := f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.cc.ID, f.secretOf[f.cc.ID]))
			dsp := f.post("/oauth/token", "application/json", `{"grant_type":"eskimi_dsp","username":"alice","password":"`+testPassword+
				`","client_id":`+strconv.FormatInt(f.dsp.ID, 10)+`,"client_secret":"`+f.secretOf[f.dsp.ID]+`"}`)
			_, key := f.apiKey(f.alice, "events")
			session := f.post("/auth/access/session", "", "", "X-API-Key", key)
			exchange := f.post("/oauth/token", formCT, form("grant_type", exchangeGrant, "subject_token", key, "subject_token_type", typeAPIKey))
			for _, c := range []struct {
				grant string
				res   response
			}{{"client_credentials", cc}, {"eskimi_dsp", dsp}, {"api_key_session", session}, {exchangeGrant, exchange}} {
				if on(c.grant) {
					if c.res.status != http.StatusOK {
						t.Errorf("%s enabled: status %d, body %s; want 200", c.grant, c.res.status, c.res.body)
					}
					continue
				}
				wantError(t, c.res, http.StatusBadRequest, "unsupported_grant_type")
			}
		})
	}
}
