package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzBodyTypes are the types the API decodes request bodies into.
var fuzzBodyTypes = []reflect.Type{
	reflect.TypeFor[clientInput](),
	reflect.TypeFor[userInput](),
	reflect.TypeFor[userUpdate](),
	reflect.TypeFor[passwordInput](),
	reflect.TypeFor[rotateInput](),
	reflect.TypeFor[tokenInput](),
	reflect.TypeFor[accountInput](),
	reflect.TypeFor[webhookInput](),
}

// FuzzDecode feeds arbitrary bodies and content types to the request body
// decoder of every input type: it never panics, refuses with a 4xx problem
// of the statuses it documents, and what it accepts is valid UTF-8 JSON that
// decodes the same way again.
func FuzzDecode(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{"application/json", `{"name":"x","scopes":["events"],"rate_limits":{"default":{"rate":1,"burst":2}}}`},
		{"application/json", `{"username":"alice","password":"correct horse battery staple","role":"admin","account_id":1}`},
		{"application/json", `{"overlap_seconds":0}`},
		{"application/json", `{"url":"https://hooks.example.com/x","events":["credential.created"],"include_subtree":false}`},
		{"application/json", `{"policies":{"keys_managed_by":null,"require_password_for_new_keys":true}}`},
		{"application/json", `{"policies":{"keys_managed_by":"admins"}}`},
		{"application/json", `{"policies":{"require_password_for_new_keys":"yes"}}`},
		{"application/json", `{"policies":{"leaked_key_action":"notify"}}`},
		{"application/json", `{"policies":{"leaked_key_action":null,"keys_managed_by":"anyone"}}`},
		{"application/json", `{"policies":{"leaked_key_action":7}}`},
		{"application/json; charset=utf-8", `{"name":"\u0000"}`},
		{"application/json", `{"name":"x"}{}`},
		{"application/json", `{"name":1}`},
		{"application/json", `{"unknown":1}`},
		{"application/json", "{\"name\":\"\xff\"}"},
		{"application/json", `[` + strings.Repeat("[", 1000)},
		{"application/json", ` {"name":"x"} `},
		{"application/json", `{"token_lifetime":1e400}`},
		{"application/json", `{"quota":{"limit":1000,"period":"day"},"allowed_cidrs":["10.0.0.0/8","2001:db8::1"]}`},
		{"application/json", `{"quota":null,"allowed_cidrs":[]}`},
		{"application/json", `{"quota":{"limit":9223372036854775808,"period":"month"}}`},
		{"application/json", `{"quota":{"limit":1.5,"period":"day","x":1}}`},
		{"application/json", `{"quota":{"limit":"1000","period":7}}`},
		{"application/json", `{"allowed_cidrs":["10.0.0.1/33","::/129","garbage",null]}`},
		{"application/json", `{"budget":{"rate_limits":{"default":{"rate":10,"burst":20}},"quota":{"limit":5,"period":"month"}}}`},
		{"application/json", `{"budget":null}`},
		{"application/json", `{"budget":{"rate_limits":{"default":{"rate":"10"}},"quota":[]}}`},
		{"application/json", `{"budget":{"quota":{"limit":1,"limit":2}}}`},
		{"text/plain", `{}`},
		{"", ``},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	const max = 4 << 10
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		for _, typ := range fuzzBodyTypes {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/x", bytes.NewReader(body))
			r.Header.Set("Content-Type", ct)
			v := reflect.New(typ)
			pr := decode(r, max, v.Interface())
			if pr != nil {
				switch pr.Status {
				case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
				default:
					t.Fatalf("decode(%q, %q) into %s: status %d", ct, body, typ, pr.Status)
				}
				if pr.Detail == "" {
					t.Fatalf("decode(%q, %q) into %s: a problem without detail", ct, body, typ)
				}
				continue
			}
			if len(body) > max || !utf8.Valid(body) {
				t.Fatalf("decode(%q, %q) into %s accepted an oversized or invalid body", ct, body, typ)
			}
			again, err := json.Marshal(v.Interface())
			if err != nil {
				t.Fatalf("re-encode %s decoded from %q: %v", typ, body, err)
			}
			w := reflect.New(typ)
			r = httptest.NewRequest(http.MethodPost, "/api/v1/x", bytes.NewReader(again))
			r.Header.Set("Content-Type", "application/json")
			if pr := decode(r, max, w.Interface()); pr != nil {
				t.Fatalf("decode(%q) of a re-encoded %s: %v", again, typ, pr)
			}
			if !reflect.DeepEqual(v.Interface(), w.Interface()) {
				t.Fatalf("%s from %q decodes differently once re-encoded as %q", typ, body, again)
			}
		}
	})
}

// FuzzQuery feeds arbitrary query strings to the API's query check and
// its pagination: a query that passes the check decodes, repeats nothing,
// and pagination answers a limit of 1 to 100 and a non-negative after, or a
// 400.
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{
		"limit=10&after=5", "limit=0", "limit=101", "limit=-1", "limit=1e9", "after=-1",
		"after=99999999999999999999", "limit=1&limit=2", "limit=%zz", "limit=%ff", "a=%00", "%ff=1",
		"status=active&account_id=1&subtree=true", ";", "&&", "=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if pr := checkQuery(raw); pr != nil {
			if pr.Status != http.StatusBadRequest {
				t.Fatalf("checkQuery(%q): status %d, want 400", raw, pr.Status)
			}
			return
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("checkQuery(%q) passed a query url.ParseQuery refuses: %v", raw, err)
		}
		for k, vs := range q {
			if len(vs) != 1 || !utf8.ValidString(k) || !utf8.ValidString(vs[0]) || hasControl(k) || hasControl(vs[0]) {
				t.Fatalf("checkQuery(%q) passed %q=%q", raw, k, vs)
			}
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/users", nil)
		r.URL.RawQuery = raw
		after, limit, pr := page(r)
		if pr != nil {
			if pr.Status != http.StatusBadRequest || len(pr.Errors) == 0 {
				t.Fatalf("page(%q): %+v, want a 400 naming the field", raw, pr)
			}
			return
		}
		if limit < 1 || limit > 100 || after < 0 {
			t.Fatalf("page(%q) = after %d, limit %d", raw, after, limit)
		}
	})
}

// FuzzIfMatch feeds arbitrary If-Match headers: a version is positive, and
// anything else is a 400.
func FuzzIfMatch(f *testing.F) {
	for _, seed := range []string{`"3"`, `W/"3"`, `*`, ``, `"0"`, `"-1"`, `"abc"`, `"99999999999999999999"`, `3`, `""`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodPatch, "/api/v1/users/1", nil)
		if header != "" {
			r.Header["If-Match"] = []string{header}
		}
		v, pr := ifMatch(r)
		switch {
		case pr != nil && pr.Status != http.StatusBadRequest:
			t.Fatalf("ifMatch(%q): status %d", header, pr.Status)
		case pr == nil && v < 0:
			t.Fatalf("ifMatch(%q) = %d", header, v)
		case pr == nil && v == 0 && header != "" && header != "*":
			t.Fatalf("ifMatch(%q) = no precondition, want a version or a 400", header)
		}
	})
}

// FuzzUsageQuery feeds arbitrary query strings to GET /usage's parameters:
// a 400 naming a field, or a query whose ids are positive, whose times are
// within years 1970–9999 and whose granularity is known.
func FuzzUsageQuery(f *testing.F) {
	for _, seed := range []string{
		"credential_id=1", "account_id=2&granularity=day", "credential_id=1&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
		"credential_id=0", "credential_id=-5", "credential_id=99999999999999999999", "from=yesterday", "granularity=week",
		"to=0000-01-01T00:00:00Z", "from=2026-01-01T00:00:00+25:00", "limit=1", "%ff=1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkQuery(raw) != nil {
			return
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/usage", nil)
		r.URL.RawQuery = raw
		q, pr := usageQuery(r)
		if pr != nil {
			if pr.Status != http.StatusBadRequest || len(pr.Errors) == 0 {
				t.Fatalf("usageQuery(%q): %+v, want a 400 naming the field", raw, pr)
			}
			return
		}
		if q.CredentialID < 0 || q.AccountID < 0 || (q.Granularity != "" && !q.Granularity.Valid()) {
			t.Fatalf("usageQuery(%q) = %+v", raw, q)
		}
		for _, tm := range []time.Time{q.From, q.To} {
			if !tm.IsZero() && (tm.Year() < 1970 || tm.Year() > 9999) {
				t.Fatalf("usageQuery(%q) passed the time %s", raw, tm)
			}
		}
	})
}
