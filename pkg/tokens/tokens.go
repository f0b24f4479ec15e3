// Package tokens owns the lifecycle of access tokens: issuing them,
// deciding whether a presented one is good, introspecting and revoking
// them. It is the one place that reads and writes the token store
// (storage.Tokens); the token endpoint's grants, the key session, the
// management API, introspection, revocation and the check endpoint all go
// through a Service. How a token's value looks is a Format: the opaque HMAC
// format of pkg/token today; another format is one more implementation of
// that interface, with no endpoint changed.
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Claims are what a token is minted for: what its grant decided.
type Claims struct {
	ClientID   int64
	Generation int64
	AccountID  int64
	// Root is the root account of AccountID's tree, which the token's
	// value names; zero: the Service reads it from its Store (none: the
	// value names no ids, in the format minted before).
	Root      int64
	Subject   string
	Username  string
	GrantType string
	ExpiresAt time.Time
	// Format names the format of the token (the client's
	// AccessTokenStrategy): a key of Options.Formats, or the default
	// format when empty or unknown.
	Format string
	// JKT binds the token to the DPoP key of this thumbprint (RFC 9449
	// §6.1); empty for a Bearer token.
	JKT string
	// Reuse asks for the client's current token for the same claims, when
	// it has most of its life left, instead of a new one (the client's
	// ReuseTokens setting; see grants.Admit).
	Reuse bool
}

// Store is what validation reads besides the token store.
type Store interface {
	GetClient(ctx context.Context, id int64) (storage.Client, error)
	GetUser(ctx context.Context, id int64) (storage.User, error)
	AccountStanding(ctx context.Context, id int64) (storage.Standing, error)
	// AccountBudgets returns, with the budgets, the root of an account's
	// tree, which a token names.
	AccountBudgets(ctx context.Context, id int64) (storage.BudgetChain, error)
	AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error)
}

// UsageRecorder notes successful uses of a credential.
type UsageRecorder interface {
	Record(clientID int64, at time.Time)
}

// Options configure a Service.
type Options struct {
	// Format makes and reads token values: the default format.
	Format Format
	// Formats are further formats by name (storage.StrategyJWT), chosen
	// by Claims.Format. A presented value is read by the format that
	// minted it: each refuses the others' values before any lookup.
	Formats map[string]Format
	// Unnamed mints opaque values that name no ids (the format before
	// ADR 0013), which an earlier version reads, for a rolling upgrade;
	// values of both formats are read either way.
	Unnamed bool
	// Tokens is the token store.
	Tokens storage.Tokens
	// Store holds the clients, users and accounts tokens stand on.
	Store Store
	// Usage notes every good token as a use of its client, so that a
	// credential used only through a long-lived token is not taken for
	// unused; nil: no record.
	Usage UsageRecorder
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Service issues, validates, introspects and revokes access tokens.
type Service struct {
	format  Format
	formats map[string]Format
	readers []Format // the default format first
	unnamed bool
	tokens  storage.Tokens
	store   Store
	usage   UsageRecorder
	now     func() time.Time
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	readers := []Format{opts.Format}
	for _, name := range slices.Sorted(maps.Keys(opts.Formats)) {
		readers = append(readers, opts.Formats[name])
	}
	return &Service{format: opts.Format, formats: opts.Formats, readers: readers, unnamed: opts.Unnamed, tokens: opts.Tokens, store: opts.Store,
		usage: opts.Usage, now: opts.Now}
}

// formatOf returns the format of tokens for c.
func (s *Service) formatOf(c Claims) Format {
	if f, ok := s.formats[c.Format]; ok {
		return f
	}
	return s.format
}

// Now returns the service's clock reading.
func (s *Service) Now() time.Time { return s.now() }

// Issue mints a token for c with scopes and audience, stores its record
// and returns the token's value and record. requestID may be empty: a
// fresh one is made.
func (s *Service) Issue(ctx context.Context, requestID string, c Claims, scopes, audience []string) (string, storage.Token, error) {
	if requestID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", storage.Token{}, fmt.Errorf("request id: %w", err)
		}
		requestID = hex.EncodeToString(b[:])
	}
	switch {
	case s.unnamed:
		c.Root = 0 // the value names nothing, as before ADR 0013
	case c.Root == 0 && s.store != nil:
		chain, err := s.store.AccountBudgets(ctx, c.AccountID)
		if err != nil {
			return "", storage.Token{}, fmt.Errorf("root account: %w", err)
		}
		c.Root = chain.Root
	}
	if c.Reuse {
		return s.issueReused(ctx, requestID, c, scopes, audience)
	}
	return s.issueNew(ctx, requestID, c, scopes, audience)
}

// issueNew mints a fresh token for c and stores it.
func (s *Service) issueNew(ctx context.Context, requestID string, c Claims, scopes, audience []string) (string, storage.Token, error) {
	rec := s.record("", requestID, c, scopes, audience)
	tok, id, err := s.formatOf(c).Mint(ctx, rec, c.Root)
	if err != nil {
		return "", storage.Token{}, fmt.Errorf("mint token: %w", err)
	}
	rec.Signature, rec.RequestID = id, requestIDOf(id, requestID)
	// A random 256-bit id is never taken by another token: taken, it is
	// this one, stored by an attempt the client retried after a timeout
	// (the write landed, its answer did not).
	if err := s.tokens.CreateToken(ctx, rec); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return "", storage.Token{}, fmt.Errorf("store token: %w", err)
	}
	return tok, rec, nil
}

// issueReused returns the token derived from what c asks for (client,
// secret generation, account, grant, scopes, audience, lifetime and reuse
// window): the stored one when another request of the window stored it,
// else it stores it. Deriving rather than remembering keeps the store free
// of usable tokens, as for every other token, and needs no index: one
// GetToken when the token exists, which is the point of reuse. A derived
// token that was revoked is never stored again (CreateTokenOnce): the
// request gets a new random token instead.
func (s *Service) issueReused(ctx context.Context, requestID string, c Claims, scopes, audience []string) (string, storage.Token, error) {
	tok, id, err := s.formatOf(c).Derive(ctx, reuseSeed(c, scopes, audience), s.record("", "", c, scopes, audience), c.Root)
	if err != nil {
		return "", storage.Token{}, fmt.Errorf("derive token: %w", err)
	}
	// The request id is derived too, so that revoking the token by its
	// request is the same on every instance.
	rid := sha256.Sum256([]byte("request\x00" + id))
	rec := s.record(id, requestIDOf(id, hex.EncodeToString(rid[:16])), c, scopes, audience)
	for range 2 {
		stored, err := s.tokens.GetToken(ctx, id)
		if err == nil {
			return tok, stored, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return "", storage.Token{}, fmt.Errorf("get reused token: %w", err)
		}
		err = s.tokens.CreateTokenOnce(ctx, rec)
		if err == nil {
			return tok, rec, nil
		}
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return "", storage.Token{}, fmt.Errorf("store token: %w", err)
		}
		// Another request stored it meanwhile (read it again), or it was
		// revoked.
	}
	return s.issueNew(ctx, requestID, c, scopes, audience)
}

// reuseSeed returns what a reused token is derived from: everything that
// tells two tokens apart, so that a token is only ever reused for the same
// thing. Scopes and audience are sorted: their order means nothing.
func reuseSeed(c Claims, scopes, audience []string) []byte {
	scopes, audience = slices.Sorted(slices.Values(scopes)), slices.Sorted(slices.Values(audience))
	b := fmt.Appendf(nil, "tollgate reuse v1\x00%d\x00%d\x00%d\x00%s\x00%s\x00%s\x00%d\x00",
		c.ClientID, c.Generation, c.AccountID, c.Subject, c.Username, c.GrantType, c.ExpiresAt.Unix())
	if c.Format != "" {
		// Another format is another token; the opaque seed is unchanged.
		b = fmt.Appendf(b, "format=%s\x00", c.Format)
	}
	if c.JKT != "" {
		// A token bound to another key is another token; a Bearer
		// token's seed is unchanged.
		b = fmt.Appendf(b, "jkt=%s\x00", c.JKT)
	}
	b = append(b, strings.Join(scopes, " ")...)
	b = append(b, 0)
	return append(b, strings.Join(audience, " ")...)
}

// requestIDOf returns the request id the record of id is stored with: the
// request's, rooted like id (storage.Rooted) when id is, so that a token
// store can find the request's tokens from its id alone.
func requestIDOf(id, requestID string) string {
	if root, _, ok := storage.SplitRooted(id); ok {
		return storage.Rooted(root, requestID)
	}
	return requestID
}

// record returns the stored record of a token for c.
func (s *Service) record(id, requestID string, c Claims, scopes, audience []string) storage.Token {
	return storage.Token{
		Signature:  id,
		RequestID:  requestID,
		ClientID:   c.ClientID,
		Generation: c.Generation,
		AccountID:  c.AccountID,
		Subject:    c.Subject,
		Username:   c.Username,
		GrantType:  c.GrantType,
		Scopes:     slices.Clone(scopes),
		Audience:   slices.Clone(audience),
		IssuedAt:   s.now().Truncate(time.Second),
		ExpiresAt:  c.ExpiresAt.Truncate(time.Second),
		JKT:        c.JKT,
	}
}
