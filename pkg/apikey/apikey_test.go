package apikey_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/secret"
)

func TestFormatParse(t *testing.T) {
	t.Parallel()
	for _, id := range []int64{1, 42, 1 << 40, 9223372036854775807} {
		sec, err := secret.Generate()
		if err != nil {
			t.Fatal(err)
		}
		key, err := apikey.Format(id, sec)
		if err != nil {
			t.Fatalf("Format(%d): %v", id, err)
		}
		if !strings.HasPrefix(key, apikey.Prefix) || len(key) > apikey.MaxLength {
			t.Errorf("Format(%d) = %q, want prefix %q and at most %d bytes", id, key, apikey.Prefix, apikey.MaxLength)
		}
		gotID, gotSecret, err := apikey.Parse(key)
		if err != nil || gotID != id || gotSecret != sec {
			t.Errorf("Parse(Format(%d)) = %d, %q, %v; want %d, %q", id, gotID, gotSecret, err, id, sec)
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	sec := strings.Repeat("a", 20) + "-_" + strings.Repeat("Z", 21)
	key, err := apikey.Format(123, sec)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	tests := map[string]string{
		"empty":              "",
		"prefix only":        apikey.Prefix,
		"other prefix":       "tgx_" + key[4:],
		"typo in secret":     flip(key, len(key)-10),
		"typo in checksum":   flip(key, len(key)-1),
		"typo in id":         strings.Replace(key, "tgk_123_", "tgk_124_", 1),
		"leading zero id":    strings.Replace(key, "tgk_123_", "tgk_0123_", 1),
		"no id":              strings.Replace(key, "tgk_123_", "tgk__", 1),
		"short":              key[:len(key)-1],
		"long":               key + "A",
		"space":              key[:20] + " " + key[21:],
		"client secret only": sec,
		"huge":               apikey.Prefix + strings.Repeat("1", 500),
	}
	for name, in := range tests {
		if _, _, err := apikey.Parse(in); !errors.Is(err, apikey.ErrMalformed) {
			t.Errorf("%s: Parse(%q) err = %v, want ErrMalformed", name, in, err)
		}
	}
}

func TestFormatRejects(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id  int64
		sec string
	}{{0, strings.Repeat("a", 43)}, {-1, strings.Repeat("a", 43)}, {1, "short"}, {1, strings.Repeat("+", 43)}} {
		if _, err := apikey.Format(tt.id, tt.sec); err == nil {
			t.Errorf("Format(%d, %q) succeeded, want an error", tt.id, tt.sec)
		}
	}
}

func TestHint(t *testing.T) {
	t.Parallel()
	if got := apikey.Hint("abcdefgh"); got != "efgh" {
		t.Errorf("Hint = %q, want efgh", got)
	}
	if got := apikey.Hint("ab"); got != "" {
		t.Errorf("Hint(short) = %q, want empty", got)
	}
}

// A key's hint is the key's real end, and its masked form ends like the
// key; a hint stored before keys had their own shows dots for the checksum.
func TestKeyHint(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("a", 39) + "9LKQ"
	key, err := apikey.Format(18, secret)
	if err != nil {
		t.Fatal(err)
	}
	hint, err := apikey.KeyHint(18, secret)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, got, want string
	}{
		{"KeyHint", hint, key[len(key)-10:]},
		{"Masked", apikey.Masked(18, hint), "tgk_18_…" + key[len(key)-10:]},
		{"Masked, an older hint", apikey.Masked(18, "9LKQ"), "tgk_18_…9LKQ······"},
		{"SecretHint of a key", apikey.SecretHint(hint), "9LKQ"},
		{"SecretHint of a client", apikey.SecretHint("9LKQ"), "9LKQ"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if !strings.HasSuffix(key, strings.TrimPrefix(apikey.Masked(18, hint), "tgk_18_…")) {
		t.Errorf("Masked = %q does not match the end of the key %q", apikey.Masked(18, hint), key)
	}
	if _, err := apikey.KeyHint(0, secret); err == nil {
		t.Error("KeyHint(0) = nil error, want one")
	}
}

func FuzzParse(f *testing.F) {
	key, _ := apikey.Format(77, strings.Repeat("x", 43))
	for _, s := range []string{key, "", apikey.Prefix, "tgk_1_", key + key, "tgk_99999999999999999999_" + strings.Repeat("a", 49)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, sec, err := apikey.Parse(s)
		if err != nil {
			return
		}
		again, err := apikey.Format(id, sec)
		if err != nil || again != s {
			t.Fatalf("Parse(%q) = %d, %q but Format gives %q, %v", s, id, sec, again, err)
		}
	})
}
