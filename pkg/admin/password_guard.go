package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/storage"
)

// Guard holds back usernames (per source) and sources with too many wrong
// passwords (*bruteforce.Guard of kind user, the one the eskimi_dsp grant
// uses, so both count together).
type Guard interface {
	Begin(ctx context.Context, id, source string) (bruteforce.Attempt, error)
}

// checkPassword verifies a password the caller typed to confirm who they
// are, as verifyPassword does, and writes the refusal itself: it reports
// false when the request must stop.
func (a *API) checkPassword(w http.ResponseWriter, r *http.Request, username, hash, password, detail string) bool {
	if err := a.verifyPassword(r.Context(), username, hash, password, detail); err != nil {
		writeProblem(w, r, storeProblem(err))
		return false
	}
	return true
}

// verifyPassword verifies a password the caller typed to confirm who they
// are (username's, against hash), through the brute-force protection: each
// wrong one counts as a failure of the username from the request's source
// (reqctx.Source) and of the source, and after too many every attempt
// from there is refused before the password is compared, with 429 and
// Retry-After. A wrong password answers 403 with detail.
func (a *API) verifyPassword(ctx context.Context, username, hash, password, detail string) error {
	_, err := bruteforce.Check(ctx, a.opts.Guard, storage.FoldUsername(username), reqctx.Source(ctx), errWrongPassword, func() (struct{}, error) {
		ok, err := a.opts.Passwords.Verify(hash, password)
		switch {
		case err != nil:
			// A hash that cannot be read says nothing about the caller:
			// the attempt is taken back.
			return struct{}{}, err
		case !ok:
			return struct{}{}, errWrongPassword
		}
		return struct{}{}, nil
	})
	if err == nil {
		return nil
	}
	if blocked, ok := errors.AsType[*bruteforce.BlockedError](err); ok {
		return blockedProblem(blocked)
	}
	if errors.Is(err, errWrongPassword) {
		err = nil
	}
	return problem{Status: http.StatusForbidden, Detail: detail, cause: err}
}

// errWrongPassword is a password that does not match.
var errWrongPassword = errors.New("wrong password")

// blockedProblem answers an attempt the brute-force protection held back:
// 429 with Retry-After by the rule of pkg/retryafter. RetryAfter is kept
// positive so that the problem writer always sets the header.
func blockedProblem(err error) problem {
	var blocked *bruteforce.BlockedError
	if !errors.As(err, &blocked) {
		return problem{Status: http.StatusInternalServerError, cause: err}
	}
	return problem{Status: http.StatusTooManyRequests, Detail: "Too many wrong passwords: retry after the time in Retry-After.",
		RetryAfter: max(blocked.RetryAfter, time.Nanosecond), cause: err}
}
