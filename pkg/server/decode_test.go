package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate/tollgate/grants/tokenexchange"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/oauth"
)

const decodeTestMaxBytes = 1024

// testParamsBody returns a form body, or a JSON object, with n distinct
// parameters p0 … p(n-1).
func testParamsBody(n int, asJSON bool) string {
	parts := make([]string, n)
	for i := range parts {
		if asJSON {
			parts[i] = fmt.Sprintf(`"p%d":"v"`, i)
		} else {
			parts[i] = fmt.Sprintf("p%d=v", i)
		}
	}
	if asJSON {
		return "{" + strings.Join(parts, ",") + "}"
	}
	return strings.Join(parts, "&")
}

// testCheckOAuthError fails t unless err is an *oauthError with code and status.
func testCheckOAuthError(t *testing.T, what string, err *oauthError, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s error = nil, want %s (%d)", what, code, status)
	}
	if err.code != code || err.status != status {
		t.Errorf("%s error = %s (%d), want %s (%d)", what, err.code, err.status, code, status)
	}
	if err.description == "" {
		t.Errorf("%s error %s has no description", what, err.code)
	}
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	const form = "application/x-www-form-urlencoded"
	const json = "application/json"
	tests := []struct {
		name         string
		contentTypes []string // Content-Type header values; none when empty
		body         string
		maxBytes     int64 // decodeTestMaxBytes when 0
		noJSON       bool  // call with allowJSON false
		want         url.Values
		wantStatus   int // 400 when an error is expected and 0
		wantErr      bool
	}{
		// Form bodies.
		{name: "form", contentTypes: []string{form}, body: "grant_type=client_credentials&scope=read+write",
			want: url.Values{"grant_type": {"client_credentials"}, "scope": {"read write"}}},
		{name: "form charset UTF-8", contentTypes: []string{form + "; charset=UTF-8"}, body: "a=1",
			want: url.Values{"a": {"1"}}},
		{name: "form charset utf-8 quoted", contentTypes: []string{form + `; charset="utf-8"`}, body: "a=1",
			want: url.Values{"a": {"1"}}},
		{name: "form upper-case media type", contentTypes: []string{"Application/X-WWW-Form-Urlencoded"}, body: "a=1",
			want: url.Values{"a": {"1"}}},
		{name: "form accepted without JSON", contentTypes: []string{form}, body: "a=1", noJSON: true,
			want: url.Values{"a": {"1"}}},
		{name: "form percent-encoded", contentTypes: []string{form}, body: "client_secret=a%2Bb%3A%25&x=%C3%A9",
			want: url.Values{"client_secret": {"a+b:%"}, "x": {"é"}}},
		{name: "form empty values dropped", contentTypes: []string{form}, body: "a=1&b=&c",
			want: url.Values{"a": {"1"}}},
		{name: "form 32 params", contentTypes: []string{form}, body: testParamsBody(32, false),
			want: func() url.Values { v, _ := url.ParseQuery(testParamsBody(32, false)); return v }()},
		{name: "form body at the cap", contentTypes: []string{form}, body: "a=" + strings.Repeat("x", 98), maxBytes: 100,
			want: url.Values{"a": {strings.Repeat("x", 98)}}},
		{name: "form duplicate key", contentTypes: []string{form}, body: "a=1&a=2", wantErr: true},
		{name: "form duplicate key same value", contentTypes: []string{form}, body: "a=1&a=1", wantErr: true},
		{name: "form duplicate key one empty", contentTypes: []string{form}, body: "a=&a=2", wantErr: true},
		{name: "form invalid UTF-8 value", contentTypes: []string{form}, body: "a=%FF", wantErr: true},
		{name: "form invalid UTF-8 raw value", contentTypes: []string{form}, body: "a=\xff", wantErr: true},
		{name: "form invalid UTF-8 key", contentTypes: []string{form}, body: "%C3=1", wantErr: true},
		{name: "form bad percent-escape", contentTypes: []string{form}, body: "a=%zz", wantErr: true},
		{name: "form semicolon", contentTypes: []string{form}, body: "a=1;b=2", wantErr: true},
		{name: "form only empty values", contentTypes: []string{form}, body: "a=&b=", wantErr: true},
		{name: "form 33 params", contentTypes: []string{form}, body: testParamsBody(33, false), wantErr: true},
		{name: "form 33 params some empty", contentTypes: []string{form}, body: testParamsBody(32, false) + "&z=", wantErr: true},

		// JSON bodies.
		{name: "JSON", contentTypes: []string{json}, body: `{"grant_type":"client_credentials","scope":"read"}`,
			want: url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}},
		{name: "JSON numeric client_id", contentTypes: []string{json},
			body: `{"grant_type":"eskimi_dsp","username":"u","password":"p","client_id":123,"client_secret":"s"}`,
			want: url.Values{"grant_type": {"eskimi_dsp"}, "username": {"u"}, "password": {"p"}, "client_id": {"123"}, "client_secret": {"s"}}},
		{name: "JSON numeric client_id zero", contentTypes: []string{json}, body: `{"client_id":0}`,
			want: url.Values{"client_id": {"0"}}},
		{name: "JSON numeric client_id 19 digits", contentTypes: []string{json}, body: `{"client_id":9223372036854775807}`,
			want: url.Values{"client_id": {"9223372036854775807"}}},
		{name: "JSON string client_id", contentTypes: []string{json}, body: `{"client_id":"123"}`,
			want: url.Values{"client_id": {"123"}}},
		{name: "JSON charset", contentTypes: []string{json + "; charset=utf-8"}, body: `{"a":"1"}`,
			want: url.Values{"a": {"1"}}},
		{name: "JSON whitespace", contentTypes: []string{json}, body: " \n{ \"a\" : \"1\" }\n ",
			want: url.Values{"a": {"1"}}},
		{name: "JSON escapes", contentTypes: []string{json}, body: `{"a":"\u00e9\t\"","b":"\ud83d\ude00"}`,
			want: url.Values{"a": {"é\t\""}, "b": {"😀"}}},
		{name: "JSON escaped newline", contentTypes: []string{json}, body: `{"a":"x\ny"}`, wantErr: true, wantStatus: 400},
		{name: "form NUL", contentTypes: []string{form}, body: "a=x%00y", wantErr: true, wantStatus: 400},
		{name: "JSON empty values dropped", contentTypes: []string{json}, body: `{"a":"1","b":""}`,
			want: url.Values{"a": {"1"}}},
		{name: "JSON 32 params", contentTypes: []string{json}, body: testParamsBody(32, true),
			want: func() url.Values { v, _ := url.ParseQuery(testParamsBody(32, false)); return v }()},
		{name: "JSON malformed", contentTypes: []string{json}, body: `{"a":"1"`, wantErr: true},
		{name: "JSON missing colon", contentTypes: []string{json}, body: `{"a" "1"}`, wantErr: true},
		{name: "JSON missing comma", contentTypes: []string{json}, body: `{"a":"1" "b":"2"}`, wantErr: true},
		{name: "JSON trailing comma", contentTypes: []string{json}, body: `{"a":"1",}`, wantErr: true},
		{name: "JSON single quotes", contentTypes: []string{json}, body: `{'a':'1'}`, wantErr: true},
		{name: "JSON top-level array", contentTypes: []string{json}, body: `[{"a":"1"}]`, wantErr: true},
		{name: "JSON top-level string", contentTypes: []string{json}, body: `"a=1"`, wantErr: true},
		{name: "JSON top-level null", contentTypes: []string{json}, body: `null`, wantErr: true},
		{name: "JSON form body", contentTypes: []string{json}, body: `a=1`, wantErr: true},
		{name: "JSON float client_id", contentTypes: []string{json}, body: `{"client_id":1.5}`, wantErr: true},
		{name: "JSON exponent client_id", contentTypes: []string{json}, body: `{"client_id":1e3}`, wantErr: true},
		{name: "JSON negative client_id", contentTypes: []string{json}, body: `{"client_id":-1}`, wantErr: true},
		{name: "JSON 20-digit client_id", contentTypes: []string{json}, body: `{"client_id":12345678901234567890}`, wantErr: true},
		{name: "JSON leading-zero client_id", contentTypes: []string{json}, body: `{"client_id":0123}`, wantErr: true},
		{name: "JSON number for another field", contentTypes: []string{json}, body: `{"client_id":"1","client_secret":123}`, wantErr: true},
		{name: "JSON object value", contentTypes: []string{json}, body: `{"a":{"b":"c"}}`, wantErr: true},
		{name: "JSON array value", contentTypes: []string{json}, body: `{"scope":["read","write"]}`, wantErr: true},
		{name: "JSON bool value", contentTypes: []string{json}, body: `{"a":true}`, wantErr: true},
		{name: "JSON null value", contentTypes: []string{json}, body: `{"a":null}`, wantErr: true},
		{name: "JSON object client_id", contentTypes: []string{json}, body: `{"client_id":{}}`, wantErr: true},
		{name: "JSON null client_id", contentTypes: []string{json}, body: `{"client_id":null}`, wantErr: true},
		{name: "JSON trailing object", contentTypes: []string{json}, body: `{"a":"1"}{}`, wantErr: true},
		{name: "JSON two empty objects", contentTypes: []string{json}, body: `{}{}`, wantErr: true},
		{name: "JSON trailing garbage", contentTypes: []string{json}, body: `{} x`, wantErr: true},
		{name: "JSON trailing garbage after params", contentTypes: []string{json}, body: `{"a":"1"} x`, wantErr: true},
		{name: "JSON duplicate key", contentTypes: []string{json}, body: `{"a":"1","a":"2"}`, wantErr: true},
		{name: "JSON duplicate key via escape", contentTypes: []string{json}, body: `{"a":"1","\u0061":"2"}`, wantErr: true},
		{name: "JSON duplicate key first empty", contentTypes: []string{json}, body: `{"a":"","a":"2"}`, wantErr: true},
		{name: "JSON invalid UTF-8 value", contentTypes: []string{json}, body: "{\"a\":\"\xff\"}", wantErr: true},
		{name: "JSON invalid UTF-8 key", contentTypes: []string{json}, body: "{\"\xc3\":\"1\"}", wantErr: true},
		{name: "JSON empty object", contentTypes: []string{json}, body: `{}`, wantErr: true},
		{name: "JSON only empty values", contentTypes: []string{json}, body: `{"a":""}`, wantErr: true},
		{name: "JSON 33 params", contentTypes: []string{json}, body: testParamsBody(33, true), wantErr: true},
		{name: "JSON when not allowed", contentTypes: []string{json}, body: `{"a":"1"}`, noJSON: true, wantErr: true},

		// Content-Type.
		{name: "missing Content-Type", body: "a=1", wantErr: true},
		{name: "empty Content-Type", contentTypes: []string{""}, body: "a=1", wantErr: true},
		{name: "repeated Content-Type", contentTypes: []string{form, form}, body: "a=1", wantErr: true},
		{name: "malformed Content-Type", contentTypes: []string{form + "; charset"}, body: "a=1", wantErr: true},
		{name: "text/plain", contentTypes: []string{"text/plain"}, body: "a=1", wantErr: true},
		{name: "multipart/form-data", contentTypes: []string{"multipart/form-data; boundary=x"},
			body: "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n", wantErr: true},
		{name: "form charset latin1", contentTypes: []string{form + "; charset=latin1"}, body: "a=1", wantErr: true},
		{name: "form charset ISO-8859-1", contentTypes: []string{form + "; charset=ISO-8859-1"}, body: "a=1", wantErr: true},
		{name: "JSON charset UTF-16", contentTypes: []string{json + "; charset=utf-16"}, body: `{"a":"1"}`, wantErr: true},
		{name: "JSON suffix type", contentTypes: []string{"application/vnd.api+json"}, body: `{"a":"1"}`, wantErr: true},

		// Size.
		{name: "empty body", contentTypes: []string{form}, body: "", wantErr: true},
		{name: "whitespace body", contentTypes: []string{form}, body: " \r\n\t", wantErr: true},
		{name: "empty JSON body", contentTypes: []string{json}, body: "", wantErr: true},
		{name: "body over the cap", contentTypes: []string{form}, body: "a=" + strings.Repeat("x", 99), maxBytes: 100,
			wantErr: true, wantStatus: http.StatusRequestEntityTooLarge},
		{name: "JSON body over the cap", contentTypes: []string{json}, body: `{"a":"` + strings.Repeat("x", 200) + `"}`, maxBytes: 100,
			wantErr: true, wantStatus: http.StatusRequestEntityTooLarge},
		{name: "huge body", contentTypes: []string{form}, body: strings.Repeat("a=1&", 1<<18),
			wantErr: true, wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth/token", strings.NewReader(tt.body))
			for _, ct := range tt.contentTypes {
				r.Header.Add("Content-Type", ct)
			}
			maxBytes := tt.maxBytes
			if maxBytes == 0 {
				maxBytes = decodeTestMaxBytes
			}
			got, oerr := readBody(r, maxBytes, !tt.noJSON)
			what := fmt.Sprintf("readBody(Content-Type %q, %.60q)", tt.contentTypes, tt.body)
			if tt.wantErr {
				status := tt.wantStatus
				if status == 0 {
					status = http.StatusBadRequest
				}
				testCheckOAuthError(t, what, oerr, "invalid_request", status)
				if got != nil {
					t.Errorf("%s = %v with error, want nil", what, got)
				}
				return
			}
			if oerr != nil {
				t.Fatalf("%s error = %v, want nil", what, oerr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %v, want %v", what, got, tt.want)
			}
		})
	}
}

// The error descriptions name what is wrong, for the client's developer.
func TestReadBodyDescriptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		contentType string
		body        string
		noJSON      bool
		want        string
	}{
		{contentType: "", body: "a=1", want: "The Content-Type header is missing."},
		{contentType: "text/plain", body: "a=1", want: "The Content-Type must be application/x-www-form-urlencoded or application/json."},
		{contentType: "application/json", body: "{}", noJSON: true, want: "The Content-Type must be application/x-www-form-urlencoded."},
		{contentType: formType + "; charset=latin1", body: "a=1", want: "The request body must be encoded in UTF-8."},
		{contentType: formType, body: "a=1&a=2", want: "The parameter 'a' is repeated."},
		{contentType: formType, body: "a=%FF", want: "The parameter 'a' is not valid UTF-8."},
		{contentType: jsonType, body: `{"a":"1","a":"2"}`, want: "The parameter 'a' is repeated."},
		{contentType: jsonType, body: `{"client_id":1.5}`, want: "The parameter 'client_id' must be a string."},
		{contentType: jsonType, body: `{"client_id":true}`, want: "The parameter 'client_id' must be a string or an integer."},
		{contentType: jsonType, body: `{"scope":[]}`, want: "The parameter 'scope' must be a string."},
		{contentType: jsonType, body: `{} x`, want: "The JSON body has data after the object."},
		{contentType: jsonType, body: `[]`, want: "The JSON body must be an object."},
		{contentType: formType, body: testParamsBody(33, false), want: "The request has more than 32 parameters."},
	}
	for _, tt := range tests {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth/token", strings.NewReader(tt.body))
		if tt.contentType != "" {
			r.Header.Set("Content-Type", tt.contentType)
		}
		_, oerr := readBody(r, decodeTestMaxBytes, !tt.noJSON)
		if oerr == nil {
			t.Errorf("readBody(%q, %.40q) error = nil, want %q", tt.contentType, tt.body, tt.want)
			continue
		}
		if oerr.description != tt.want {
			t.Errorf("readBody(%q, %.40q) description = %q, want %q", tt.contentType, tt.body, oerr.description, tt.want)
		}
	}
}

func testBasicHeader(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestParseBasic(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name       string
		header     string
		wantID     string
		wantSecret string
		wantOK     bool
	}{
		{name: "good", header: testBasicHeader("123", "s3cret"), wantID: "123", wantSecret: "s3cret", wantOK: true},
		{name: "lower-case scheme", header: "basic " + b64("123:s3cret"), wantID: "123", wantSecret: "s3cret", wantOK: true},
		{name: "upper-case scheme", header: "BASIC " + b64("123:s3cret"), wantID: "123", wantSecret: "s3cret", wantOK: true},
		{name: "percent-encoded plus", header: testBasicHeader("123", "a%2Bb"), wantID: "123", wantSecret: "a+b", wantOK: true},
		{name: "percent-encoded colon and percent", header: testBasicHeader("a%3Ab", "x%3Ay%25z"), wantID: "a:b", wantSecret: "x:y%z", wantOK: true},
		{name: "plus is space", header: testBasicHeader("my+client", "a+b"), wantID: "my client", wantSecret: "a b", wantOK: true},
		{name: "raw colon in secret", header: testBasicHeader("123", "a:b:c"), wantID: "123", wantSecret: "a:b:c", wantOK: true},
		{name: "empty secret", header: testBasicHeader("123", ""), wantID: "123", wantSecret: "", wantOK: true},
		{name: "UTF-8", header: testBasicHeader("%C3%A9", "é"), wantID: "é", wantSecret: "é", wantOK: true},
		{name: "generated secret", header: testBasicHeader("42", "Zm9vYmFyLWJhei1xdXV4XzAxMjM0NTY3ODlhYmNkZWY"), wantID: "42",
			wantSecret: "Zm9vYmFyLWJhei1xdXV4XzAxMjM0NTY3ODlhYmNkZWY", wantOK: true},
		{name: "missing colon", header: "Basic " + b64("123s3cret")},
		{name: "empty credentials", header: "Basic " + b64("")},
		{name: "colon only", header: "Basic " + b64(":"), wantOK: true},
		{name: "empty id (a user name is optional with API keys)", header: testBasicHeader("", "s3cret"), wantSecret: "s3cret", wantOK: true},
		{name: "lone percent in id", header: testBasicHeader("%", "s3cret")},
		{name: "bad base64", header: "Basic !!!!"},
		{name: "unpadded base64", header: "Basic " + strings.TrimRight(b64("123:s3cret"), "=")},
		{name: "URL base64 alphabet", header: "Basic " + strings.ReplaceAll(b64("12:??>"), "+", "-")}, // "MTI6Pz8-"
		{name: "bad percent-escape in id", header: testBasicHeader("a%zz", "s")},
		{name: "bad percent-escape in secret", header: testBasicHeader("a", "s%2")},
		{name: "invalid UTF-8 id", header: testBasicHeader("%FF", "s")},
		{name: "invalid UTF-8 secret", header: testBasicHeader("a", "%FF")},
		{name: "raw invalid UTF-8 secret", header: testBasicHeader("a", "\xff")},
		{name: "bearer scheme", header: "Bearer " + b64("123:s3cret")},
		{name: "digest scheme", header: "Digest username=\"a\""},
		{name: "scheme only", header: "Basic"},
		{name: "scheme and space", header: "Basic "},
		{name: "two spaces", header: "Basic  " + b64("123:s3cret")},
		{name: "tab separator", header: "Basic\t" + b64("123:s3cret")},
		{name: "no separator", header: "Basic" + b64("123:s3cret")},
		{name: "trailing space", header: testBasicHeader("123", "s3cret") + " "},
		{name: "empty", header: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, secret, ok := parseBasic(tt.header)
			if ok != tt.wantOK || id != tt.wantID || secret != tt.wantSecret {
				t.Errorf("parseBasic(%q) = %q, %q, %t; want %q, %q, %t", tt.header, id, secret, ok, tt.wantID, tt.wantSecret, tt.wantOK)
			}
		})
	}
}

func TestReadClientCredentials(t *testing.T) {
	t.Parallel()
	sec := strings.Repeat("k", 43)
	key, err := apikey.Format(77, sec)
	if err != nil {
		t.Fatal(err)
	}
	badKey := key[:len(key)-1] + "x"
	tests := []struct {
		name       string
		headers    []string // Authorization header values
		form       url.Values
		want       oauth.Credentials
		wantCode   string
		wantStatus int
	}{
		{name: "Basic only", headers: []string{testBasicHeader("123", "s")},
			form: url.Values{"grant_type": {"client_credentials"}}, want: oauth.Credentials{ClientID: 123, Secret: "s", Method: oauth.MethodBasic}},
		{name: "post only", form: url.Values{"client_id": {"123"}, "client_secret": {"s"}},
			want: oauth.Credentials{ClientID: 123, Secret: "s", Method: oauth.MethodPost}},
		{name: "post id without secret", form: url.Values{"client_id": {"123"}},
			want: oauth.Credentials{ClientID: 123, Method: oauth.MethodPost}},
		{name: "Basic and same body client_id", headers: []string{testBasicHeader("123", "s")}, form: url.Values{"client_id": {"123"}},
			want: oauth.Credentials{ClientID: 123, Secret: "s", Method: oauth.MethodBasic}},
		{name: "Basic with API key, any user name", headers: []string{testBasicHeader("whoever", key)},
			want: oauth.Credentials{ClientID: 77, Secret: sec, Method: oauth.MethodAPIKey}},
		{name: "Basic with API key, empty user name", headers: []string{testBasicHeader("", key)},
			want: oauth.Credentials{ClientID: 77, Secret: sec, Method: oauth.MethodAPIKey}},
		{name: "API key as client_secret", form: url.Values{"client_secret": {key}},
			want: oauth.Credentials{ClientID: 77, Secret: sec, Method: oauth.MethodAPIKey}},
		{name: "API key as client_secret with its client_id", form: url.Values{"client_id": {"77"}, "client_secret": {key}},
			want: oauth.Credentials{ClientID: 77, Secret: sec, Method: oauth.MethodAPIKey}},
		{name: "API key with another client_id", form: url.Values{"client_id": {"78"}, "client_secret": {key}},
			wantCode: "invalid_request", wantStatus: http.StatusBadRequest},
		{name: "API key with a typo", headers: []string{testBasicHeader("x", badKey)}, wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "API key with a typo in the body", form: url.Values{"client_secret": {badKey}}, wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "non-numeric client id", headers: []string{testBasicHeader("a%3Ab", "s")}, wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "Basic and body client_secret", headers: []string{testBasicHeader("123", "s")}, form: url.Values{"client_secret": {"s"}},
			wantCode: "invalid_request", wantStatus: http.StatusBadRequest},
		{name: "Basic and body client_id and client_secret", headers: []string{testBasicHeader("123", "s")},
			form: url.Values{"client_id": {"123"}, "client_secret": {"s"}}, wantCode: "invalid_request", wantStatus: http.StatusBadRequest},
		{name: "Basic and different body client_id", headers: []string{testBasicHeader("123", "s")}, form: url.Values{"client_id": {"456"}},
			wantCode: "invalid_request", wantStatus: http.StatusBadRequest},
		{name: "repeated Authorization", headers: []string{testBasicHeader("123", "s"), testBasicHeader("123", "s")},
			wantCode: "invalid_request", wantStatus: http.StatusBadRequest},
		{name: "repeated Authorization with body credentials", headers: []string{testBasicHeader("123", "s"), "Bearer x"},
			form: url.Values{"client_id": {"123"}, "client_secret": {"s"}}, wantCode: "invalid_request", wantStatus: http.StatusBadRequest},
		{name: "Bearer header", headers: []string{"Bearer tg_at_abc.def"},
			wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "Bearer header with body credentials", headers: []string{"Bearer tg_at_abc.def"},
			form: url.Values{"client_id": {"123"}, "client_secret": {"s"}}, wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "malformed Basic", headers: []string{"Basic !!!"}, wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "empty Authorization", headers: []string{""}, form: url.Values{"client_id": {"123"}},
			wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "nothing", form: url.Values{"grant_type": {"client_credentials"}}, wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "nothing nil form", wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
		{name: "body secret without id", form: url.Values{"client_secret": {"s"}}, wantCode: "invalid_client", wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth/token", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, oerr := readClientCredentials(r, tt.form)
			what := fmt.Sprintf("readClientCredentials(Authorization %q, %v)", tt.headers, tt.form)
			if tt.wantCode != "" {
				testCheckOAuthError(t, what, oerr, tt.wantCode, tt.wantStatus)
				if got != (oauth.Credentials{}) {
					t.Errorf("%s = %+v with error, want zero credentials", what, got)
				}
				return
			}
			if oerr != nil {
				t.Fatalf("%s error = %v, want nil", what, oerr)
			}
			if got != tt.want {
				t.Errorf("%s = %+v, want %+v", what, got, tt.want)
			}
		})
	}
}

func TestQuoteParam(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string
	}{
		{name: "client_id", want: "'client_id'"},
		{name: "", want: "''"},
		{name: `a'b"c\d`, want: "'a?b?c?d'"},
		{name: "a\x00b\nc\rd\te\x7f", want: "'a?b?c?d?e?'"},
		{name: "\xff", want: "'?'"},
		{name: strings.Repeat("x", 40), want: "'" + strings.Repeat("x", 40) + "'"},
		{name: strings.Repeat("x", 41), want: "'" + strings.Repeat("x", 40) + "...'"},
	}
	for _, tt := range tests {
		if got := quoteParam(tt.name); got != tt.want {
			t.Errorf("quoteParam(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// quoteParam's output goes into error_description: whatever the name, it
// must not carry quotes, backslashes or control characters, and must be
// short.
func TestQuoteParamNeverEchoesControlOrQuotes(t *testing.T) {
	t.Parallel()
	names := []string{
		"a\"b", "a\\b", "\x1b[31mred", "line\nbreak", "\u2028", "\u202etxt.exe",
		strings.Repeat("é", 100), strings.Repeat("\"", 100), "\xed\xa0\x80",
	}
	for c := 0; c < 256; c++ {
		names = append(names, "a"+string(rune(c))+"b")
		if c >= 0x80 {
			names = append(names, "a"+string([]byte{byte(c)})+"b") // invalid UTF-8
		}
	}
	for _, name := range names {
		checkQuoteParam(t, name)
	}
}

func checkQuoteParam(t *testing.T, name string) {
	t.Helper()
	got := quoteParam(name)
	if !utf8.ValidString(got) {
		t.Errorf("quoteParam(%q) = %q, not valid UTF-8", name, got)
	}
	inner, ok := strings.CutPrefix(got, "'")
	if ok {
		inner, ok = strings.CutSuffix(inner, "'")
	}
	if !ok {
		t.Errorf("quoteParam(%q) = %q, want it wrapped in single quotes", name, got)
	}
	if n := utf8.RuneCountInString(inner); n > 43 {
		t.Errorf("quoteParam(%q) = %q: %d characters inside the quotes, want at most 40 and an ellipsis", name, got, n)
	}
	for _, r := range inner {
		if r == '\'' || r == '"' || r == '\\' || r < 0x20 || r > 0x7e || unicode.IsControl(r) {
			t.Errorf("quoteParam(%q) = %q, echoes %U", name, got, r)
			break
		}
	}
}

// TestReadClientAssertion: client_assertion_type and client_assertion are
// a method of their own, never beside another; the assertion must be a
// JWS naming a client, and a client_id beside it must be that client.
func TestReadClientAssertion(t *testing.T) {
	t.Parallel()
	b64 := base64.RawURLEncoding.EncodeToString
	jws := func(header, claims string) string {
		return b64([]byte(header)) + "." + b64([]byte(claims)) + "." + b64([]byte("sig"))
	}
	good := jws(`{"alg":"ES256","kid":"k"}`, `{"iss":"123","sub":"123","aud":"x","exp":1}`)
	const typ = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	ok, oerr := readClientCredentials(httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth/token", nil),
		url.Values{"client_assertion_type": {typ}, "client_assertion": {good}, "client_id": {"123"}})
	if oerr != nil || ok.ClientID != 123 || ok.Method != oauth.MethodPrivateKeyJWT || ok.Assertion == nil || ok.Assertion.KID() != "k" || ok.Secret != "" {
		t.Fatalf("readClientCredentials = %+v, %v; want client 123 by private_key_jwt", ok, oerr)
	}
	tests := []struct {
		name       string
		headers    []string
		form       url.Values
		wantCode   string
		wantStatus int
	}{
		{"with Basic", []string{testBasicHeader("123", "s")}, url.Values{"client_assertion_type": {typ}, "client_assertion": {good}}, "invalid_request", 400},
		{"with client_secret", nil, url.Values{"client_assertion_type": {typ}, "client_assertion": {good}, "client_id": {"123"}, "client_secret": {"s"}}, "invalid_request", 400},
		{"type without assertion", nil, url.Values{"client_assertion_type": {typ}}, "invalid_request", 400},
		{"assertion without type", nil, url.Values{"client_assertion": {good}}, "invalid_request", 400},
		{"another client_id", nil, url.Values{"client_assertion_type": {typ}, "client_assertion": {good}, "client_id": {"124"}}, "invalid_request", 400},
		{"another type", nil, url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, "client_assertion": {good}}, "invalid_client", 401},
		{"alg none", nil, url.Values{"client_assertion_type": {typ}, "client_assertion": {jws(`{"alg":"none"}`, `{"iss":"123","sub":"123"}`)}}, "invalid_client", 401},
		{"HS256", nil, url.Values{"client_assertion_type": {typ}, "client_assertion": {jws(`{"alg":"HS256"}`, `{"iss":"123","sub":"123"}`)}}, "invalid_client", 401},
		{"iss is not sub", nil, url.Values{"client_assertion_type": {typ}, "client_assertion": {jws(`{"alg":"ES256"}`, `{"iss":"124","sub":"123"}`)}}, "invalid_client", 401},
		{"sub not a client id", nil, url.Values{"client_assertion_type": {typ}, "client_assertion": {jws(`{"alg":"ES256"}`, `{"iss":"x","sub":"x"}`)}}, "invalid_client", 401},
		{"not a JWS", nil, url.Values{"client_assertion_type": {typ}, "client_assertion": {"abc"}}, "invalid_client", 401},
		{"oversized", nil, url.Values{"client_assertion_type": {typ}, "client_assertion": {jws(`{"alg":"ES256"}`, `{"iss":"123","sub":"123","p":"`+strings.Repeat("x", 9000)+`"}`)}}, "invalid_client", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth/token", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, oerr := readClientCredentials(r, tt.form)
			testCheckOAuthError(t, tt.name, oerr, tt.wantCode, tt.wantStatus)
			if got != (oauth.Credentials{}) {
				t.Errorf("%s: credentials %+v with an error", tt.name, got)
			}
		})
	}
}

// TestReadFederatedAssertion: a client assertion that does not name a
// client, sent with a client_id, is a token of an external issuer for that
// client; without a usable client_id, or not a JWS of an allowed algorithm
// with an iss, it is invalid_client.
func TestReadFederatedAssertion(t *testing.T) {
	t.Parallel()
	b64 := base64.RawURLEncoding.EncodeToString
	jws := func(header, claims string) string {
		return b64([]byte(header)) + "." + b64([]byte(claims)) + "." + b64([]byte("sig"))
	}
	const typ = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	gh := jws(`{"alg":"RS256","kid":"k"}`, `{"iss":"https://token.actions.githubusercontent.com","sub":"repo:o/r:ref:refs/heads/main","aud":"x","exp":1}`)
	got, oerr := readClientCredentials(httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth/token", nil),
		url.Values{"client_assertion_type": {typ}, "client_assertion": {gh}, "client_id": {"42"}})
	if oerr != nil || got.ClientID != 42 || got.Method != oauth.MethodFederated || got.External == nil ||
		got.External.Issuer != "https://token.actions.githubusercontent.com" || got.Assertion != nil {
		t.Fatalf("readClientCredentials = %+v, %v; want client 42 by a federated assertion", got, oerr)
	}
	for _, tc := range []struct{ name, assertion, clientID string }{
		{"no client_id", gh, ""},
		{"client_id not a number", gh, "abc"},
		{"client_id with a leading zero", gh, "042"},
		{"no iss", jws(`{"alg":"RS256"}`, `{"sub":"s"}`), "42"},
		{"alg none", jws(`{"alg":"none"}`, `{"iss":"https://i.example","sub":"s"}`), "42"},
		{"HS256", jws(`{"alg":"HS256"}`, `{"iss":"https://i.example","sub":"s"}`), "42"},
		{"oversized", jws(`{"alg":"RS256"}`, `{"iss":"https://i.example","p":"`+strings.Repeat("x", 17<<10)+`"}`), "42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			form := url.Values{"client_assertion_type": {typ}, "client_assertion": {tc.assertion}}
			if tc.clientID != "" {
				form.Set("client_id", tc.clientID)
			}
			got, oerr := readClientCredentials(httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/oauth/token", nil), form)
			testCheckOAuthError(t, tc.name, oerr, "invalid_client", 401)
			if got.External != nil || got.ClientID != 0 {
				t.Errorf("%s: credentials %+v with an error", tc.name, got)
			}
		})
	}
}

// A token exchange of an API key is authenticated by the key alone: an
// assertion beside it is a second method.
func TestTokenCredentialsRefuseAssertionBesideAPIKey(t *testing.T) {
	t.Parallel()
	key, err := apikey.Format(42, strings.Repeat("A", 43))
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []string{"client_assertion", "client_assertion_type"} {
		form := url.Values{"grant_type": {tokenexchange.GrantType}, "subject_token_type": {tokenexchange.TypeAPIKey},
			"subject_token": {key}, extra: {"x"}}
		_, oerr := tokenCredentials(httptest.NewRequestWithContext(t.Context(), http.MethodPost, PathToken, nil), form)
		testCheckOAuthError(t, extra, oerr, "invalid_request", http.StatusBadRequest)
	}
}
