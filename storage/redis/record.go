package redis

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// recordV1 is the first byte of a version 1 token record. A new layout gets
// a new version byte, and decoders keep reading the old ones for as long as
// such tokens can live.
//
// Version 1 (varint: zig-zag encoding/binary varint; uvarint: unsigned):
//
//	version     byte (1)
//	request id  uvarint tag: len<<1 for len literal bytes, or n<<1|1 for n
//	            bytes holding a lowercase hex string of 2n characters
//	client id   varint
//	generation  varint
//	account id  varint
//	subject     uvarint length, bytes
//	username    uvarint length, bytes
//	grant type  uvarint tag: len<<1 for len literal bytes, or i<<1|1 for
//	            grantTypesV1[i]
//	scopes      uvarint count, then each as uvarint length, bytes
//	audience    uvarint count, then each as uvarint length, bytes
//	expires at  varint Unix milliseconds
//	lifetime    varint milliseconds from issued at to expires at
//
// The signature is the key, so it is not repeated in the record.
const recordV1 = 1

// grantTypesV1 are the grant types a version 1 record stores as one byte.
// The list is part of the format: append only, and only with a new version.
var grantTypesV1 = []string{
	"client_credentials",
	"authorization_code",
	"refresh_token",
	"password",
	"eskimi_dsp",
	"urn:ietf:params:oauth:grant-type:jwt-bearer",
	"urn:ietf:params:oauth:grant-type:device_code",
	"urn:ietf:params:oauth:grant-type:token-exchange",
}

// Times a record can hold: years 1 to 9999, where Unix milliseconds convert
// to time.Time and back exactly.
var (
	minRecordTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxRecordTime = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC).UnixMilli()
)

var errCorrupt = errors.New("corrupt token record")

// encodeRecord answers the version 1 record of t, times truncated to the
// millisecond. Times outside years 1 to 9999 are an error.
func encodeRecord(t storage.Token) ([]byte, error) {
	issued, expires := t.IssuedAt.UnixMilli(), t.ExpiresAt.UnixMilli()
	if !recordTime(issued) || !recordTime(expires) {
		return nil, errors.New("token time outside years 1 to 9999")
	}
	size := 32 + len(t.RequestID) + len(t.Subject) + len(t.Username) + len(t.GrantType)
	for _, s := range t.Scopes {
		size += 2 + len(s)
	}
	for _, s := range t.Audience {
		size += 2 + len(s)
	}
	b := make([]byte, 0, size)
	b = append(b, recordV1)
	b = appendRequestID(b, t.RequestID)
	b = binary.AppendVarint(b, t.ClientID)
	b = binary.AppendVarint(b, t.Generation)
	b = binary.AppendVarint(b, t.AccountID)
	b = appendString(b, t.Subject)
	b = appendString(b, t.Username)
	b = appendGrantType(b, t.GrantType)
	b = appendStrings(b, t.Scopes)
	b = appendStrings(b, t.Audience)
	b = binary.AppendVarint(b, expires)
	b = binary.AppendVarint(b, expires-issued)
	return b, nil
}

// decodeRecord answers the token of a record, without its signature. It
// answers an error wrapping errCorrupt for anything that is not a record it
// knows, and never panics.
func decodeRecord(b []byte) (storage.Token, error) {
	if len(b) == 0 {
		return storage.Token{}, fmt.Errorf("%w: empty", errCorrupt)
	}
	if b[0] != recordV1 {
		return storage.Token{}, fmt.Errorf("%w: unknown version %d", errCorrupt, b[0])
	}
	r := newReader(b[1:])
	var t storage.Token
	t.RequestID = r.requestID()
	t.ClientID = r.varint()
	t.Generation = r.varint()
	t.AccountID = r.varint()
	t.Subject = r.string()
	t.Username = r.string()
	t.GrantType = r.grantType()
	t.Scopes = r.strings()
	t.Audience = r.strings()
	expires := r.varint()
	issued := expires - r.varint() // wraps on garbage; the range check catches it
	switch {
	case r.err != nil:
		return storage.Token{}, fmt.Errorf("%w: %w", errCorrupt, r.err)
	case len(r.b) > 0:
		return storage.Token{}, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	case !recordTime(issued) || !recordTime(expires):
		return storage.Token{}, fmt.Errorf("%w: time out of range", errCorrupt)
	}
	t.IssuedAt = time.UnixMilli(issued).UTC()
	t.ExpiresAt = time.UnixMilli(expires).UTC()
	return t, nil
}

func recordTime(ms int64) bool { return minRecordTime <= ms && ms <= maxRecordTime }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// appendRequestID packs a lowercase hex request id (32 characters when
// Tollgate makes it) into half the bytes.
func appendRequestID(b []byte, id string) []byte {
	if !isLowerHex(id) {
		b = binary.AppendUvarint(b, uint64(len(id))<<1)
		return append(b, id...)
	}
	b = binary.AppendUvarint(b, uint64(len(id)/2)<<1|1)
	b, _ = hex.AppendDecode(b, []byte(id)) // cannot fail: isLowerHex
	return b
}

func isLowerHex(s string) bool {
	if len(s) == 0 || len(s)%2 != 0 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func appendGrantType(b []byte, gt string) []byte {
	for i, known := range grantTypesV1 {
		if gt == known {
			return binary.AppendUvarint(b, uint64(i)<<1|1)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(gt))<<1)
	return append(b, gt...)
}

// reader decodes a record. The first error sticks: later reads answer zero
// values, and decodeRecord checks err once at the end. Strings are cut from
// one copy of the record, so decoding allocates once for all of them.
type reader struct {
	b   []byte // the unread rest of the record
	s   string // the unread rest again, sharing the one copy
	err error
}

func newReader(b []byte) reader { return reader{b: b, s: string(b)} }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b, r.s = nil, ""
}

func (r *reader) skip(n int) {
	r.b, r.s = r.b[n:], r.s[n:]
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad uvarint"))
		return 0
	}
	r.skip(n)
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad varint"))
		return 0
	}
	r.skip(n)
	return v
}

// stringOf answers the next n bytes, n read from the record and so not
// trusted.
func (r *reader) stringOf(n uint64) string {
	if n > uint64(len(r.b)) {
		r.fail(errors.New("length past the end"))
		return ""
	}
	v := r.s[:n]
	r.skip(int(n))
	return v
}

func (r *reader) string() string { return r.stringOf(r.uvarint()) }

func (r *reader) strings() []string {
	n := r.uvarint()
	// Every string takes at least its length byte: a count beyond the
	// bytes left is garbage, and must not size an allocation.
	if n > uint64(len(r.b)) {
		r.fail(errors.New("count past the end"))
		return nil
	}
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.string()
	}
	return ss
}

func (r *reader) requestID() string {
	tag := r.uvarint()
	if tag&1 == 0 {
		return r.stringOf(tag >> 1)
	}
	return hex.EncodeToString([]byte(r.stringOf(tag >> 1)))
}

func (r *reader) grantType() string {
	tag := r.uvarint()
	if tag&1 == 0 {
		return r.stringOf(tag >> 1)
	}
	if i := tag >> 1; i < uint64(len(grantTypesV1)) {
		return grantTypesV1[i]
	}
	r.fail(errors.New("unknown grant type code"))
	return ""
}
