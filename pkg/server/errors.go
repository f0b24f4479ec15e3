package server

import (
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/retryafter"
)

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	status      int
	code        string
	description string
	// wrapped is the cause, logged and never shown.
	wrapped error
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func errInvalidRequest(description string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", description: description}
}

// errUnsupportedGrant answers a grant type that is unknown or disabled.
var errUnsupportedGrant = &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type",
	description: "The grant type is not supported by this authorization server."}

// errInvalidClient answers a failed client authentication. It never says
// why: an unknown client and a wrong secret look the same.
func errInvalidClient() *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: "Client authentication failed."}
}

// writeBlocked answers an attempt the brute-force protection held back:
// 429 with Retry-After in whole seconds, rounded up, so a client honouring
// it is never early. It says nothing of whether the secret was right.
func writeBlocked(w http.ResponseWriter, r *http.Request, blocked *bruteforce.BlockedError) {
	retryafter.Set(w.Header(), blocked.RetryAfter)
	writeJSONError(w, r, &oauthError{status: http.StatusTooManyRequests, code: "slow_down",
		description: "Too many failed authentication attempts: retry after the time in Retry-After.", wrapped: blocked})
}

// errInvalidDPoPProof answers a missing or bad DPoP proof (RFC 9449 §5).
// The description names the rule, never the proof.
func errInvalidDPoPProof(description string, cause error) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_dpop_proof", description: description, wrapped: cause}
}

func errUnavailable(cause error) *oauthError {
	return &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
		description: "The authorization server is temporarily unable to handle the request.", wrapped: cause}
}

func errServer(cause error) *oauthError {
	return &oauthError{status: http.StatusInternalServerError, code: "server_error",
		description: "The authorization server encountered an unexpected condition.", wrapped: cause}
}

// fromFosite turns an error from fosite or a grant into an answer.
func fromFosite(err error) *oauthError {
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		return errServer(err)
	}
	switch rfc.ErrorField {
	case fosite.ErrInvalidClient.ErrorField:
		e := errInvalidClient()
		e.wrapped = err
		return e
	case fosite.ErrServerError.ErrorField:
		return errServer(err)
	case fosite.ErrTemporarilyUnavailable.ErrorField:
		return errUnavailable(err)
	}
	description := rfc.DescriptionField
	if rfc.HintField != "" {
		description += " " + rfc.HintField
	}
	return &oauthError{status: rfc.CodeField, code: rfc.ErrorField, description: description, wrapped: err}
}
