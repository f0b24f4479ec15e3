package leakcheck_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/leakcheck"
	"github.com/tollgate/tollgate/pkg/apikey"
)

func TestFind(t *testing.T) {
	const (
		secret = "S3cr3t-of-the-client_0123456789abcdefghijkl"
		odd    = `pa"ss\word <&> with spaces/and?query=1`
	)
	key, err := apikey.Format(42, secret)
	if err != nil {
		t.Fatal(err)
	}
	jsonOf := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	basic := func(id, s string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(s)))
	}
	tests := []struct {
		name string
		text string
		want bool
	}{
		{"plain", `msg=x secret=` + secret, true},
		{"Basic header, id of 1 digit", basic("7", secret), true},
		{"Basic header, id of 2 digits", basic("42", secret), true},
		{"Basic header, id of 3 digits", basic("123", secret), true},
		{"Basic header, unpadded base64url", base64.RawURLEncoding.EncodeToString([]byte("99:" + secret)), true},
		{"base64 of the secret alone", base64.StdEncoding.EncodeToString([]byte(secret)), true},
		{"Basic header of a secret that needs URL-encoding", basic("5", odd), true},
		{"JSON body", `{"body":` + jsonOf(`{"client_secret":"`+odd+`"}`) + `}`, true},
		{"JSON-escaped", jsonOf(odd), true},
		{"query string", "/oauth/token?client_secret=" + url.QueryEscape(odd), true},
		{"path", "/x/" + url.PathEscape(odd), true},
		{"hex", hex.EncodeToString([]byte(secret)), true},
		{"the secret inside an API key", "key=" + key, true},
		{"a token half", "tok=" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true},
		{"a marker", "hash=tgh1$1$abc", true},
		{"clean", `{"msg":"request","status":401,"client_id":42,"authorization":"Basic ` + base64.StdEncoding.EncodeToString([]byte("42:other-secret-entirely")) + `"}`, false},
		{"a prefix of the secret only", secret[:7], false},
	}
	var m leakcheck.Matcher
	m.Credential("the client secret", "42", secret)
	m.Secret("the odd password", odd)
	m.Secret("the token", "tg_at_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
	m.Marker("a secret hash", "tgh1$")
	m.Secret("too short to search for", "abc")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.Find(tt.text)
			if (len(got) > 0) != tt.want {
				t.Errorf("Find(%q) = %q, want found %v", tt.text, got, tt.want)
			}
			for _, what := range got {
				if strings.Contains(what, secret) || strings.Contains(what, odd) {
					t.Errorf("the description %q holds the secret", what)
				}
			}
		})
	}
}

// An API key remembered whole is found by its secret part alone.
func TestFindKeySecret(t *testing.T) {
	const secret = "KeySecretKeySecretKeySecretKeySecretKey1234"
	key, err := apikey.Format(7, secret)
	if err != nil {
		t.Fatal(err)
	}
	var m leakcheck.Matcher
	m.Secret("the API key", key)
	for _, text := range []string{secret, base64.StdEncoding.EncodeToString([]byte("x:" + secret))} {
		if got := m.Find(text); len(got) == 0 {
			t.Errorf("Find(%q) found nothing, want the key's secret", text)
		}
	}
}
