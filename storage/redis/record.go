package redis

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// recordV3 is the first byte of a version 3 record, the only version this
// package reads. A new layout of records or keys gets a new version byte;
// while Tollgate is pre-release, records of an older version are not
// migrated: they are answered as corrupt (and, with versions 1 and 2, lived
// under keys no longer read).
//
// Version 3 (varint: zig-zag encoding/binary varint; uvarint: unsigned):
//
//	version     byte (3)
//	request id  uvarint tag n<<2|form, then n bytes (see appendRequestID)
//	client id   varint
//	generation  varint
//	account id  varint
//	subject     uvarint length, bytes
//	username    uvarint length, bytes
//	grant type  uvarint tag: len<<1 for len literal bytes, or i<<1|1 for
//	            grantTypes[i]
//	scopes      uvarint count, then each as uvarint length, bytes
//	audience    uvarint count, then each as uvarint length, bytes
//	expires at  varint Unix milliseconds
//	lifetime    varint milliseconds from issued at to expires at
//	[jkt]       only for a DPoP-bound token: the byte fieldJKT, then the
//	            32 bytes of the SHA-256 thumbprint its JKT encodes
//	            (base64url); a Bearer token's record ends at its lifetime
//
// The signature is the key, so it is not repeated in the record. The request
// id field comes first, right after the version, and its tag gives its
// length whatever the form: it is also the name of the request's revocation
// marker, which the Lua scripts cut out of the record (see luaRevoked).
//
// Version 2 had the same fields, under keys without hash tags (one shard,
// no Redis Cluster). Version 1 differed from it only in the request id tag
// (len<<1|hex) and held no UUID form.
const recordV3 = 3

// fieldJKT tags the optional trailing JKT field of a record.
const fieldJKT = 1

// jktBytes is the size of a decoded JKT: a SHA-256 digest.
const jktBytes = 32

// Forms of a stored request id: the low two bits of its tag.
const (
	requestIDLiteral = 0 // the id's bytes as they are
	requestIDHex     = 1 // lowercase hex of even length, decoded: Mint's 32 characters in 16 bytes
	requestIDUUID    = 2 // a canonical lowercase UUID (fosite's ids), its 16 bytes
)

// grantTypes are the grant types a record stores as one byte. The list is
// part of the format: append only, and only with a new version.
var grantTypes = []string{
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

// encodeRecord answers the version 3 record of t, times truncated to the
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
	b = append(b, recordV3)
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
	if t.JKT != "" {
		jkt, err := base64.RawURLEncoding.DecodeString(t.JKT)
		if err != nil || len(jkt) != jktBytes {
			return nil, errors.New("token jkt is not a base64url SHA-256 thumbprint")
		}
		b = append(b, fieldJKT)
		b = append(b, jkt...)
	}
	return b, nil
}

// decodeRecord answers the token of a record, without its signature. It
// answers an error wrapping errCorrupt for anything that is not a record it
// knows, and never panics. The token's strings share b's memory.
func decodeRecord(b string) (storage.Token, error) {
	if len(b) == 0 {
		return storage.Token{}, fmt.Errorf("%w: empty", errCorrupt)
	}
	if b[0] != recordV3 {
		return storage.Token{}, fmt.Errorf("%w: unknown version %d", errCorrupt, b[0])
	}
	r := reader{s: b[1:]}
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
	if r.err == nil && len(r.s) == 1+jktBytes && r.s[0] == fieldJKT {
		t.JKT = base64.RawURLEncoding.EncodeToString([]byte(r.s[1:]))
		r.s = ""
	}
	switch {
	case r.err != nil:
		return storage.Token{}, fmt.Errorf("%w: %w", errCorrupt, r.err)
	case len(r.s) > 0:
		return storage.Token{}, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.s))
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

// appendRequestID appends the request id field of a record: the tag
// n<<2|form and n bytes. The two forms Tollgate meets take 17 bytes instead
// of 33 or 37: Mint's 32 lowercase hex characters, and fosite's canonical
// lowercase UUIDs. Anything else is stored literally. Every id has exactly
// one encoding, so the field also names the request's revocation marker.
func appendRequestID(b []byte, id string) []byte {
	switch {
	case isUUID(id):
		b = binary.AppendUvarint(b, 16<<2|requestIDUUID)
		for _, part := range []string{id[0:8], id[9:13], id[14:18], id[19:23], id[24:36]} {
			b, _ = hex.AppendDecode(b, []byte(part)) // cannot fail: isUUID
		}
		return b
	case isLowerHex(id):
		//nolint:gosec // G115: a length is never negative
		b = binary.AppendUvarint(b, uint64(len(id)/2)<<2|requestIDHex)
		b, _ = hex.AppendDecode(b, []byte(id)) // cannot fail: isLowerHex
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(id))<<2|requestIDLiteral)
	return append(b, id...)
}

// isUUID reports whether s is a UUID in canonical lowercase form,
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func isUUID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return isLowerHex(s[0:8]) && isLowerHex(s[9:13]) && isLowerHex(s[14:18]) &&
		isLowerHex(s[19:23]) && isLowerHex(s[24:36])
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
	for i, known := range grantTypes {
		if gt == known {
			//nolint:gosec // G115: an index is never negative
			return binary.AppendUvarint(b, uint64(i)<<1|1)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(gt))<<1)
	return append(b, gt...)
}

// reader decodes a record. The first error sticks: later reads answer zero
// values, and decodeRecord checks err once at the end. It reads the string
// Redis answered, so the strings it cuts share that one allocation.
type reader struct {
	s   string // the unread rest of the record
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.s = ""
}

// uvarint reads what binary.AppendUvarint writes, as binary.Uvarint does,
// from a string.
func (r *reader) uvarint() uint64 {
	var v uint64
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		c := r.s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			r.s = r.s[i+1:]
			return v | uint64(c)<<(7*i)
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	r.fail(errors.New("bad uvarint"))
	return 0
}

// varint reads what binary.AppendVarint writes: a zig-zag uvarint.
func (r *reader) varint() int64 {
	u := r.uvarint()
	//nolint:gosec // G115: u>>1 is below 2^63, the zig-zag decoding binary.Varint does
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// stringOf answers the next n bytes, n read from the record and so not
// trusted.
func (r *reader) stringOf(n uint64) string {
	if n > uint64(len(r.s)) {
		r.fail(errors.New("length past the end"))
		return ""
	}
	v := r.s[:n]
	r.s = r.s[n:]
	return v
}

func (r *reader) string() string { return r.stringOf(r.uvarint()) }

func (r *reader) strings() []string {
	n := r.uvarint()
	// Every string takes at least its length byte: a count beyond the
	// bytes left is garbage, and must not size an allocation.
	if n > uint64(len(r.s)) {
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
	v := r.stringOf(tag >> 2)
	switch form := tag & 3; {
	case r.err != nil || form == requestIDLiteral:
		return v
	case form == requestIDHex && len(v) > 0:
		return hex.EncodeToString([]byte(v))
	case form == requestIDUUID && len(v) == 16:
		var buf [36]byte
		hex.Encode(buf[0:8], []byte(v[0:4]))
		buf[8] = '-'
		hex.Encode(buf[9:13], []byte(v[4:6]))
		buf[13] = '-'
		hex.Encode(buf[14:18], []byte(v[6:8]))
		buf[18] = '-'
		hex.Encode(buf[19:23], []byte(v[8:10]))
		buf[23] = '-'
		hex.Encode(buf[24:36], []byte(v[10:16]))
		return string(buf[:])
	}
	// An encoder never writes an empty hex id, a UUID of another length
	// or form 3: each id must have exactly one encoding.
	r.fail(errors.New("bad request id form"))
	return ""
}

func (r *reader) grantType() string {
	tag := r.uvarint()
	if tag&1 == 0 {
		return r.stringOf(tag >> 1)
	}
	if i := tag >> 1; i < uint64(len(grantTypes)) {
		return grantTypes[i]
	}
	r.fail(errors.New("unknown grant type code"))
	return ""
}
