// Package scope owns the syntax of OAuth 2.0 scope strings (RFC 6749 §3.3)
// and Tollgate's policy for granting them.
package scope

import (
	"errors"
	"slices"
	"strings"
)

// MaxTokens bounds the number of scope tokens in one request.
const MaxTokens = 64

// ErrInvalid is returned for a scope string that breaks RFC 6749 §3.3.
var ErrInvalid = errors.New("invalid scope")

// Parse splits a space-delimited scope string into its tokens, dropping
// duplicates and keeping order. Each token must be 1*( %x21 / %x23-5B /
// %x5D-7E ).
func Parse(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			// Tolerate doubled spaces; an empty token carries nothing.
			continue
		}
		if !Valid(tok) {
			return nil, ErrInvalid
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
		if len(out) > MaxTokens {
			return nil, ErrInvalid
		}
	}
	return out, nil
}

// Valid reports whether tok is a well-formed scope token.
func Valid(tok string) bool {
	if tok == "" || len(tok) > 128 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return true
}

// Grant returns the scopes a token gets: the requested scopes the client is
// allowed, or all allowed scopes when none were requested. A request none of
// whose scopes is allowed is refused with ErrInvalid.
func Grant(requested, allowed []string) ([]string, error) {
	var out []string
	if len(requested) == 0 {
		for _, s := range allowed {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out, nil
	}
	for _, s := range requested {
		if slices.Contains(allowed, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ErrInvalid
	}
	return out, nil
}
