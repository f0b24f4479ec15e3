package server

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// introspection is an RFC 7662 §2.2 answer.
type introspection struct {
	Active    bool     `json:"active"`
	ClientID  string   `json:"client_id,omitempty"`
	Scope     string   `json:"scope,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	AccountID int64    `json:"account_id,omitempty"`
	GrantType string   `json:"grant_type,omitempty"`
	// Cnf names the DPoP key of a bound token (RFC 9449 §6.2).
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is the cnf member of a DPoP-bound token's introspection.
type confirmation struct {
	JKT string `json:"jkt"`
}

// handleIntrospect serves POST /oauth/introspect (RFC 7662). Only clients
// allowed to introspect may call it, authenticated with Basic or in the
// body; a token of an account outside the caller's subtree is inactive to
// it. Anything not good is exactly {"active":false}.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, caller, ok := s.authenticateCaller(w, r)
	if !ok {
		return
	}
	if !caller.MayIntrospect {
		writeJSONError(w, r, &oauthError{status: http.StatusForbidden, code: "unauthorized_client",
			description: "The client is not allowed to introspect tokens."})
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeJSONError(w, r, errInvalidRequest("The token parameter is missing."))
		return
	}
	answer, err := s.introspect(r, caller, tok)
	if err != nil {
		writeJSONError(w, r, errUnavailable(err))
		return
	}
	info(r).outcome = "inactive"
	if answer.Active {
		info(r).outcome = "active"
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, answer)
}

// introspect looks tok up. It answers an error only when a backend failed.
func (s *Server) introspect(r *http.Request, caller storage.Client, tok string) (introspection, error) {
	ctx := r.Context()
	inactive := introspection{}
	v, err := s.opts.Tokens.Introspect(ctx, caller.AccountID, tok)
	if errors.Is(err, tokens.ErrInactive) {
		return inactive, nil
	}
	if err != nil {
		return inactive, err
	}
	rec := v.Token
	sub := strconv.FormatInt(rec.ClientID, 10)
	if rec.Subject != "" {
		sub = rec.Subject
	}
	answer := introspection{
		Active:    true,
		ClientID:  strconv.FormatInt(rec.ClientID, 10),
		Scope:     strings.Join(rec.Scopes, " "),
		Exp:       rec.ExpiresAt.Unix(),
		Iat:       rec.IssuedAt.Unix(),
		Sub:       sub,
		Username:  rec.Username,
		TokenType: "Bearer",
		Iss:       s.opts.Issuer,
		Aud:       rec.Audience,
		AccountID: rec.AccountID,
		GrantType: rec.GrantType,
	}
	if rec.JKT != "" {
		answer.TokenType = "DPoP"
		answer.Cnf = &confirmation{JKT: rec.JKT}
	}
	return answer, nil
}

// authenticateCaller reads a form body and authenticates the calling client
// with Basic or client_secret_post. It writes the error answer itself and
// reports false when the request must stop.
func (s *Server) authenticateCaller(w http.ResponseWriter, r *http.Request) (url.Values, storage.Client, bool) {
	form, oerr := readBody(r, s.opts.MaxBodyBytes, false)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return nil, storage.Client{}, false
	}
	creds, oerr := readClientCredentials(r, form)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return nil, storage.Client{}, false
	}
	authed, ok := s.authenticate(w, r, creds)
	if !ok {
		return nil, storage.Client{}, false
	}
	return form, authed.Client, true
}

// authenticate checks creds, writing the error answer itself when they are
// not good or a backend failed.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, creds oauth.Credentials) (*oauth.Client, bool) {
	return s.authenticateWith(w, r, creds, false)
}

// authenticateCounted is authenticate counting a known client's refusal
// in its usage (unauthorized): the key session's.
func (s *Server) authenticateCounted(w http.ResponseWriter, r *http.Request, creds oauth.Credentials) (*oauth.Client, bool) {
	return s.authenticateWith(w, r, creds, true)
}

func (s *Server) authenticateWith(w http.ResponseWriter, r *http.Request, creds oauth.Credentials, count bool) (*oauth.Client, bool) {
	reqctx.SetPrincipal(r.Context(), reqctx.Principal{ClientID: creds.ClientID})
	// The source (for the brute-force protection) is in the context:
	// reqctx.Middleware; the caller's address, for the client's allowlist,
	// too: the endpoint is named for the audit trail.
	ctx := oauth.WithCaller(r.Context(), reqctx.Addr(r.Context()), endpointName(r.URL.Path))
	ctx, outage := oauth.WithOutage(ctx)
	ctx, refusal := oauth.WithRefusal(ctx)
	authed, err := s.opts.Authenticator.Authenticate(ctx, creds)
	if err != nil {
		if count {
			s.countRefused(refusal)
		}
		s.writeProviderError(w, r, outage, err)
		return nil, false
	}
	return authed, true
}

// endpointName names the endpoint at path for the audit trail.
func endpointName(path string) string {
	switch path {
	case PathKeySession:
		return "key session"
	case PathIntrospect:
		return "introspection endpoint"
	case PathRevoke:
		return "revocation endpoint"
	}
	return "token endpoint"
}
