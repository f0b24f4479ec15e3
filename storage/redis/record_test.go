package redis

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// typicalToken is the token the size targets are measured with.
func typicalToken() storage.Token {
	issued := time.Date(2030, 6, 15, 10, 20, 30, 123_000_000, time.UTC)
	return storage.Token{
		Signature:  "Zp7mWc6M1nq0u0o5c3Wg8oQ7xv9y4mB2eXo1Jt6uQkA",
		RequestID:  "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
		ClientID:   123456,
		Generation: 1,
		AccountID:  4321,
		Subject:    "42",
		Username:   "alice",
		GrantType:  "client_credentials",
		Scopes:     []string{"events", "contacts", "reports"},
		Audience:   nil,
		IssuedAt:   issued,
		ExpiresAt:  issued.Add(time.Hour),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	type test struct {
		name   string
		change func(*storage.Token)
	}
	tests := []test{
		{"typical", func(*storage.Token) {}},
		{"zero token but times", func(tok *storage.Token) {
			*tok = storage.Token{IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt}
		}},
		{"uuid request id", func(tok *storage.Token) { tok.RequestID = "3f2c7a4e-9b1d-4c55-8e2a-6d0f1b9c7e31" }},
		{"uppercase uuid request id", func(tok *storage.Token) { tok.RequestID = "3F2C7A4E-9B1D-4C55-8E2A-6D0F1B9C7E31" }},
		{"uuid without dashes in place", func(tok *storage.Token) { tok.RequestID = "3f2c7a4e9-b1d-4c55-8e2a-6d0f1b9c7e31" }},
		{"literal request id", func(tok *storage.Token) { tok.RequestID = "req-1" }},
		{"uppercase hex request id", func(tok *storage.Token) { tok.RequestID = "ABCDEF" }},
		{"odd-length hex request id", func(tok *storage.Token) { tok.RequestID = "abc" }},
		{"unknown grant type", func(tok *storage.Token) { tok.GrantType = "urn:example:grant" }},
		{"empty strings in slices", func(tok *storage.Token) { tok.Scopes, tok.Audience = []string{"", ""}, []string{""} }},
		{"extreme numbers", func(tok *storage.Token) {
			tok.ClientID, tok.Generation, tok.AccountID = math.MaxInt64, math.MinInt64, -1
		}},
		{"zero issued at", func(tok *storage.Token) { tok.IssuedAt = time.Time{} }},
		{"issued after expiry", func(tok *storage.Token) { tok.IssuedAt = tok.ExpiresAt.Add(time.Hour) }},
		{"year 9999", func(tok *storage.Token) {
			tok.ExpiresAt = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
		}},
		{"long strings", func(tok *storage.Token) {
			tok.Username = strings.Repeat("u", 70_000)
			tok.Scopes = slices.Repeat([]string{"scope"}, 300)
		}},
	}
	for _, gt := range grantTypes {
		tests = append(tests, test{"grant type " + gt, func(tok *storage.Token) { tok.GrantType = gt }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := typicalToken()
			tt.change(&want)
			want.Signature = ""
			b, err := encodeRecord(want)
			if err != nil {
				t.Fatalf("encodeRecord: %v", err)
			}
			got, err := decodeRecord(string(b))
			if err != nil {
				t.Fatalf("decodeRecord: %v", err)
			}
			if !equalTokens(got, want) {
				t.Errorf("decodeRecord(encodeRecord(t)):\ngot  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestRecordSize(t *testing.T) {
	tok := typicalToken()
	b, err := encodeRecord(tok)
	if err != nil {
		t.Fatal(err)
	}
	// 1 version + 17 request id + 3+1+2 ids + 3 subject + 6 username +
	// 1 grant type + 1+7+9+8 scopes + 1 audience + 6 expiry + 4 lifetime.
	if got, want := len(b), 70; got != want {
		t.Errorf("typical record: got %d bytes, want %d", got, want)
	}
	// A fosite UUID request id packs as small as Mint's hex one.
	tok.RequestID = "3f2c7a4e-9b1d-4c55-8e2a-6d0f1b9c7e31"
	if b, err = encodeRecord(tok); err != nil {
		t.Fatal(err)
	}
	if got, want := len(b), 70; got != want {
		t.Errorf("record with a UUID request id: got %d bytes, want %d", got, want)
	}
}

// TestRecordDPoP: a DPoP-bound token's record is a Bearer token's plus 33
// bytes (the tag and the decoded thumbprint) and reads back; a Bearer
// token's record is as it always was; a JKT that is no SHA-256 thumbprint
// is refused.
func TestRecordDPoP(t *testing.T) {
	tok := typicalToken()
	plain, err := encodeRecord(tok)
	if err != nil {
		t.Fatal(err)
	}
	tok.JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	bound, err := encodeRecord(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(bound) != len(plain)+33 || string(bound[:len(plain)]) != string(plain) {
		t.Errorf("bound record: %d bytes, want the Bearer record's %d and 33 more", len(bound), len(plain))
	}
	got, err := decodeRecord(string(bound))
	if err != nil || got.JKT != tok.JKT {
		t.Errorf("decodeRecord: JKT %q, %v, want %q", got.JKT, err, tok.JKT)
	}
	for _, bad := range []string{"short", tok.JKT + "A", "NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs"} {
		tok.JKT = bad
		if _, err := encodeRecord(tok); err == nil {
			t.Errorf("encodeRecord with JKT %q: no error", bad)
		}
	}
}

// Request ids that look alike under the compact forms still encode apart:
// the field names the request's revocation marker.
func TestRequestIDEncodingsDistinct(t *testing.T) {
	ids := []string{
		"", "ab", "AB", "\xab", "abc",
		"0f1e2d3c4b5a69788796a5b4c3d2e1f0",
		"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		"\x0f\x1e\x2d\x3c\x4b\x5a\x69\x78\x87\x96\xa5\xb4\xc3\xd2\xe1\xf0",
		"0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0",
		"\x41\x0f\x1e\x2d\x3c\x4b\x5a\x69\x78\x87\x96\xa5\xb4\xc3\xd2\xe1\xf0",
	}
	seen := map[string]string{}
	for _, id := range ids {
		field := string(appendRequestID(nil, id))
		if other, ok := seen[field]; ok {
			t.Errorf("request ids %q and %q: both encode as %x", other, id, field)
		}
		seen[field] = id
	}
}

func TestEncodeRecordRejectsTimesOutOfRange(t *testing.T) {
	tests := []struct {
		name   string
		change func(*storage.Token)
	}{
		{"expiry after year 9999", func(tok *storage.Token) { tok.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"issued before year 1", func(tok *storage.Token) { tok.IssuedAt = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := typicalToken()
			tt.change(&tok)
			if _, err := encodeRecord(tok); err == nil {
				t.Error("encodeRecord: got nil error, want an error")
			}
		})
	}
}

func TestDecodeRecordRejectsGarbage(t *testing.T) {
	valid, err := encodeRecord(typicalToken())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		record []byte
	}{
		{"nil", nil},
		{"version only", []byte{recordV3}},
		{"version 0", append([]byte{0}, valid[1:]...)},
		{"version 1", append([]byte{1}, valid[1:]...)},
		{"version 2", append([]byte{2}, valid[1:]...)},
		{"version 4", append([]byte{4}, valid[1:]...)},
		{"request id form 3", append([]byte{recordV3, 16<<2 | 3}, valid[2:]...)},
		{"empty hex request id", append([]byte{recordV3, 0<<2 | requestIDHex}, valid[18:]...)},
		{"short uuid request id", append([]byte{recordV3, 15<<2 | requestIDUUID}, valid[3:]...)},
		{"JSON", []byte(`{"rid":"x"}`)},
		{"truncated by one", valid[:len(valid)-1]},
		{"truncated in the middle", valid[:len(valid)/2]},
		{"trailing byte", append(slices.Clone(valid), 0)},
		{"length past the end", []byte{recordV3, 0xfe, 0x01}},
		{"overlong uvarint", append([]byte{recordV3}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"huge scope count", func() []byte {
			b := []byte{recordV3, 0, 0, 0, 0, 0, 0, 1}                 // empty strings, grant type code 0
			return append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f) // count ~2^48
		}()},
		{"unknown grant type code", []byte{recordV3, 0, 0, 0, 0, 0, 0, 0x7f, 0, 0, 0, 0}},
		{"time out of range", func() []byte {
			b := []byte{recordV3, 0, 0, 0, 0, 0, 0, 1, 0, 0}
			b = append(b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01) // MaxInt64 ms
			return append(b, 0)
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeRecord(string(tt.record))
			if !errors.Is(err, errCorrupt) {
				t.Errorf("decodeRecord(%x): got error %v, want errCorrupt", tt.record, err)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, change := range []func(*storage.Token){
		func(*storage.Token) {},
		func(tok *storage.Token) { tok.RequestID, tok.GrantType = "req-1", "urn:example:grant" },
		func(tok *storage.Token) { tok.Scopes, tok.Audience = nil, []string{"a", ""} },
		func(tok *storage.Token) { tok.IssuedAt = time.Time{} },
		func(tok *storage.Token) { tok.JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" },
	} {
		tok := typicalToken()
		change(&tok)
		b, err := encodeRecord(tok)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{recordV3})
	f.Add([]byte{2, 0})
	f.Add([]byte(`{"rid":"x"}`))

	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := decodeRecord(string(b))
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("decodeRecord: got error %v, want errCorrupt", err)
			}
			return
		}
		// What decodes must encode, and decode to the same token again.
		again, err := encodeRecord(tok)
		if err != nil {
			t.Fatalf("encodeRecord of a decoded token: %v", err)
		}
		got, err := decodeRecord(string(again))
		if err != nil {
			t.Fatalf("decodeRecord of a re-encoded token: %v", err)
		}
		if !equalTokens(got, tok) {
			t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, tok)
		}
	})
}

func BenchmarkEncodeRecord(b *testing.B) {
	tok := typicalToken()
	var size int
	for b.Loop() {
		rec, err := encodeRecord(tok)
		if err != nil {
			b.Fatal(err)
		}
		size = len(rec)
	}
	b.ReportMetric(float64(size), "record-bytes")
}

func BenchmarkDecodeRecord(b *testing.B) {
	rec, err := encodeRecord(typicalToken())
	if err != nil {
		b.Fatal(err)
	}
	s := string(rec) // as go-redis answers it
	for b.Loop() {
		if _, err := decodeRecord(s); err != nil {
			b.Fatal(err)
		}
	}
}

// reader.uvarint reads what binary.Uvarint reads, and fails where it fails.
func FuzzReaderUvarint(f *testing.F) {
	for _, b := range [][]byte{
		{}, {0}, {0x7f}, {0x80}, {0x80, 0x01}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, bytes.Repeat([]byte{0x80}, 11),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, n := binary.Uvarint(b)
		r := reader{s: string(b)}
		got := r.uvarint()
		if n <= 0 {
			if r.err == nil {
				t.Errorf("uvarint(%x): got %d, want an error", b, got)
			}
			return
		}
		if r.err != nil || got != want || len(r.s) != len(b)-n {
			t.Errorf("uvarint(%x): got %d, %d bytes left, error %v; want %d, %d bytes left",
				b, got, len(r.s), r.err, want, len(b)-n)
		}
	})
}

// equalTokens compares tokens field by field: times with Equal, nil and
// empty slices alike.
func equalTokens(a, b storage.Token) bool {
	return a.Signature == b.Signature &&
		a.RequestID == b.RequestID &&
		a.ClientID == b.ClientID &&
		a.Generation == b.Generation &&
		a.AccountID == b.AccountID &&
		a.Subject == b.Subject &&
		a.Username == b.Username &&
		a.GrantType == b.GrantType &&
		slices.Equal(a.Scopes, b.Scopes) &&
		slices.Equal(a.Audience, b.Audience) &&
		a.IssuedAt.Equal(b.IssuedAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.JKT == b.JKT
}
