package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkDecodedParams holds for every successful decode: at most maxParams keys,
// each with exactly one value that is non-empty valid UTF-8, under a valid
// UTF-8 name.
func checkDecodedParams(t *testing.T, what string, body []byte, form url.Values) {
	t.Helper()
	if len(form) > maxParams {
		t.Fatalf("%s(%q) gave %d parameters, want at most %d", what, body, len(form), maxParams)
	}
	for k, vs := range form {
		if len(vs) != 1 {
			t.Fatalf("%s(%q) gave %d values for %q, want exactly 1", what, body, len(vs), k)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(vs[0]) {
			t.Fatalf("%s(%q) gave %q=%q, want valid UTF-8", what, body, k, vs[0])
		}
		if vs[0] == "" {
			t.Fatalf("%s(%q) kept %q with an empty value", what, body, k)
		}
	}
}

func FuzzDecodeForm(f *testing.F) {
	for _, seed := range []string{
		"grant_type=client_credentials&scope=read+write",
		"grant_type=eskimi_dsp&username=u&password=p&client_id=123&client_secret=s",
		"client_secret=a%2Bb%3A%25",
		"a=1&a=2",
		"a=&a=",
		"a=1&b=&c",
		"a=%FF",
		"%FF=1",
		"a=%zz",
		"a=1;b=2",
		"=",
		"&&&",
		"a=%E2%80%AE%00",
		testParamsBody(32, false),
		testParamsBody(33, false),
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := decodeForm(body)
		if err != nil {
			if form != nil {
				t.Fatalf("decodeForm(%q) = %v with error %v, want nil", body, form, err)
			}
			return
		}
		checkDecodedParams(t, "decodeForm", body, form)
		// It agrees with the standard parser, less the empty values.
		raw, perr := url.ParseQuery(string(body))
		if perr != nil {
			t.Fatalf("decodeForm(%q) succeeded, url.ParseQuery error = %v", body, perr)
		}
		for k, vs := range raw {
			if len(vs) > 1 {
				t.Fatalf("decodeForm(%q) accepted %d values for %q, want a repeat refused", body, len(vs), k)
			}
			if got := form.Get(k); got != vs[0] {
				t.Fatalf("decodeForm(%q)[%q] = %q, url.ParseQuery gives %q", body, k, got, vs[0])
			}
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"grant_type":"client_credentials","scope":"read write"}`,
		`{"grant_type":"eskimi_dsp","username":"u","password":"p","client_id":123,"client_secret":"s"}`,
		`{"client_id":"123"}`,
		`{"client_id":1.5}`,
		`{"client_id":1e3}`,
		`{"client_id":-1}`,
		`{"client_id":12345678901234567890}`,
		`{"a":1}`,
		`{"a":{"b":"c"}}`,
		`{"a":["b"]}`,
		`{"a":true,"b":null}`,
		`{"a":"1","a":"2"}`,
		`{"a":"","a":"2"}`,
		`{"a":"1","\u0061":"2"}`,
		`{"a":"\ud800"}`,
		`{"a":"\u0000"}`,
		`{}{}`,
		`{} x`,
		`{"a":"1",}`,
		`[]`,
		`"x"`,
		`null`,
		"{\"a\":\"\xff\"}",
		testParamsBody(32, true),
		testParamsBody(33, true),
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := decodeJSON(body)
		if err != nil {
			if form != nil {
				t.Fatalf("decodeJSON(%q) = %v with error %v, want nil", body, form, err)
			}
			return
		}
		checkDecodedParams(t, "decodeJSON", body, form)
		if !json.Valid(body) {
			t.Fatalf("decodeJSON(%q) succeeded on invalid JSON", body)
		}
		// It agrees with encoding/json: string members (and an integer
		// client_id) carry the same values, and nothing else was present.
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decodeJSON(%q) succeeded, json.Decode error = %v", body, err)
		}
		if len(m) > maxParams {
			t.Fatalf("decodeJSON(%q) accepted %d members, want at most %d", body, len(m), maxParams)
		}
		for k, v := range m {
			var want string
			switch v := v.(type) {
			case string:
				want = v
			case json.Number:
				if k != "client_id" || strings.ContainsAny(v.String(), ".eE-+") {
					t.Fatalf("decodeJSON(%q) accepted number %s for %q", body, v, k)
				}
				want = v.String()
			default:
				t.Fatalf("decodeJSON(%q) accepted %T for %q", body, v, k)
			}
			if got := form.Get(k); got != want {
				t.Fatalf("decodeJSON(%q)[%q] = %q, encoding/json gives %q", body, k, got, want)
			}
		}
	})
}

func FuzzParseBasic(f *testing.F) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, seed := range []string{
		"Basic " + b64("123:s3cret"),
		"basic " + b64("123:s3cret"),
		"Basic " + b64("a%3Ab:x%2By%25"),
		"Basic " + b64("my+client:a+b"),
		"Basic " + b64("123:a:b"),
		"Basic " + b64(":s"),
		"Basic " + b64("123"),
		"Basic " + b64("%:%"),
		"Basic " + b64("%FF:%FF"),
		"Basic " + b64("\xff:\xff"),
		"Basic !!!!",
		"Basic ",
		"Basic",
		"Bearer tg_at_abc.def",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		id, secret, ok := parseBasic(header)
		if !ok {
			if id != "" || secret != "" {
				t.Fatalf("parseBasic(%q) = %q, %q, false; want empty strings on failure", header, id, secret)
			}
			return
		}
		if len(header) < 6 || !strings.EqualFold(header[:6], "basic ") {
			t.Fatalf("parseBasic(%q) accepted a header without the Basic scheme", header)
		}
		if !utf8.ValidString(id) || !utf8.ValidString(secret) {
			t.Fatalf("parseBasic(%q) = %q, %q; want valid UTF-8", header, id, secret)
		}
		// Encoding the result the RFC 6749 §2.3.1 way gives it back.
		again := "Basic " + b64(url.QueryEscape(id)+":"+url.QueryEscape(secret))
		if id2, secret2, ok2 := parseBasic(again); !ok2 || id2 != id || secret2 != secret {
			t.Fatalf("parseBasic(%q) = %q, %q, %t; want %q, %q, true", again, id2, secret2, ok2, id, secret)
		}
	})
}
