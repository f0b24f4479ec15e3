// Package clientcredentials implements the client_credentials grant
// (RFC 6749 §4.4): a client obtains a token for itself.
package clientcredentials

import (
	"context"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/tokens"
)

// GrantType is the grant_type value this handler answers.
const GrantType = "client_credentials"

// Settings are the configuration values the grant reads.
type Settings interface {
	// ClientCredentialsLifetime is the token lifetime for clients without
	// their own.
	ClientCredentialsLifetime() time.Duration
}

// Handler handles client_credentials token requests.
type Handler struct {
	settings Settings
	issuer   *oauth.Issuer
}

var _ fosite.TokenEndpointHandler = (*Handler)(nil)

// New returns a Handler.
func New(settings Settings, issuer *oauth.Issuer) *Handler {
	return &Handler{settings: settings, issuer: issuer}
}

// CanHandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (h *Handler) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(GrantType)
}

// CanSkipClientAuth implements fosite.TokenEndpointHandler: never.
func (h *Handler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

// HandleTokenEndpointRequest checks the client may use the grant, grants the
// scopes and prepares the session.
func (h *Handler) HandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) error {
	if !ar.GetGrantTypes().ExactOne(GrantType) {
		return fosite.ErrUnknownRequest
	}
	authed, ok := oauth.AuthenticatedClient(ar.GetClient())
	if !ok {
		return fosite.ErrInvalidClient
	}
	client := authed.Client
	if !client.HasGrantType(GrantType) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the client_credentials grant.")
	}
	granted, err := scope.Grant(ar.GetRequestedScopes(), client.Scopes)
	if err != nil {
		return fosite.ErrInvalidScope.WithHint("None of the requested scopes is allowed for this client.")
	}
	return h.issuer.Prepare(ar, authed, granted, oauth.Session{Claims: tokens.Claims{AccountID: client.AccountID, GrantType: GrantType, Reuse: client.ReuseTokens}},
		h.settings.ClientCredentialsLifetime())
}

// PopulateTokenEndpointResponse implements fosite.TokenEndpointHandler.
func (h *Handler) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	return h.issuer.Issue(ctx, ar, resp)
}
