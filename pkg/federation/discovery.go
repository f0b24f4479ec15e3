package federation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/pkg/strictjson"
)

// MaxDiscoveryBytes bounds an OpenID Connect discovery document: real ones
// (Google's, GitHub's, a Kubernetes API server's) are under 4 KiB.
const MaxDiscoveryBytes = 32 << 10

// maxURLBytes bounds the issuer and jwks_uri a discovery document names.
const maxURLBytes = 2048

// ErrDiscovery is the error of every refused discovery document.
var ErrDiscovery = errors.New("invalid discovery document")

// Discovery is what federation reads of an OpenID Connect discovery
// document (OpenID Connect Discovery 1.0 §3): the issuer it speaks for and
// where its keys are.
type Discovery struct {
	Issuer  string
	JWKSURI string
}

// ParseDiscovery reads a discovery document: a JSON object of at most
// MaxDiscoveryBytes, without repeated members or trailing data, whose
// issuer and jwks_uri are non-empty strings of at most 2048 bytes. Other
// members are ignored.
func ParseDiscovery(raw []byte) (Discovery, error) {
	if len(raw) > MaxDiscoveryBytes {
		return Discovery{}, fmt.Errorf("%w: larger than %d bytes", ErrDiscovery, MaxDiscoveryBytes)
	}
	// A repeated issuer could read one way here and another way in the
	// issuer's own parser.
	if err := strictjson.CheckDuplicates(raw); err != nil {
		return Discovery{}, fmt.Errorf("%w: a member is repeated or the JSON is malformed", ErrDiscovery)
	}
	// Members are read by their exact names: encoding/json would fill a
	// struct field from "ISSUER" too.
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil || dec.More() || doc == nil {
		return Discovery{}, fmt.Errorf("%w: not one JSON object", ErrDiscovery)
	}
	issuer, ok := member(doc, "issuer")
	if !ok {
		return Discovery{}, fmt.Errorf("%w: issuer is missing, not a string or too long", ErrDiscovery)
	}
	jwksURI, ok := member(doc, "jwks_uri")
	if !ok {
		return Discovery{}, fmt.Errorf("%w: jwks_uri is missing, not a string or too long", ErrDiscovery)
	}
	return Discovery{Issuer: issuer, JWKSURI: jwksURI}, nil
}

// member returns the non-empty string member name of doc, at most
// maxURLBytes long.
func member(doc map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := doc[name]
	if !ok {
		return "", false
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil || v == "" || len(v) > maxURLBytes {
		return "", false
	}
	return v, true
}
