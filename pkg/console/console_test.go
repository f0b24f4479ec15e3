package console

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/reqctx"
)

func TestNewParsesEveryPage(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"signin", "list", "form", "once", "delete", "token", "users", "user", "user_delete", "audit", "error"} {
		if c.pages[name] == nil {
			t.Errorf("page %q is missing", name)
		}
	}
	for _, a := range []string{"console.css", "console.js", "favicon.svg"} {
		if f, ok := c.assets.files[a]; !ok || f.contentType == "" || len(f.version) != 12 {
			t.Errorf("asset %s = %+v", a, f)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{365 * 24 * time.Hour, "1 year"}, {730 * 24 * time.Hour, "2 years"}, {24 * time.Hour, "24 hours"},
		{90 * 24 * time.Hour, "90 days"}, {7 * 24 * time.Hour, "7 days"}, {time.Hour, "1 hour"}, {90 * time.Minute, "90 minutes"},
		{45 * time.Second, "45 seconds"},
	} {
		if got := duration(tc.d); got != tc.want {
			t.Errorf("duration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/console/keys": true, "/console/clients/12?ok=saved": true,
		"": false, "/console": false, "/api/v1/keys": false, "//evil.example/console/": false, "https://evil.example/": false,
		"/console/../api": false, "/console/static/console.js": false, "/console/\\evil": false, "/console/x\r\nSet-Cookie: a": false,
	} {
		if got := localPath(p); got != want {
			t.Errorf("localPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestParseDay(t *testing.T) {
	if got, msg := parseDay("2030-12-31"); got != "2030-12-31T00:00:00Z" || msg != "" {
		t.Errorf("parseDay = %q, %q", got, msg)
	}
	if got, msg := parseDay(" "); got != "" || msg != "" {
		t.Errorf("empty: %q, %q", got, msg)
	}
	if _, msg := parseDay("31/12/2030"); msg == "" {
		t.Error("a malformed date was accepted")
	}
}

func TestSecure(t *testing.T) {
	c := &Console{}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		remote, proto string
		want          bool
	}{
		{"10.1.2.3:5555", "https", true},
		{"10.1.2.3:5555", "http", false},
		{"192.0.2.1:5555", "https", false},
		{"[::ffff:10.1.2.3]:5555", "HTTPS", true},
	} {
		r := httptest.NewRequest("GET", "/console/signin", nil)
		r.RemoteAddr = tc.remote
		r.Header.Set("X-Forwarded-Proto", tc.proto)
		var got bool
		reqctx.Middleware(trusted, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			got = c.secure(r)
		})).ServeHTTP(httptest.NewRecorder(), r)
		if got != tc.want {
			t.Errorf("secure(%s, %s) = %v, want %v", tc.remote, tc.proto, got, tc.want)
		}
	}
	c.opts.SecureCookies = true
	if !c.secure(httptest.NewRequest("GET", "/console/signin", nil)) {
		t.Error("SecureCookies did not make cookies Secure")
	}
}

func TestFormErrors(t *testing.T) {
	e := formErrors{}
	e.add("name", "Name must not be empty.")
	e.add("", "Nothing was saved.")
	e.mark("password")
	if !e.Has("password") || e.For("password") != "" || e.For("name") != "Name must not be empty." {
		t.Errorf("errors = %v", e)
	}
	s := e.Summary()
	if len(s) != 2 || s[0].Field != "" || s[1].Field != "name" {
		t.Errorf("summary = %+v, want the form's message first, then the field's", s)
	}
	if got := sentence("Name", "must not be empty"); got != "Name must not be empty." {
		t.Errorf("sentence = %q", got)
	}
	if !strings.HasSuffix(sentence("Name", "ends."), "ends.") {
		t.Error("sentence doubled the full stop")
	}
}
