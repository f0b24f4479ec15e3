package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/usage"
)

// handleKeySession serves POST /auth/access/session: an API key (as the
// Basic password, in X-API-Key, or as client_secret) is exchanged for a key
// token. The caller may choose the lifetime in seconds (`lifetime`) up to
// the credential's cap (grants.Lifetime); a longer one is refused, not
// cut. The token dies with the key.
//
// The key session is a grant like any other (grants/apikeysession): the
// shared steps (grants.Admit) decide whether the credential may open one,
// its lifetime and its scopes.
func (s *Server) handleKeySession(w http.ResponseWriter, r *http.Request) {
	grant := s.opts.KeySession
	if grant == nil {
		writeJSONError(w, r, errUnsupportedGrant)
		return
	}
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
	maxSecs := int64(grant.Policy().MaxLifetime / time.Second)
	var asked time.Duration
	if raw := form.Get("lifetime"); raw != "" {
		secs, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || secs <= 0 || secs > maxSecs {
			writeJSONError(w, r, errInvalidRequest(fmt.Sprintf("The lifetime parameter must be a whole number of seconds from 1 to %d.", maxSecs)))
			return
		}
		asked = time.Duration(secs) * time.Second
	}
	requested, err := scope.Parse(form.Get("scope"))
	if err != nil {
		writeJSONError(w, r, &oauthError{status: http.StatusBadRequest, code: "invalid_scope", description: "The scope parameter is malformed."})
		return
	}
	authed, ok := s.authenticateCounted(w, r, creds)
	if !ok {
		return
	}
	jkt, oerr := s.dpopKey(r, PathKeySession)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	if authed.DPoPBoundAccessTokens && jkt == "" {
		writeJSONError(w, r, errInvalidDPoPProof("This key's tokens must be bound to a key pair: send a DPoP proof.", nil))
		return
	}
	now := s.opts.Now().Truncate(time.Second)
	adm, err := grants.Admit(r.Context(), grant, grants.Request{Client: authed, Scopes: requested, Lifetime: asked, Form: form}, now)
	var tooLong *grants.LifetimeError
	switch {
	case errors.Is(err, grants.ErrNotAllowed):
		writeJSONError(w, r, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client",
			description: "The client is not allowed to open a key session."})
		return
	case errors.As(err, &tooLong):
		writeJSONError(w, r, errInvalidRequest(fmt.Sprintf("The lifetime parameter exceeds this key's maximum of %d seconds.",
			int64(tooLong.Max/time.Second))))
		return
	case errors.Is(err, grants.ErrNoScope):
		writeJSONError(w, r, &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
			description: "None of the requested scopes is allowed for this key."})
		return
	case err != nil:
		writeJSONError(w, r, errServer(err))
		return
	}
	ri := info(r)
	ri.grantType = grant.Name()
	// The key is authenticated: hold it to its token rate before minting,
	// as the token endpoint does.
	if !s.allowToken(w, r, authed.ID) {
		s.count(authed.AccountID, authed.ID, usage.OutcomeRateLimited)
		return
	}
	adm.Claims.JKT = jkt
	tok, rec, err := s.opts.Tokens.Issue(r.Context(), "", adm.Claims, adm.Scopes, nil)
	if err != nil {
		writeJSONError(w, r, errUnavailable(err))
		return
	}
	s.count(authed.AccountID, authed.ID, usage.OutcomeAllowed)
	tokenType := "bearer"
	if rec.JKT != "" {
		tokenType = "DPoP"
	}
	body := map[string]any{
		"access_token": tok,
		"token_type":   tokenType,
		"expires_in":   int64(rec.ExpiresAt.Sub(now).Round(time.Second) / time.Second),
	}
	if len(rec.Scopes) > 0 {
		body["scope"] = strings.Join(rec.Scopes, " ")
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, body)
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
	if len(keys) > 1 || r.Header.Get("Authorization") != "" || len(form["client_secret"]) > 0 ||
		len(form["client_assertion"]) > 0 || len(form["client_assertion_type"]) > 0 {
		return oauth.Credentials{}, errInvalidRequest("The request uses more than one client authentication method.")
	}
	return keyCredentials(keys[0], form.Get("client_id"))
}
