package tokens

import (
	"context"
	"errors"

	"github.com/tollgate/tollgate/pkg/token"
	"github.com/tollgate/tollgate/storage"
)

// ErrMalformed is returned by a Format for a value it did not mint.
var ErrMalformed = errors.New("malformed token")

// Format is how a token value is made for a record and read back: the one
// thing a new token format (a signed JWT, say) implements. The service
// stores the record under the id the format answers and looks it up by the
// id the format reads back from a presented value, so every rule of
// validation, introspection and revocation holds whatever the format.
type Format interface {
	// Mint returns a new token value for rec and the id its record is
	// stored under. rec's Signature and RequestID are not set yet.
	Mint(ctx context.Context, rec storage.Token) (value, id string, err error)
	// Derive is Mint for a reused token: the same seed answers the same
	// value and id, and nobody without the format's keys can compute them
	// from the seed.
	Derive(ctx context.Context, seed []byte, rec storage.Token) (value, id string, err error)
	// ID verifies value and returns the id of its record. A value this
	// format did not mint answers an error (ErrMalformed), without any
	// storage lookup.
	ID(ctx context.Context, value string) (string, error)
}

// Opaque is the opaque HMAC format of pkg/token: the value carries nothing
// but a random key and its HMAC, the record's id, so that a leaked token
// store gives away no usable token.
type Opaque struct {
	strategy *token.Strategy
}

var _ Format = (*Opaque)(nil)

// NewOpaque returns the opaque format signing with secret (at least 32
// bytes) and also accepting tokens signed with any of rotated.
func NewOpaque(secret []byte, rotated [][]byte) (*Opaque, error) {
	s, err := token.NewStrategy(secret, rotated)
	if err != nil {
		return nil, err
	}
	return &Opaque{strategy: s}, nil
}

// Mint implements Format: a random key and its HMAC.
func (o *Opaque) Mint(ctx context.Context, _ storage.Token) (string, string, error) {
	return o.strategy.Generate(ctx)
}

// Derive implements Format: the key is an HMAC of seed (token.Strategy.Derive).
func (o *Opaque) Derive(_ context.Context, seed []byte, _ storage.Token) (string, string, error) {
	value, id := o.strategy.Derive(seed)
	return value, id, nil
}

// ID implements Format: the value's HMAC, once verified.
func (o *Opaque) ID(ctx context.Context, value string) (string, error) {
	id, err := o.strategy.Signature(ctx, value)
	if err != nil {
		return "", ErrMalformed
	}
	return id, nil
}
