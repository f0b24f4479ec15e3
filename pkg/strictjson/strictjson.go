// Package strictjson owns the one rule every JSON request body of Tollgate
// is held to beyond what encoding/json checks: no object may name a member
// twice. encoding/json keeps the last of two equal members, so a body
// {"role":"member","role":"admin"} reads as admin to Go and as member to
// a proxy, a log reader or a validator that keeps the first: the two
// disagree about what was asked for. The token endpoint and the management
// API both call it, so the rule exists once.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DuplicateError names a member that occurs twice in one object.
type DuplicateError struct {
	// Path is the member's place in the document, JSON-Pointer-like
	// ("role", "rate_limits/token"); the top level has no leading slash.
	Path string
	// Member is the repeated member's name.
	Member string
}

func (e *DuplicateError) Error() string {
	return "duplicate member " + strconv.Quote(e.Path)
}

// ErrMalformed is returned for a body that is not well-formed JSON; the
// caller's own decoding usually reports it better.
var ErrMalformed = errors.New("malformed json")

// CheckDuplicates walks data and returns a *DuplicateError for the first
// member repeated inside one object, at any depth. Members are compared
// after unescaping, as encoding/json compares them ("a" and "\u0061" are
// the same member). It suits bodies read member by member, where names are
// case-sensitive (OAuth parameters).
func CheckDuplicates(data []byte) error {
	return check(data, false)
}

// CheckDuplicatesFold is CheckDuplicates for bodies decoded into Go
// structs: encoding/json matches struct fields without regard to case, so
// "Role" beside "role" lands in the same field and is as much a duplicate
// as two "role".
func CheckDuplicatesFold(data []byte) error {
	return check(data, true)
}

func check(data []byte, fold bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walk(dec, "", fold)
}

// walk consumes one value from dec.
func walk(dec *json.Decoder, path string, fold bool) error {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: unexpected end", ErrMalformed)
		}
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			name, ok := tok.(string)
			if !ok {
				return fmt.Errorf("%w: object key is not a string", ErrMalformed)
			}
			child := join(path, name)
			key := name
			if fold {
				key = strings.ToLower(name)
			}
			if seen[key] {
				return &DuplicateError{Path: child, Member: name}
			}
			seen[key] = true
			if err := walk(dec, child, fold); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := walk(dec, join(path, strconv.Itoa(i)), fold); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "/" + name
}
