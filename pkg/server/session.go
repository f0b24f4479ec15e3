package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// KeySessionGrant labels the tokens minted by POST /auth/access/session.
const KeySessionGrant = "api_key_session"

// handleKeySession serves POST /auth/access/session: an API key (as the
// Basic password, in X-API-Key, or as client_secret) is exchanged for a key
// token. The caller may choose the lifetime in seconds (`lifetime`) up to
// the credential's cap (see keySessionCap); a longer one is refused, not
// cut. The token dies with the key.
//
// The key session is a grant like any other: only a credential allowed it
// (see MayOpenKeySession) gets a token here.
func (s *Server) handleKeySession(w http.ResponseWriter, r *http.Request) {
	form, oerr := s.readOptionalBody(r)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	creds, oerr := s.keySessionCredentials(r, form)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	var asked time.Duration
	if raw := form.Get("lifetime"); raw != "" {
		secs, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || secs <= 0 || secs > int64(s.opts.KeySessionMaxLifetime/time.Second) {
			writeJSONError(w, r, errInvalidRequest(fmt.Sprintf("The lifetime parameter must be a whole number of seconds from 1 to %d.",
				int64(s.opts.KeySessionMaxLifetime/time.Second))))
			return
		}
		asked = time.Duration(secs) * time.Second
	}
	requested, err := scope.Parse(form.Get("scope"))
	if err != nil {
		writeJSONError(w, r, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", description: "The scope parameter is malformed."})
		return
	}
	authed, ok := s.authenticate(w, r, creds)
	if !ok {
		return
	}
	if !MayOpenKeySession(authed.Client) {
		writeJSONError(w, r, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client",
			description: "The client is not allowed to open a key session."})
		return
	}
	longest := keySessionCap(authed.Client, s.opts.KeySessionMaxLifetime)
	lifetime := min(s.opts.KeySessionLifetime, longest)
	if asked != 0 {
		if asked > longest {
			writeJSONError(w, r, errInvalidRequest(fmt.Sprintf("The lifetime parameter exceeds this key's maximum of %d seconds.",
				int64(longest/time.Second))))
			return
		}
		lifetime = asked
	}
	granted, err := scope.Grant(requested, authed.Scopes)
	if err != nil {
		writeJSONError(w, r, &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
			description: "None of the requested scopes is allowed for this key."})
		return
	}
	ri := info(r)
	ri.grantType = KeySessionGrant
	// The key is authenticated: hold it to its token rate before minting,
	// as the token endpoint does.
	if !s.allowToken(w, r, authed.ID) {
		return
	}
	now := s.opts.Now().Truncate(time.Second)
	tok, rec, err := s.opts.Tokens.Issue(r.Context(), "", tokens.Claims{
		ClientID:   authed.ID,
		Generation: authed.AuthGeneration,
		AccountID:  authed.AccountID,
		GrantType:  KeySessionGrant,
		ExpiresAt:  now.Add(lifetime),
	}, granted, nil)
	if err != nil {
		writeJSONError(w, r, errUnavailable(err))
		return
	}
	body := map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int64(rec.ExpiresAt.Sub(now).Round(time.Second) / time.Second),
	}
	if len(rec.Scopes) > 0 {
		body["scope"] = strings.Join(rec.Scopes, " ")
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, body)
}

// MayOpenKeySession reports whether credential c may exchange its secret
// for a key token: an API key may, as that is what keys are for; a plain
// client only when its grant types list KeySessionGrant, as for every other
// grant.
func MayOpenKeySession(c storage.Client) bool {
	return c.Kind == storage.KindKey || c.HasGrantType(KeySessionGrant)
}

// keySessionCap is the longest key token c may get: the configured
// maximum, or the credential's own token lifetime when it is shorter, so a
// credential limited to short tokens cannot step around its limit here.
func keySessionCap(c storage.Client, configured time.Duration) time.Duration {
	if c.TokenLifetime > 0 && c.TokenLifetime < configured {
		return c.TokenLifetime
	}
	return configured
}

// readOptionalBody reads a form or JSON body; an empty body is no
// parameters.
func (s *Server) readOptionalBody(r *http.Request) (url.Values, *oauthError) {
	if r.ContentLength == 0 && r.Header.Get("Content-Type") == "" {
		return url.Values{}, nil
	}
	return readBody(r, s.opts.MaxBodyBytes, true)
}

// keySessionCredentials reads the key from X-API-Key or the usual client
// authentication, never both.
func (s *Server) keySessionCredentials(r *http.Request, form url.Values) (oauth.Credentials, *oauthError) {
	keys := r.Header.Values("X-API-Key")
	if len(keys) == 0 {
		return readClientCredentials(r, form)
	}
	if len(keys) > 1 || r.Header.Get("Authorization") != "" || len(form["client_secret"]) > 0 {
		return oauth.Credentials{}, errInvalidRequest("The request uses more than one client authentication method.")
	}
	return keyCredentials(keys[0], form.Get("client_id"))
}
