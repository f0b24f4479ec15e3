package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/grants/tokenexchange"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/dpop"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/tracing"
	"github.com/tollgate/tollgate/pkg/usage"
)

// handleToken serves POST /oauth/token (RFC 6749 §3.2) for form and JSON
// bodies. It settles what fosite answers poorly before handing over: the
// body format, unknown grant types, the authentication method, and backend
// failures that fosite would report as bad credentials.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ri := info(r)
	form, oerr := readBody(r, s.opts.MaxBodyBytes, true)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	grantType := form.Get("grant_type")
	switch {
	case grantType == "":
		writeJSONError(w, r, errInvalidRequest("The grant_type parameter is missing."))
		return
	case !s.grantEnabled(grantType):
		writeJSONError(w, r, errUnsupportedGrant)
		return
	}
	ri.grantType = grantType
	if _, err := scope.Parse(form.Get("scope")); err != nil {
		writeJSONError(w, r, &oauthError{status: http.StatusBadRequest, code: "invalid_scope",
			description: "The scope parameter is malformed."})
		return
	}
	creds, oerr := tokenCredentials(r, form)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	reqctx.SetPrincipal(r.Context(), reqctx.Principal{ClientID: creds.ClientID})

	// fosite reads only r.PostForm: hand it the decoded parameters.
	r.PostForm, r.Form = form, form
	r.Header.Set("Content-Type", formType)
	r.Body = http.NoBody

	// The source (for the brute-force protection) is in the context:
	// reqctx.Middleware.
	// fosite starts spans of its own from the span in the context; the
	// grant's span and the server span already cover them.
	ctx := oauth.WithCredentials(tracing.WithoutLibrarySpans(r.Context()), creds)
	ctx, outage := oauth.WithOutage(ctx)
	ctx, refusal := oauth.WithRefusal(ctx)
	ar, err := s.opts.Provider.NewAccessRequest(ctx, r, &oauth.Session{})
	if err != nil {
		s.countRefused(refusal)
		s.writeProviderError(w, r, outage, err)
		return
	}
	var accountID int64
	if c, ok := oauth.AuthenticatedClient(ar.GetClient()); ok {
		accountID = c.AccountID
	}
	// The proof is verified once the client is authenticated: only a
	// client can spend the replay store's memory.
	jkt, oerr := s.dpopKey(r, PathToken)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	if oerr := bindToken(ar, jkt); oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	// The client is authenticated: hold it to its token rate before minting.
	if !s.allowToken(w, r, creds.ClientID) {
		s.count(accountID, creds.ClientID, usage.OutcomeRateLimited)
		return
	}
	resp, err := s.opts.Provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.writeProviderError(w, r, outage, err)
		return
	}
	s.count(accountID, creds.ClientID, usage.OutcomeAllowed)
	body := resp.ToMap()
	if sc, _ := body["scope"].(string); strings.TrimSpace(sc) == "" {
		delete(body, "scope")
	}
	noStore(w.Header())
	writeJSON(w, http.StatusOK, body)
}

// dpopKey verifies the request's DPoP proof, if it has one, for a POST to
// path at the issuer's URL (the URL clients address, whatever proxies lie
// between), and returns the thumbprint of its key: empty without a proof.
func (s *Server) dpopKey(r *http.Request, path string) (string, *oauthError) {
	if s.opts.DPoP == nil {
		return "", nil
	}
	proof, err := dpop.FromHeader(r.Header)
	if err != nil {
		return "", errInvalidDPoPProof("The DPoP header must be sent once, with one proof of at most 8 KiB.", err)
	}
	if proof == "" {
		return "", nil
	}
	jkt, err := s.opts.DPoP.Verify(r.Context(), proof, dpop.Request{Method: r.Method, URL: strings.TrimSuffix(s.opts.Issuer, "/") + path})
	if errors.Is(err, dpop.ErrInvalid) {
		return "", errInvalidDPoPProof("The DPoP proof is invalid.", err)
	}
	if err != nil {
		return "", errUnavailable(err)
	}
	return jkt, nil
}

// bindToken binds the token of ar to the DPoP key jkt, and refuses a
// client whose tokens must be bound (dpop_bound_access_tokens) when the
// request had no proof, and a request whose grant bound the token to
// another key than the proof's.
func bindToken(ar fosite.AccessRequester, jkt string) *oauthError {
	sess, ok := ar.GetSession().(*oauth.Session)
	if !ok {
		return errServer(errors.New("unexpected session type"))
	}
	if c, ok := oauth.AuthenticatedClient(ar.GetClient()); ok && c.DPoPBoundAccessTokens && jkt == "" {
		return errInvalidDPoPProof("This client's access tokens must be bound to a key: send a DPoP proof.", nil)
	}
	// A grant that bound the token already (a token exchanged for a
	// DPoP-bound one keeps its key) needs a proof of that very key.
	if sess.JKT != "" && sess.JKT != jkt {
		return errInvalidDPoPProof("The subject token is bound to a DPoP key: send a proof of that key.", nil)
	}
	sess.JKT = jkt
	return nil
}

// tokenCredentials reads the client credentials of a token request: the
// usual ones (readClientCredentials), except for a token exchange whose
// subject token is an API key — the standard form of the key session —
// where the key is the client's credential, and so the request's only
// client authentication, as at POST /auth/access/session.
func tokenCredentials(r *http.Request, form url.Values) (oauth.Credentials, *oauthError) {
	if form.Get("grant_type") != tokenexchange.GrantType || form.Get("subject_token_type") != tokenexchange.TypeAPIKey {
		return readClientCredentials(r, form)
	}
	if len(r.Header.Values("Authorization")) > 0 || len(r.Header.Values("X-API-Key")) > 0 || form.Has("client_secret") {
		return oauth.Credentials{}, errInvalidRequest("The request uses more than one client authentication method: the API key subject_token authenticates it.")
	}
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		return oauth.Credentials{}, errInvalidRequest("The request uses more than one client authentication method: the API key subject_token authenticates it.")
	}
	key := form.Get("subject_token")
	if key == "" {
		return oauth.Credentials{}, errInvalidRequest("The subject_token parameter is missing.")
	}
	return keyCredentials(key, form.Get("client_id"))
}

// writeProviderError answers an error from fosite or a grant, unless a
// backend failed during the request: then the answer is 503, never a
// misleading invalid_client or invalid_grant. Attempts held back by the
// brute-force protection answer 429.
func (s *Server) writeProviderError(w http.ResponseWriter, r *http.Request, outage *oauth.Outage, err error) {
	if cause := outage.Err(); cause != nil {
		if !errors.Is(err, cause) {
			cause = errors.Join(cause, err)
		}
		writeJSONError(w, r, errUnavailable(cause))
		return
	}
	var blocked *bruteforce.BlockedError
	if errors.As(err, &blocked) {
		writeBlocked(w, r, blocked)
		return
	}
	writeJSONError(w, r, fromFosite(err))
}

// tokenRateClass names the token endpoint's limit in RateLimit headers.
const tokenRateClass = "token"

// allowToken applies the per-client token rate. It writes the answer itself
// and reports false when the request must stop.
func (s *Server) allowToken(w http.ResponseWriter, r *http.Request, clientID int64) bool {
	if s.opts.TokenRate <= 0 || s.opts.Limiter == nil {
		return true
	}
	limit := ratelimit.Limit{Rate: s.opts.TokenRate, Burst: s.opts.TokenRate}
	res, err := s.opts.Limiter.Allow(r.Context(), "t:"+strconv.FormatInt(clientID, 10), limit)
	if err != nil {
		writeJSONError(w, r, errUnavailable(fmt.Errorf("rate limiter: %w", err)))
		return false
	}
	if res.FailedOpen {
		// No decision was made: there is no rate to tell the client.
		return true
	}
	ratelimit.Headers(w.Header(), tokenRateClass, res)
	if !res.Allowed {
		writeJSONError(w, r, &oauthError{status: http.StatusTooManyRequests, code: "slow_down",
			description: "Too many token requests for this client: cache the token until it expires."})
		return false
	}
	return true
}
