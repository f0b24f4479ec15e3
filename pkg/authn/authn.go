// Package authn owns the one check of a user's password, wherever a person
// types it: the console sign-in, the eskimi_dsp grant, and the management
// service's confirmations (a password change, a client token, a new key
// where the account asks). The user is found by username (letter case
// ignored), the argon2id hash is verified with the same work on every
// refusal (an unknown user verifies a dummy hash), a disabled user and a
// user of an inactive or disabled account are refused like a wrong
// password, and every refusal feeds the brute-force protection.
package authn

import (
	"context"
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/tracing"
	"github.com/tollgate/tollgate/storage"
)

// Users is what the check reads.
type Users interface {
	GetUserByUsername(ctx context.Context, username string) (storage.User, error)
	AccountActive(ctx context.Context, id int64) (bool, error)
}

// Passwords verifies argon2id password hashes (*secret.Passwords).
type Passwords interface {
	Verify(hash, password string) (bool, error)
	VerifyDummy(password string)
}

// Guard holds back usernames (per source) and sources with too many wrong
// passwords: the one *bruteforce.Guard of kind user, so that every place a
// password is typed counts together.
type Guard interface {
	Begin(ctx context.Context, id, source string) (bruteforce.Attempt, error)
}

// ErrBadCredentials is the one refusal for an unknown user, a wrong
// password, a disabled user, a user of a disabled account, and a user the
// caller's own condition refuses: nobody learns which it was.
var ErrBadCredentials = errors.New("the username or password is wrong")

// ErrUnavailable marks a backend failure: nothing is known of the
// password, and nothing was counted.
var ErrUnavailable = errors.New("backend unavailable")

// Accept is a caller's own condition on the user whose password is right
// (the grant: a user of the client's account subtree); false refuses the
// user with ErrBadCredentials. Its error is a backend failure.
type Accept func(ctx context.Context, u storage.User) (bool, error)

// Authenticator checks user passwords.
type Authenticator struct {
	users     Users
	passwords Passwords
	guard     Guard
}

// New returns an Authenticator. guard may be nil: no brute-force
// protection.
func New(users Users, passwords Passwords, guard Guard) *Authenticator {
	return &Authenticator{users: users, passwords: passwords, guard: guard}
}

// Authenticate returns the active user username whose password is
// password, of an active account, that accept (if not nil) accepts.
// Refusals return ErrBadCredentials, each counted as a failure of the
// username (case-folded) from the request's source (reqctx.Source) and of
// the source; after too many, attempts return a *bruteforce.BlockedError
// before any password is verified, the right one included. A backend
// failure wraps ErrUnavailable; a hash that cannot be read is another
// error. Neither counts.
func (a *Authenticator) Authenticate(ctx context.Context, username, password string, accept Accept) (storage.User, error) {
	return bruteforce.Check(ctx, a.guard, storage.FoldUsername(username), reqctx.Source(ctx), ErrBadCredentials, func() (storage.User, error) {
		return a.verify(ctx, username, password, accept)
	})
}

// spanVerify names the span of the argon2id verification of a password.
const spanVerify = "argon2id verify"

func (a *Authenticator) verify(ctx context.Context, username, password string, accept Accept) (storage.User, error) {
	user, err := a.users.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		// The same work as a known user's, so timing tells nothing (nor
		// does the trace: the span is the same).
		_, span := tracing.Start(ctx, spanVerify)
		a.passwords.VerifyDummy(password)
		span.End()
		return storage.User{}, ErrBadCredentials
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("%w: get user: %w", ErrUnavailable, err)
	}
	_, span := tracing.Start(ctx, spanVerify)
	ok, err := a.passwords.Verify(user.PasswordHash, password)
	span.End()
	if err != nil {
		return storage.User{}, fmt.Errorf("verify password of user %d: %w", user.ID, err)
	}
	if !ok || user.Status != storage.StatusActive {
		return storage.User{}, ErrBadCredentials
	}
	if accept != nil {
		ok, err := accept(ctx, user)
		if err != nil {
			return storage.User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if !ok {
			return storage.User{}, ErrBadCredentials
		}
	}
	// A user of a disabled account (or of a disabled ancestor's) would get
	// a session or token dead on arrival: refuse them like any other bad
	// sign-in.
	active, err := a.users.AccountActive(ctx, user.AccountID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, fmt.Errorf("%w: check account of user: %w", ErrUnavailable, err)
	}
	if !active {
		return storage.User{}, ErrBadCredentials
	}
	return user, nil
}
