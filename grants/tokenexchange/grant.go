// Package tokenexchange implements token exchange (RFC 8693) at the token
// endpoint: a client hands in a token it holds (the subject token) and
// gets a new access token that can do no more than it, optionally acting
// on one descendant account only (audience urn:tollgate:account:<id>).
//
// Two kinds of subject token are accepted:
//
//   - an access token (urn:ietf:params:oauth:token-type:access_token) the
//     exchanging client was issued itself. Who may exchange: only that
//     client. RFC 8693 §2.1 leaves the policy to the server; handing a
//     token to another client would be delegation, which needs an
//     actor_token and an explicit policy Tollgate does not have. The new
//     token carries the subject token's client, secret generation and
//     user, so it dies with them like every other token; its scopes are
//     among the subject token's (a wider request is invalid_scope) and it
//     expires no later than the subject token.
//   - an API key (urn:tollgate:token-type:api_key): the standard form of
//     the key session (POST /auth/access/session). The key is then the
//     request's client authentication, and the rules are the key
//     session's (grants/apikeysession): who may open one, the lifetime.
//
// The target account must be the subject token's account or one of its
// descendants, and active; anything else is invalid_target (RFC 8693
// §2.2.2).
package tokenexchange

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/grants/apikeysession"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// GrantType is the grant_type value of token exchange (RFC 8693 §2.1).
const GrantType = "urn:ietf:params:oauth:grant-type:token-exchange"

// Token types (RFC 8693 §3).
//
//nolint:gosec // G101: protocol names, not credentials
const (
	// TypeAccessToken is an access token: the subject token type of an
	// exchanged token, and the issued_token_type of every answer.
	TypeAccessToken = "urn:ietf:params:oauth:token-type:access_token" // #nosec G101 -- a protocol name, not a credential
	// TypeAPIKey is a Tollgate API key (tgk_…). RFC 8693 §3 lets a server
	// define its own URIs; an API key is no access token (it is the
	// client's credential, not something issued to it), so it gets a name
	// in Tollgate's own urn:tollgate namespace.
	TypeAPIKey = "urn:tollgate:token-type:api_key" // #nosec G101 -- a token type's name, not a key
)

// AudiencePrefix starts an audience naming an account: the token acts on
// that account (and its descendants) only.
const AudiencePrefix = "urn:tollgate:account:"

// MaxSubjectTokenBytes bounds the subject token: longer than any token or
// key Tollgate issues, so a longer one is refused before any work.
const MaxSubjectTokenBytes = 4096

// Settings are the configuration values the grant reads: the key
// session's lifetimes, which exchanged tokens share.
type Settings interface {
	KeySessionLifetime() time.Duration
	KeySessionMaxLifetime() time.Duration
}

// Tokens validates subject tokens (tokens.Service).
type Tokens interface {
	Validate(ctx context.Context, value string) (tokens.Valid, error)
}

// Accounts answers where an account stands in the tree.
type Accounts interface {
	AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error)
	AccountActive(ctx context.Context, id int64) (bool, error)
}

// Grant is token exchange.
type Grant struct {
	keySession *apikeysession.Grant
	tokens     Tokens
	accounts   Accounts
}

var (
	_ grants.Grant    = (*Grant)(nil)
	_ grants.Extender = (*Grant)(nil)
)

// New returns the grant.
func New(settings Settings, toks Tokens, accounts Accounts) *Grant {
	return &Grant{keySession: apikeysession.New(settings), tokens: toks, accounts: accounts}
}

// Name implements grants.Grant.
func (g *Grant) Name() string { return GrantType }

// Policy implements grants.Grant: the key session's lifetimes, the
// credential's own token lifetime capping them. Every client may exchange
// a token it holds — the new one can only do less — so the grant is
// universal, never listed in a client's grant types; exchanging an API
// key further needs the key session (see Authorize).
func (g *Grant) Policy() grants.Policy {
	p := g.keySession.Policy()
	return grants.Policy{Lifetime: p.Lifetime, MaxLifetime: p.MaxLifetime, Universal: true}
}

// ResponseExtra implements grants.Extender: every answer is an access
// token (RFC 8693 §2.2.1).
func (g *Grant) ResponseExtra() map[string]any {
	return map[string]any{"issued_token_type": TypeAccessToken}
}

// Errors of RFC 8693 §2.2.2 that fosite does not define.
var (
	errInvalidTarget = &fosite.RFC6749Error{ErrorField: "invalid_target", CodeField: http.StatusBadRequest,
		DescriptionField: "The requested audience is not an active account this token may act on."}
	errUnsupportedTokenType = &fosite.RFC6749Error{ErrorField: "unsupported_token_type", CodeField: http.StatusBadRequest,
		DescriptionField: "The token type is not supported."}
)

// errInactiveSubject answers a subject token that is not good, or not the
// client's: the same answer, so that a client learns nothing of another's
// tokens.
var errInactiveSubject = fosite.ErrInvalidRequest.WithHint("The subject_token is not an active access token of this client.")

// Check implements grants.Grant: the RFC 8693 parameters Tollgate reads
// are well formed, the ones it does not support absent.
func (g *Grant) Check(form url.Values) error {
	subject := form.Get("subject_token")
	switch {
	case subject == "":
		return fosite.ErrInvalidRequest.WithHint("The subject_token parameter is missing.")
	case len(subject) > MaxSubjectTokenBytes:
		return fosite.ErrInvalidRequest.WithHintf("The subject_token exceeds %d bytes.", MaxSubjectTokenBytes)
	case form.Get("subject_token_type") == "":
		return fosite.ErrInvalidRequest.WithHint("The subject_token_type parameter is missing.")
	case !slices.Contains([]string{TypeAccessToken, TypeAPIKey}, form.Get("subject_token_type")):
		return errUnsupportedTokenType.WithHintf("The subject_token_type must be %s or %s.", TypeAccessToken, TypeAPIKey)
	case form.Has("requested_token_type") && form.Get("requested_token_type") != TypeAccessToken:
		return errUnsupportedTokenType.WithHintf("Only %s can be issued.", TypeAccessToken)
	case form.Has("actor_token") || form.Has("actor_token_type"):
		return fosite.ErrInvalidRequest.WithHint("Delegation (actor_token) is not supported.")
	case form.Has("resource"):
		return errInvalidTarget.WithHint("Name the target account with the audience parameter, not resource.")
	}
	if aud := form.Get("audience"); aud != "" {
		if _, err := ParseAudience(aud); err != nil {
			return errInvalidTarget.WithHintf("The audience must be %s<account id>.", AudiencePrefix)
		}
	}
	return nil
}

// ParseAudience returns the account id an audience names:
// urn:tollgate:account: followed by a decimal id without sign or leading
// zero.
func ParseAudience(aud string) (int64, error) {
	rest, ok := strings.CutPrefix(aud, AudiencePrefix)
	if !ok {
		return 0, errors.New("not an account audience")
	}
	id, ok := oauth.ParseClientID(rest)
	if !ok {
		return 0, errors.New("malformed account id")
	}
	return id, nil
}

// Authorize implements grants.Grant: it reads the subject token, bounds
// the new token by it, and moves it to the target account when an
// audience names one.
func (g *Grant) Authorize(ctx context.Context, client storage.Client, form url.Values) (grants.Subject, error) {
	var sub grants.Subject
	var err error
	if form.Get("subject_token_type") == TypeAPIKey {
		sub, err = g.keySubject(client, form.Get("subject_token"))
	} else {
		sub, err = g.tokenSubject(ctx, client, form)
	}
	if err != nil {
		return grants.Subject{}, err
	}
	aud := form.Get("audience")
	if aud == "" {
		return sub, nil
	}
	target, err := ParseAudience(aud)
	if err != nil {
		return grants.Subject{}, errInvalidTarget
	}
	if err := g.checkTarget(ctx, sub.AccountID, target); err != nil {
		return grants.Subject{}, err
	}
	sub.AccountID = target
	sub.Audience = []string{aud}
	return sub, nil
}

// keySubject is the subject of an API key: the key the client
// authenticated with (the HTTP layer authenticates the subject token as
// the client), if the key may open a key session.
func (g *Grant) keySubject(client storage.Client, key string) (grants.Subject, error) {
	id, _, err := apikey.Parse(key)
	if err != nil || id != client.ID {
		return grants.Subject{}, fosite.ErrInvalidRequest.WithHint("The subject_token is not the API key the request authenticated with.")
	}
	if !grants.Allowed(g.keySession.Name(), g.keySession.Policy(), client) {
		return grants.Subject{}, fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to open a key session.")
	}
	return grants.Subject{AccountID: client.AccountID}, nil
}

// tokenSubject is the subject of an access token the client holds: its
// account and user, bounded by its scopes, expiry and secret generation.
func (g *Grant) tokenSubject(ctx context.Context, client storage.Client, form url.Values) (grants.Subject, error) {
	v, err := g.tokens.Validate(ctx, form.Get("subject_token"))
	if errors.Is(err, tokens.ErrInactive) {
		return grants.Subject{}, errInactiveSubject
	}
	if err != nil {
		return grants.Subject{}, oauth.RecordOutage(ctx, fmt.Errorf("validate subject token: %w", err))
	}
	if v.Token.ClientID != client.ID {
		return grants.Subject{}, errInactiveSubject
	}
	requested, err := scope.Parse(form.Get("scope"))
	if err != nil {
		return grants.Subject{}, fosite.ErrInvalidScope.WithHint("The scope parameter is malformed.")
	}
	for _, s := range requested {
		if !slices.Contains(v.Token.Scopes, s) {
			return grants.Subject{}, fosite.ErrInvalidScope.WithHint("A requested scope is not among the subject token's.")
		}
	}
	return grants.Subject{
		AccountID: v.Token.AccountID,
		Subject:   v.Token.Subject,
		Username:  v.Token.Username,
		Within: &grants.Bounds{Scopes: v.Token.Scopes, ExpiresAt: v.Token.ExpiresAt, Generation: v.Token.Generation,
			JKT: v.Token.JKT},
	}, nil
}

// checkTarget refuses a target that is not from (the subject's account) or
// one of its descendants, or is not active (it or an ancestor disabled):
// one answer for all, so that a client learns nothing of accounts outside
// its subtree.
func (g *Grant) checkTarget(ctx context.Context, from, target int64) error {
	within, err := g.accounts.AccountInSubtree(ctx, from, target)
	if err != nil {
		return oauth.RecordOutage(ctx, fmt.Errorf("check target account: %w", err))
	}
	if !within {
		return errInvalidTarget
	}
	active, err := g.accounts.AccountActive(ctx, target)
	if errors.Is(err, storage.ErrNotFound) {
		return errInvalidTarget
	}
	if err != nil {
		return oauth.RecordOutage(ctx, fmt.Errorf("check target account: %w", err))
	}
	if !active {
		return errInvalidTarget
	}
	return nil
}
