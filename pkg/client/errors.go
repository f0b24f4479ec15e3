package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an error answer of the server: the management API's
// problem+json (RFC 9457), or an OAuth error of the token endpoint. Use it
// with errors.As, or through IsNotFound and its siblings.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int `json:"status"`
	// Type, Title and Detail are the problem's members.
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// Fields names the invalid members of a refused request (422), or the
	// password a policy asks for.
	Fields []FieldError `json:"errors"`
	// Code and Description are an OAuth error answer's error and
	// error_description (the token endpoint, a refused Bearer token).
	Code        string `json:"error"`
	Description string `json:"error_description"`
	// RetryAfter is the answer's Retry-After (429, 503), 0 when absent.
	RetryAfter time.Duration `json:"-"`
}

// FieldError is one invalid field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Message is the answer's best explanation: its detail, else the OAuth
// error description, else its title, else the status text.
func (e *Error) Message() string {
	for _, s := range []string{e.Detail, e.Description, e.Title} {
		if s != "" {
			return s
		}
	}
	return http.StatusText(e.StatusCode)
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("tollgate: %d %s", e.StatusCode, e.Message())
	for _, f := range e.Fields {
		msg += fmt.Sprintf("; %s: %s", f.Field, f.Detail)
	}
	return msg
}

// errorOf decodes an error answer of status res.StatusCode with body b.
func errorOf(res *http.Response, b []byte) *Error {
	e := &Error{}
	_ = json.Unmarshal(b, e) // a body that is not a problem still has its status
	e.StatusCode = res.StatusCode
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// UnexpectedAnswerError is an answer that is not the management API's
// JSON: a web page, a proxy's error page, another service on the port.
type UnexpectedAnswerError struct {
	Server      string // the server's URL, any password in it masked
	StatusCode  int
	ContentType string
}

func (e *UnexpectedAnswerError) Error() string {
	return fmt.Sprintf("%s did not answer as Tollgate's management API (%d, Content-Type %q)", e.Server, e.StatusCode, e.ContentType)
}

func hasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == status
}

// IsNotFound reports whether err is a 404 answer: the record does not
// exist, or is outside the caller's accounts.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsConflict reports whether err is a 409 answer: a name already taken,
// or a change the record's state refuses.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsInvalid reports whether err is a 422 answer; its Fields name what is
// wrong.
func IsInvalid(err error) bool { return hasStatus(err, http.StatusUnprocessableEntity) }

// IsPreconditionFailed reports whether err is a 412 answer: the record
// changed since the version given as If-Match.
func IsPreconditionFailed(err error) bool { return hasStatus(err, http.StatusPreconditionFailed) }

// IsForbidden reports whether err is a 403 answer.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsUnauthorized reports whether err is a 401 answer: no valid credential.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// TokenError is a failure to get the client's own token at the token
// endpoint (WithClientCredentials): Err is an *Error for a refusal (a
// wrong secret is a 401 invalid_client).
type TokenError struct{ Err error }

func (e *TokenError) Error() string { return "tollgate: get a token: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }
