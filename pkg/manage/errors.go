package manage

import (
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Code says why the service refused (or failed) a call; each adapter maps it
// to its own answer (a problem+json status, an HTML banner, an exit code).
type Code string

// The codes of Error.
const (
	// Invalid: some inputs are wrong; Fields names them.
	Invalid Code = "invalid"
	// NotFound: the record does not exist or is out of the actor's reach
	// (nobody learns what lies outside it).
	NotFound Code = "not_found"
	// Conflict: the change conflicts with the current state of the records.
	Conflict Code = "conflict"
	// Forbidden: the actor may see the record but not do this.
	Forbidden Code = "forbidden"
	// PreconditionFailed: the record's version is not the one the caller
	// read.
	PreconditionFailed Code = "precondition_failed"
	// Blocked: too many wrong passwords; retry after Error.RetryAfter.
	Blocked Code = "blocked"
	// Unavailable: a backend failed; the call may be retried.
	Unavailable Code = "unavailable"
	// Internal: something that should not fail did (hashing a password).
	Internal Code = "internal"
)

// number is the code's number in the audit trail's record of a refused
// change ("refused: 409 …"): the management API's HTTP status, the way the
// trail has always written it.
func (c Code) number() int {
	switch c {
	case Invalid:
		return 422
	case NotFound:
		return 404
	case Conflict:
		return 409
	case Forbidden:
		return 403
	case PreconditionFailed:
		return 412
	case Blocked:
		return 429
	case Unavailable:
		return 503
	}
	return 500
}

// FieldError names one invalid input, by its name in the management API
// (the console labels the same names).
type FieldError struct {
	Field  string
	Detail string
}

// Error is a refusal or failure of the service.
type Error struct {
	Code Code
	// Detail is a sentence for people.
	Detail string
	// Fields are the invalid inputs, if any.
	Fields []FieldError
	// RetryAfter is when to try again, for Blocked.
	RetryAfter time.Duration
	// Err is what failed behind Unavailable or Internal (or a password
	// check that could not run), for the log; never shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Detail)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorOf returns the *Error err is or wraps; any other error is a backend
// failure (Unavailable) with err as its cause.
func ErrorOf(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return unavailable(err)
}

// Detail texts of the refusals several operations share.
const (
	detailNotFound     = "No such resource."
	detailForbidden    = "You may not do this."
	detailPrecondition = "The resource changed since you read it (If-Match does not match its ETag)."
	detailInvalid      = "Some fields are invalid."
	detailUnavailable  = "A backend is temporarily unavailable; try again."
)

func errNotFound() *Error  { return &Error{Code: NotFound, Detail: detailNotFound} }
func errForbidden() *Error { return &Error{Code: Forbidden, Detail: detailForbidden} }
func errPrecondition() *Error {
	return &Error{Code: PreconditionFailed, Detail: detailPrecondition}
}

func invalid(errs []FieldError) *Error {
	return &Error{Code: Invalid, Detail: detailInvalid, Fields: errs}
}

func unavailable(cause error) *Error {
	return &Error{Code: Unavailable, Detail: detailUnavailable, Err: cause}
}

func internal(cause error) *Error { return &Error{Code: Internal, Err: cause} }

// storeError turns a storage error into the service's.
func storeError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errNotFound()
	case errors.Is(err, storage.ErrAlreadyExists):
		return &Error{Code: Conflict, Detail: "A record with these values already exists."}
	case errors.Is(err, storage.ErrConflict):
		return &Error{Code: Conflict, Detail: "The change conflicts with the current state of the records."}
	default:
		return unavailable(err)
	}
}

func isNotFound(err error) bool { return err != nil && storeError(err).Code == NotFound }
