package tokens

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/storage"
)

// ErrInactive is returned for a token that is not good, whatever the reason:
// callers must not learn, or tell, why.
var ErrInactive = errors.New("inactive token")

// Valid is a good token with the records it stands on.
type Valid struct {
	Token  storage.Token
	Client storage.Client
	User   *storage.User // nil for a client's own token
}

// Validate checks value: minted by the format and intact, stored, not
// expired, its client present, usable and still on the generation the token
// was minted under, its account and the client's account (and their
// ancestors) active and not disabled or enabled again since the token was
// issued (storage.Account.TokensValidAfter), and its user, if any, active
// and not having revoked their tokens since the token was issued
// (storage.User.TokensValidAfter). It returns ErrInactive for anything not
// good and another error only when a backend failed. A good token is
// recorded as a use of its client.
func (s *Service) Validate(ctx context.Context, value string) (Valid, error) {
	now := s.now()
	valid, err := s.validate(ctx, value, now)
	if err != nil {
		return Valid{}, err
	}
	if s.usage != nil {
		s.usage.Record(valid.Token.ClientID, now)
	}
	return valid, nil
}

func (s *Service) validate(ctx context.Context, value string, now time.Time) (Valid, error) {
	rec, err := s.lookup(ctx, value)
	if err != nil {
		return Valid{}, err
	}
	if !now.Before(rec.ExpiresAt) {
		return Valid{}, ErrInactive
	}
	st, err := s.standing(ctx, rec.ClientID, rec.AccountID, now)
	if err != nil {
		return Valid{}, err
	}
	return s.finish(ctx, rec, st, now)
}

// Standing is what a token's validation read of its client and accounts
// before its record: the client, usable, and the standings, active, of the
// token's account and the client's.
type Standing struct {
	Client    storage.Client
	standings []storage.Standing
	// user is the token's user, active, for a value that names one.
	user *storage.User
}

// standing reads the client clientID, which must be usable, and the
// standings of accountID and the client's account, which must be active.
func (s *Service) standing(ctx context.Context, clientID, accountID int64, now time.Time) (Standing, error) {
	client, err := s.store.GetClient(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return Standing{}, ErrInactive
	}
	if err != nil {
		return Standing{}, fmt.Errorf("get client: %w", err)
	}
	if !client.Usable(now) {
		return Standing{}, ErrInactive
	}
	accounts := []int64{accountID}
	if client.AccountID != accountID {
		accounts = append(accounts, client.AccountID)
	}
	st := Standing{Client: client, standings: make([]storage.Standing, 0, len(accounts))}
	for _, id := range accounts {
		standing, err := s.store.AccountStanding(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return Standing{}, ErrInactive
		}
		if err != nil {
			return Standing{}, fmt.Errorf("check account: %w", err)
		}
		if !standing.Active {
			return Standing{}, ErrInactive
		}
		st.standings = append(st.standings, standing)
	}
	return st, nil
}

// finish completes the validation of rec once st was read: it has not
// expired, its client's generation holds, it was issued after its
// accounts' cut-offs, and its user, if any, is good.
func (s *Service) finish(ctx context.Context, rec storage.Token, st Standing, now time.Time) (Valid, error) {
	if !now.Before(rec.ExpiresAt) {
		return Valid{}, ErrInactive
	}
	if rec.ClientID != st.Client.ID || !st.Client.TokenGenerationValid(rec.Generation, now) {
		return Valid{}, ErrInactive
	}
	for _, standing := range st.standings {
		// A token issued before its account (or an ancestor) was last
		// disabled or enabled again stays dead: re-enabling revives none.
		if !standing.TokenIssuedValid(rec.IssuedAt) {
			return Valid{}, ErrInactive
		}
	}
	valid := Valid{Token: rec, Client: st.Client}
	if rec.Subject == "" {
		return valid, nil
	}
	userID, err := strconv.ParseInt(rec.Subject, 10, 64)
	if err != nil {
		return Valid{}, ErrInactive
	}
	var user storage.User
	if st.user != nil && st.user.ID == userID {
		user = *st.user // read by Name, before the record
	} else if user, err = s.store.GetUser(ctx, userID); errors.Is(err, storage.ErrNotFound) {
		return Valid{}, ErrInactive
	} else if err != nil {
		return Valid{}, fmt.Errorf("get user: %w", err)
	}
	// Issue times are whole seconds and the cut-off too: a token issued in
	// the second its user's tokens were revoked is inactive.
	if user.Status != storage.StatusActive || !user.TokenIssuedValid(rec.IssuedAt) {
		return Valid{}, ErrInactive
	}
	valid.User = &user
	return valid, nil
}

// Named is a token whose value names its root account, account and client
// (the opaque format's values since ADR 0013), verified, and what its
// validation reads before its record: so that the record can be read with
// the check's decision, in one step (pkg/meter.TokenDecider).
type Named struct {
	Names token.Names
	// ID is the id its record is stored under.
	ID       string
	Standing Standing
}

// Name verifies value and reads, before any record, what the value names:
// ok is false when it names nothing (a value of a format minted before, a
// JWT whose jti names nothing, no token at all), to be validated by
// Validate instead. A value that names a client or account that is not
// good, or that a format refuses outright (a JWT whose signature fails),
// answers ErrInactive. Another error means a backend failed.
func (s *Service) Name(ctx context.Context, value string) (Named, bool, error) {
	for _, f := range s.readers {
		namer, ok := f.(Namer)
		if !ok {
			continue
		}
		n, id, err := namer.Names(ctx, value)
		if errors.Is(err, ErrInactive) {
			return Named{}, true, ErrInactive
		}
		if err != nil {
			continue
		}
		st, err := s.standing(ctx, n.Client, n.Account, s.now())
		if err != nil {
			return Named{}, true, err
		}
		if n.User != 0 {
			user, err := s.store.GetUser(ctx, n.User)
			if errors.Is(err, storage.ErrNotFound) {
				return Named{}, true, ErrInactive
			}
			if err != nil {
				return Named{}, true, fmt.Errorf("get user: %w", err)
			}
			if user.Status != storage.StatusActive {
				return Named{}, true, ErrInactive
			}
			st.user = &user
		}
		return Named{Names: n, ID: id, Standing: st}, true, nil
	}
	return Named{}, false, nil
}

// Terms are what the record of a named token must hold, which a script can
// check on the record before the check's decision (see
// meter.TokenDecider): its ids, its client's generations, its accounts'
// and its user's cut-offs; the caller adds the DPoP binding and the scopes
// it requires. With Name's checks, they refuse every token Validate
// refuses but one whose record expired on this clock and not yet on the
// store's.
func (s *Service) Terms(named Named) storage.TokenTerms {
	client := named.Standing.Client
	t := storage.TokenTerms{ClientID: named.Names.Client, AccountID: named.Names.Account, Generations: []int64{client.Generation}}
	if client.PreviousSecretValid(s.now()) {
		t.Generations = append(t.Generations, client.PreviousGeneration)
	}
	for _, st := range named.Standing.standings {
		if st.TokensValidAfter.After(t.IssuedAfter) {
			t.IssuedAfter = st.TokensValidAfter
		}
	}
	if u := named.Standing.user; u != nil {
		t.Subject = strconv.FormatInt(u.ID, 10)
		if u.TokensValidAfter.After(t.IssuedAfter) {
			t.IssuedAfter = u.TokensValidAfter
		}
	}
	return t
}

// subjectOf is the subject of the records of tokens naming n.
func subjectOf(n token.Names) string {
	if n.User == 0 {
		return ""
	}
	return strconv.FormatInt(n.User, 10)
}

// ValidateNamed finishes the validation of a named token from its record,
// read after Name (with the check's decision): the checks of Validate that
// need the record. It returns ErrInactive for anything not good and
// another error only when a backend failed; a good token is recorded as a
// use of its client.
func (s *Service) ValidateNamed(ctx context.Context, named Named, rec storage.Token) (Valid, error) {
	if rec.AccountID != named.Names.Account || rec.ClientID != named.Names.Client || rec.Signature != named.ID ||
		rec.Subject != subjectOf(named.Names) {
		return Valid{}, ErrInactive
	}
	now := s.now()
	valid, err := s.finish(ctx, rec, named.Standing, now)
	if err != nil {
		return Valid{}, err
	}
	if s.usage != nil {
		s.usage.Record(valid.Token.ClientID, now)
	}
	return valid, nil
}

// lookup reads the record of value: ErrInactive when the format refuses
// the value (before any storage lookup) or no record has its id.
func (s *Service) lookup(ctx context.Context, value string) (storage.Token, error) {
	var id string
	err := ErrMalformed
	for _, f := range s.readers {
		if id, err = f.ID(ctx, value); err == nil {
			break
		}
	}
	if err != nil {
		return storage.Token{}, ErrInactive
	}
	rec, err := s.tokens.GetToken(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Token{}, ErrInactive
	}
	if err != nil {
		return storage.Token{}, fmt.Errorf("get token: %w", err)
	}
	return rec, nil
}

// Introspect validates value for a resource server of account callerAccount
// (RFC 7662): besides being good (Validate), the token must belong to the
// caller's account or a descendant of it. It returns ErrInactive for
// anything else and another error only when a backend failed.
func (s *Service) Introspect(ctx context.Context, callerAccount int64, value string) (Valid, error) {
	v, err := s.Validate(ctx, value)
	if err != nil {
		return Valid{}, err
	}
	// A resource server sees the tokens of its own account subtree only.
	if v.Token.AccountID != callerAccount {
		within, err := s.store.AccountInSubtree(ctx, callerAccount, v.Token.AccountID)
		if err != nil {
			return Valid{}, fmt.Errorf("check account subtree: %w", err)
		}
		if !within {
			return Valid{}, ErrInactive
		}
	}
	return v, nil
}

// NotOwnerError is returned by Revoke for a token of another client, which
// stays as it was.
type NotOwnerError struct {
	// Owner is the id of the token's client.
	Owner int64
}

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("token of client %d", e.Owner)
}

// Revoke revokes the token value, and every token of its request, on
// behalf of client callerID (RFC 7009): only a token of the caller's own
// is revoked (another's answers a *NotOwnerError); a value that is no
// token, or no longer stored, changes nothing and is no error. Another
// error means a backend failed.
func (s *Service) Revoke(ctx context.Context, callerID int64, value string) error {
	rec, err := s.lookup(ctx, value)
	if errors.Is(err, ErrInactive) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.ClientID != callerID {
		return &NotOwnerError{Owner: rec.ClientID}
	}
	// The token's key stays, revoked, until it expires: a reused token is
	// derived again by its next request, and must then be found taken
	// (storage.Tokens.CreateTokenOnce).
	if err := s.tokens.RevokeRequest(ctx, rec.RequestID); err != nil {
		return fmt.Errorf("revoke request: %w", err)
	}
	return nil
}
