package tokens

import (
	"context"
	"errors"
	"strconv"

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
	// stored under. rec's Signature and RequestID are not set yet. root is
	// the root account of rec's account, for a format that names it (0:
	// unknown; such a format then mints a value that does not).
	Mint(ctx context.Context, rec storage.Token, root int64) (value, id string, err error)
	// Derive is Mint for a reused token: the same seed answers the same
	// value and id, and nobody without the format's keys can compute them
	// from the seed.
	Derive(ctx context.Context, seed []byte, rec storage.Token, root int64) (value, id string, err error)
	// ID verifies value and returns the id of its record. A value this
	// format did not mint answers an error (ErrMalformed), without any
	// storage lookup.
	ID(ctx context.Context, value string) (string, error)
}

// Opaque is the opaque HMAC format of pkg/token: the value carries the ids
// of its root account, account and client, a random key and an HMAC of
// them all, the record's id, so that a leaked token store gives away no
// usable token. Its ids are storage.Rooted: a token store keeps the record
// with the root account's other keys (ADR 0013). Values of the format
// minted before it, a random key and its HMAC alone, are still read; they
// are minted only when the root is unknown.
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

var _ Namer = (*Opaque)(nil)

// NamesOf returns the ids a value of rec naming its root names (root, its
// account, client and user); ok is false when they are not all known (or
// its subject is not a user id), and such a value must then name nothing.
func NamesOf(rec storage.Token, root int64) (token.Names, bool) {
	n := token.Names{Root: root, Account: rec.AccountID, Client: rec.ClientID}
	if rec.Subject != "" {
		user, err := strconv.ParseInt(rec.Subject, 10, 64)
		if err != nil || user <= 0 || strconv.FormatInt(user, 10) != rec.Subject {
			return token.Names{}, false
		}
		n.User = user
	}
	return n, n.Root > 0 && n.Account > 0 && n.Client > 0
}

// Mint implements Format: the ids, a random key and their HMAC.
func (o *Opaque) Mint(ctx context.Context, rec storage.Token, root int64) (string, string, error) {
	n, ok := NamesOf(rec, root)
	if !ok {
		return o.strategy.Generate(ctx)
	}
	value, sig, err := o.strategy.GenerateRooted(n)
	if err != nil {
		return "", "", err
	}
	return value, storage.Rooted(n.Root, sig), nil
}

// Derive implements Format: the key is an HMAC of seed (token.Strategy.Derive).
func (o *Opaque) Derive(_ context.Context, seed []byte, rec storage.Token, root int64) (string, string, error) {
	n, ok := NamesOf(rec, root)
	if !ok {
		value, id := o.strategy.Derive(seed)
		return value, id, nil
	}
	value, sig := o.strategy.DeriveRooted(seed, n)
	return value, storage.Rooted(n.Root, sig), nil
}

// ID implements Format: the value's HMAC, once verified, rooted when the
// value names its root.
func (o *Opaque) ID(ctx context.Context, value string) (string, error) {
	if len(value) == token.Length {
		id, err := o.strategy.Signature(ctx, value)
		if err != nil {
			return "", ErrMalformed
		}
		return id, nil
	}
	n, sig, err := o.strategy.RootedSignature(value)
	if err != nil {
		return "", ErrMalformed
	}
	return storage.Rooted(n.Root, sig), nil
}

// Names implements Namer.
func (o *Opaque) Names(_ context.Context, value string) (token.Names, string, error) {
	n, sig, err := o.strategy.RootedSignature(value)
	if err != nil {
		return token.Names{}, "", ErrMalformed
	}
	return n, storage.Rooted(n.Root, sig), nil
}

// Namer is a Format whose values may name their root account, account and
// client (under their HMAC), so that the record can be read together with
// the check's decision.
type Namer interface {
	// Names verifies value and returns the ids it names and its record's
	// id; a value that names none, or is not the format's, answers
	// ErrMalformed without any storage lookup, and one of the format's that
	// no reader can accept (its signature fails) may answer ErrInactive.
	Names(ctx context.Context, value string) (token.Names, string, error)
}
