package grants

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/tokens"
)

// Handler serves a Grant at the token endpoint: fosite's token endpoint
// handler that runs the shared steps (Admit) and mints the token through
// the token service.
type Handler struct {
	grant  Grant
	tokens *tokens.Service
}

var _ fosite.TokenEndpointHandler = (*Handler)(nil)

// NewHandler returns the token endpoint handler of g, minting through svc.
func NewHandler(g Grant, svc *tokens.Service) *Handler {
	return &Handler{grant: g, tokens: svc}
}

// CanHandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (h *Handler) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(h.grant.Name())
}

// CanSkipClientAuth implements fosite.TokenEndpointHandler: never.
func (h *Handler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

// HandleTokenEndpointRequest admits the request (Admit), grants the scopes
// and fills the request's *oauth.Session with the token's claims.
func (h *Handler) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	authed, ok := oauth.AuthenticatedClient(ar.GetClient())
	if !ok {
		return fosite.ErrInvalidClient
	}
	adm, err := Admit(ctx, h.grant, Request{Client: authed, Scopes: ar.GetRequestedScopes(), Form: ar.GetRequestForm()}, h.tokens.Now())
	switch {
	case errors.Is(err, ErrNotAllowed):
		return fosite.ErrUnauthorizedClient.WithHintf("The client is not allowed to use the %s grant.", h.grant.Name())
	case errors.Is(err, ErrNoScope):
		return fosite.ErrInvalidScope.WithHint("None of the requested scopes is allowed for this client.")
	case err != nil:
		return err
	}
	sess, ok := ar.GetSession().(*oauth.Session)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected session type")
	}
	for _, s := range adm.Scopes {
		ar.GrantScope(s)
	}
	for _, a := range adm.Audience {
		ar.GrantAudience(a)
	}
	sess.Claims = adm.Claims
	return nil
}

// PopulateTokenEndpointResponse implements fosite.TokenEndpointHandler: it
// mints the token the request's session describes and fills resp.
func (h *Handler) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := ar.GetSession().(*oauth.Session)
	if !ok || sess.ClientID == 0 || sess.ExpiresAt.IsZero() {
		return fosite.ErrServerError.WithDebug("token request has no prepared session")
	}
	now := h.tokens.Now().Truncate(time.Second)
	tok, rec, err := h.tokens.Issue(ctx, ar.GetID(), sess.Claims, ar.GetGrantedScopes(), ar.GetGrantedAudience())
	if err != nil {
		return oauth.RecordOutage(ctx, err)
	}
	resp.SetAccessToken(tok)
	if rec.JKT != "" {
		resp.SetTokenType("DPoP") // RFC 9449 §5
	} else {
		resp.SetTokenType("bearer")
	}
	resp.SetExpiresIn(rec.ExpiresAt.Sub(now).Round(time.Second))
	resp.SetScopes(rec.Scopes)
	if x, ok := h.grant.(Extender); ok {
		for k, v := range x.ResponseExtra() {
			resp.SetExtra(k, v)
		}
	}
	return nil
}

// Extender is implemented by a grant whose answers carry parameters of
// their own (token exchange's issued_token_type, RFC 8693 §2.2.1).
type Extender interface {
	// ResponseExtra returns the parameters to add to every answer.
	ResponseExtra() map[string]any
}
