package client

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token exchange (RFC 8693) names.
//
//nolint:gosec // G101: protocol names, not credentials
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange" // #nosec G101 -- a protocol name, not a credential
	// TokenTypeAccessToken is the type of an access token, and of every
	// token an exchange answers.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token" // #nosec G101 -- a protocol name, not a credential
	// TokenTypeAPIKey is the type of a Tollgate API key.
	TokenTypeAPIKey = "urn:tollgate:token-type:api_key" // #nosec G101 -- a protocol name, not a credential
	// AccountAudiencePrefix followed by an account id is the audience of a
	// token acting on that account only.
	AccountAudiencePrefix = "urn:tollgate:account:"
)

// IssuedToken is an access token the token endpoint answered.
type IssuedToken struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	Scope           string `json:"scope,omitempty"`
	ExpiresIn       int64  `json:"expires_in"`
}

// TokenExchange asks for a token in place of one the caller holds
// (RFC 8693): one that can do no more than it, optionally acting on one
// descendant account only.
type TokenExchange struct {
	// SubjectToken is the access token to exchange. Only the client it was
	// issued to may exchange it: the one this Client authenticates as with
	// WithClientCredentials. Empty: that client's current token.
	SubjectToken string
	// AccountID, when set, asks for a token acting on that account and its
	// descendants only (audience urn:tollgate:account:<id>): the subject
	// token's account or one of its descendants.
	AccountID int64
	// Scopes narrows the new token's scopes; none: the subject token's.
	Scopes []string
}

// ErrNoClientCredentials is returned by ExchangeToken and ForAccount on a
// Client made WithToken: exchanging an access token takes the client's own
// authentication.
var ErrNoClientCredentials = errors.New("tollgate client: token exchange needs WithClientCredentials")

// ExchangeToken exchanges an access token of the client this Client
// authenticates as (WithClientCredentials) for a new one. The answer's
// errors are *Error with the OAuth Code (invalid_target for an account
// outside the subject token's reach, invalid_scope for a wider scope).
func (c *Client) ExchangeToken(ctx context.Context, ex TokenExchange) (*IssuedToken, error) {
	cc, ok := c.creds.(*clientCredentials)
	if !ok {
		return nil, ErrNoClientCredentials
	}
	if ex.SubjectToken != "" {
		return c.postToken(ctx, exchangeForm(ex.SubjectToken, TokenTypeAccessToken, ex), cc.id, cc.secret)
	}
	t, err := c.exchangeOwn(ctx, cc, ex)
	var e *Error
	if errors.As(err, &e) && e.Code == "invalid_request" {
		// The token held ended early on the server (revoked, or the
		// clocks disagree): once more with a new one.
		cc.forget()
		t, err = c.exchangeOwn(ctx, cc, ex)
	}
	return t, err
}

// exchangeOwn exchanges the client's current token.
func (c *Client) exchangeOwn(ctx context.Context, cc *clientCredentials, ex TokenExchange) (*IssuedToken, error) {
	subject, err := cc.token(ctx, c)
	if err != nil {
		return nil, &TokenError{Err: err}
	}
	return c.postToken(ctx, exchangeForm(subject, TokenTypeAccessToken, ex), cc.id, cc.secret)
}

// ExchangeAPIKey exchanges an API key for a key token (the standard form
// of POST /auth/access/session): the key is the request's only
// authentication, whatever this Client authenticates as.
// ex.SubjectToken is ignored.
func (c *Client) ExchangeAPIKey(ctx context.Context, key string, ex TokenExchange) (*IssuedToken, error) {
	return c.postToken(ctx, exchangeForm(key, TokenTypeAPIKey, ex), "", "")
}

func exchangeForm(subject, subjectType string, ex TokenExchange) url.Values {
	form := url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {subjectType},
	}
	if ex.AccountID != 0 {
		form.Set("audience", AccountAudiencePrefix+strconv.FormatInt(ex.AccountID, 10))
	}
	if len(ex.Scopes) > 0 {
		form.Set("scope", strings.Join(ex.Scopes, " "))
	}
	return form
}

// ForAccount returns a Client of the same server whose calls act on
// account accountID and its descendants only, with scopes when given: its
// token is this Client's own, exchanged for that account (and exchanged
// again shortly before it expires). The management API holds such a token
// to that subtree: records above or beside it are not found. This Client
// must authenticate WithClientCredentials.
func (c *Client) ForAccount(ctx context.Context, accountID int64, scopes ...string) (*Client, error) {
	if _, ok := c.creds.(*clientCredentials); !ok {
		return nil, ErrNoClientCredentials
	}
	narrow := *c
	narrow.creds = &exchanged{parent: c, ex: TokenExchange{AccountID: accountID, Scopes: scopes}, now: time.Now}
	if _, err := narrow.creds.token(ctx, &narrow); err != nil {
		return nil, err
	}
	return &narrow, nil
}

// exchanged holds a token exchanged from the parent Client's and
// exchanges again when it is about to expire.
type exchanged struct {
	parent *Client
	ex     TokenExchange
	now    func() time.Time

	mu      sync.Mutex
	current string
	expires time.Time
}

func (e *exchanged) token(ctx context.Context, _ *Client) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current != "" && e.now().Before(e.expires.Add(-refreshMargin)) {
		return e.current, nil
	}
	start := e.now()
	t, err := e.parent.ExchangeToken(ctx, e.ex)
	if err != nil {
		return "", err
	}
	e.current, e.expires = t.AccessToken, start.Add(time.Duration(t.ExpiresIn)*time.Second)
	return e.current, nil
}

// forget drops the token held, so the next call exchanges again.
func (e *exchanged) forget() {
	e.mu.Lock()
	e.current = ""
	e.mu.Unlock()
}
