package manage

import (
	"context"
	"errors"
	"time"

	"github.com/tollgate/tollgate/pkg/authn"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/storage"
)

// confirmPassword checks a password user u typed to confirm who they are,
// through the one password check (pkg/authn) and its brute-force
// protection: a wrong one counts as a failure of the username from the
// request's source and of the source, and after too many every attempt
// from there is refused (Blocked) before the password is compared. A wrong
// password is Forbidden with detail, and so is a user since disabled or
// renamed; a backend failure is Unavailable.
func (s *Service) confirmPassword(ctx context.Context, u storage.User, password, detail string) error {
	_, err := s.authn.Authenticate(ctx, u.Username, password, func(_ context.Context, found storage.User) (bool, error) {
		return found.ID == u.ID, nil
	})
	if err == nil {
		return nil
	}
	if blocked, ok := errors.AsType[*bruteforce.BlockedError](err); ok {
		return blockedError(blocked)
	}
	if errors.Is(err, authn.ErrUnavailable) {
		return unavailable(err)
	}
	if errors.Is(err, authn.ErrBadCredentials) {
		// A hash that cannot be read says nothing about the caller: its
		// cause is kept for the log, and the attempt was taken back.
		err = nil
	}
	return &Error{Code: Forbidden, Detail: detail, Err: err}
}

// blockedError is an attempt the brute-force protection held back.
// RetryAfter is kept positive so that adapters always say when to retry.
func blockedError(blocked *bruteforce.BlockedError) *Error {
	return &Error{Code: Blocked, Detail: "Too many wrong passwords: retry after the time in Retry-After.",
		RetryAfter: max(blocked.RetryAfter, time.Nanosecond), Err: blocked}
}
