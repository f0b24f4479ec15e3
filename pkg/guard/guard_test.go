package guard

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The real check endpoint needs a wired Tollgate, which lives in cmd/; the
// tests against it are cmd/tollgate/guard_test.go. Here a hand-written fake
// answers as told and records what it was asked.
type fakeCheck struct {
	mu     sync.Mutex
	calls  []http.Header
	answer func(w http.ResponseWriter, r *http.Request)
}

func (f *fakeCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Header.Clone())
	answer := f.answer
	f.mu.Unlock()
	answer(w, r)
}

func (f *fakeCheck) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *fakeCheck) last(t *testing.T) http.Header {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		t.Fatal("the check endpoint was not called")
	}
	return f.calls[len(f.calls)-1]
}

// allow answers like Tollgate's 200.
func allow(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("X-Tollgate-Client-Id", "42")
	h.Set("X-Tollgate-Account-Id", "7")
	h.Set("X-Tollgate-Subject", "9")
	h.Set("X-Tollgate-Scopes", "events reports")
	h.Set("RateLimit-Policy", `"default";q=3;w=1`)
	h.Set("RateLimit", `"default";r=2;t=1`)
	w.WriteHeader(http.StatusOK)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	fake  *fakeCheck
	srv   *httptest.Server
	clock *clock
	logs  *bytes.Buffer
	guard *Guard
}

func newHarness(t *testing.T, answer func(http.ResponseWriter, *http.Request), opts ...func(*Options)) *harness {
	t.Helper()
	h := &harness{fake: &fakeCheck{answer: answer}, clock: &clock{t: time.Unix(1_700_000_000, 0)}, logs: &bytes.Buffer{}}
	h.srv = httptest.NewServer(h.fake)
	t.Cleanup(h.srv.Close)
	o := Options{CheckURL: h.srv.URL + "/auth/check", Now: h.clock.now,
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range opts {
		f(&o)
	}
	h.guard = New(o)
	return h
}

// served is what reached the protected handler and what the caller got.
type served struct {
	called   bool
	identity Identity
	hasID    bool
	res      *http.Response
	body     []byte
}

func (h *harness) serve(t *testing.T, handler http.Handler, header ...string) served {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/events", strings.NewReader("payload"))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return served{res: res, body: body}
}

// protected is a handler that reports what it saw.
func protected(seen *served) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.called = true
		seen.identity, seen.hasID = IdentityFrom(r.Context())
		w.WriteHeader(http.StatusOK)
	})
}

func TestForwarding(t *testing.T) {
	tests := []struct {
		name    string
		opts    []RouteOption
		header  []string
		want    map[string][]string // header at the check endpoint; nil value: absent
		account func(*http.Request) string
	}{
		{
			name:   "bearer, scopes and class",
			opts:   []RouteOption{Scopes("events", "contacts"), Class("reports")},
			header: []string{"Authorization", "Bearer tg_at_abc"},
			want: map[string][]string{
				"Authorization":         {"Bearer tg_at_abc"},
				"X-Tollgate-Scope":      {"events contacts"},
				"X-Tollgate-Rate-Class": {"reports"},
				"X-Tollgate-Account":    nil,
				"X-Api-Key":             nil,
			},
		},
		{
			name:   "api key, no requirements",
			header: []string{"X-API-Key", "tgk_1_secret"},
			want: map[string][]string{
				"X-Api-Key":             {"tgk_1_secret"},
				"Authorization":         nil,
				"X-Tollgate-Scope":      nil,
				"X-Tollgate-Rate-Class": nil,
			},
		},
		{
			name:   "every credential header is passed, so Tollgate sees two and refuses",
			header: []string{"X-API-Key", "k1", "Authorization", "Bearer a", "Authorization", "Basic b"},
			want: map[string][]string{
				"X-Api-Key":     {"k1"},
				"Authorization": {"Bearer a", "Basic b"},
			},
		},
		{
			name: "the caller's own requirement headers are not passed",
			opts: []RouteOption{Scopes("events")},
			header: []string{"X-API-Key", "k", "X-Tollgate-Scope", "", "X-Tollgate-Rate-Class", "cheap",
				"X-Tollgate-Account", "1", "Cookie", "session=1", "X-Tollgate-Client-Id", "1"},
			want: map[string][]string{
				"X-Tollgate-Scope":      {"events"},
				"X-Tollgate-Rate-Class": nil,
				"X-Tollgate-Account":    nil,
				"Cookie":                nil,
				"X-Tollgate-Client-Id":  nil,
			},
		},
		{
			name:   "target account from the request",
			opts:   []RouteOption{AccountFrom(func(r *http.Request) string { return r.URL.Query().Get("account") })},
			header: []string{"X-API-Key", "k"},
			want:   map[string][]string{"X-Tollgate-Account": {"17"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, allow)
			var seen served
			handler := h.guard.Protect(protected(&seen), tt.opts...)
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/events?account=17", nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Add(tt.header[i], tt.header[i+1])
			}
			handler.ServeHTTP(httptest.NewRecorder(), req)
			got := h.fake.last(t)
			for name, want := range tt.want {
				if g := got.Values(name); !slices.Equal(g, want) {
					t.Errorf("%s at the check endpoint = %q, want %q", name, g, want)
				}
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	h := newHarness(t, allow)
	var seen served
	s := h.serve(t, h.guard.Require([]string{"events"}, "", protected(&seen)), "X-API-Key", "k")
	if !seen.called || s.res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, handler called %v; want 200 and called", s.res.StatusCode, seen.called)
	}
	want := Identity{ClientID: 42, AccountID: 7, Subject: "9", Scopes: []string{"events", "reports"}}
	if !seen.hasID || seen.identity.ClientID != want.ClientID || seen.identity.AccountID != want.AccountID ||
		seen.identity.Subject != want.Subject || !slices.Equal(seen.identity.Scopes, want.Scopes) {
		t.Errorf("identity = %+v (present %v), want %+v", seen.identity, seen.hasID, want)
	}
	for name, want := range map[string]string{"RateLimit-Policy": `"default";q=3;w=1`, "RateLimit": `"default";r=2;t=1`} {
		if got := s.res.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	// Identity headers are for the guard, not for the caller.
	if got := s.res.Header.Get("X-Tollgate-Client-Id"); got != "" {
		t.Errorf("X-Tollgate-Client-Id reached the caller: %q", got)
	}
	if _, ok := IdentityFrom(t.Context()); ok {
		t.Error("IdentityFrom a bare context answers ok")
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		header      map[string][]string
		body        string
		wantCode    string
		wantHeaders []string
		notHeaders  []string
	}{
		{
			name:   "401 with both challenges",
			status: 401,
			header: map[string][]string{"WWW-Authenticate": {`Bearer realm="tollgate"`, `Basic realm="tollgate", charset="UTF-8"`}},
			body:   `{"error":"invalid_token","error_description":"no valid credential"}`, wantCode: "invalid_token",
			wantHeaders: []string{"WWW-Authenticate"},
		},
		{
			name:   "403 insufficient scope",
			status: 403,
			header: map[string][]string{"WWW-Authenticate": {`Bearer realm="tollgate", error="insufficient_scope", scope="events"`}},
			body:   `{"error":"insufficient_scope"}`, wantCode: "insufficient_scope",
			wantHeaders: []string{"WWW-Authenticate"},
		},
		{
			name: "429 with Retry-After and RateLimit", status: 429,
			header: map[string][]string{"Retry-After": {"1"}, "RateLimit-Policy": {`"default";q=3;w=1`}, "RateLimit": {`"default";r=0;t=1`},
				"X-Tollgate-Client-Id": {"42"}},
			body: `{"error":"rate_limited"}`, wantCode: "rate_limited",
			wantHeaders: []string{"Retry-After", "RateLimit-Policy", "RateLimit"},
			notHeaders:  []string{"X-Tollgate-Client-Id"},
		},
		{
			name: "a body that is not JSON gets the default code", status: 403, body: "<html>forbidden</html>",
			wantCode: "forbidden",
		},
		{
			name: "400 unknown rate class", status: 400, body: `{"error":"invalid_request"}`, wantCode: "invalid_request",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, vs := range tt.header {
					for _, v := range vs {
						w.Header().Add(k, v)
					}
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			var seen served
			s := h.serve(t, h.guard.Require([]string{"events"}, "", protected(&seen)), "Authorization", "Bearer tg_at_secret")
			if seen.called {
				t.Error("the protected handler was called")
			}
			if s.res.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", s.res.StatusCode, tt.status)
			}
			for _, name := range tt.wantHeaders {
				if got, want := s.res.Header.Values(name), tt.header[name]; !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			for _, name := range tt.notHeaders {
				if got := s.res.Header.Get(name); got != "" {
					t.Errorf("%s = %q reached the caller", name, got)
				}
			}
			wantJSONError(t, s, tt.wantCode)
		})
	}
}

func wantJSONError(t *testing.T, s served, code string) {
	t.Helper()
	if ct := s.res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(s.body, &e); err != nil {
		t.Fatalf("body %q: %v", s.body, err)
	}
	if e.Error != code {
		t.Errorf("error = %q, want %q", e.Error, code)
	}
}

func TestFailClosed(t *testing.T) {
	blocked := make(chan struct{})
	t.Cleanup(func() { close(blocked) })
	tests := []struct {
		name   string
		answer func(http.ResponseWriter, *http.Request)
		opts   func(*Options)
	}{
		{name: "503 from Tollgate", answer: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
		}},
		{name: "500 from Tollgate", answer: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }},
		{name: "404: wrong check URL", answer: http.NotFound},
		{name: "a redirect is not followed", answer: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}},
		{name: "200 without identity", answer: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }},
		{name: "timeout", answer: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-blocked:
			case <-r.Context().Done():
			}
		}, opts: func(o *Options) { o.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond} }},
		{name: "unreachable", answer: allow, opts: func(o *Options) { o.CheckURL = "http://127.0.0.1:1/auth/check" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []func(*Options){}
			if tt.opts != nil {
				opts = append(opts, tt.opts)
			}
			h := newHarness(t, tt.answer, opts...)
			var seen served
			s := h.serve(t, h.guard.Protect(protected(&seen), NoRateLimit()), "X-API-Key", "tgk_1_verysecret")
			if seen.called {
				t.Error("the protected handler was called")
			}
			if s.res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503", s.res.StatusCode)
			}
			if got := s.res.Header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1", got)
			}
			wantJSONError(t, s, "temporarily_unavailable")
			if h.logs.Len() == 0 {
				t.Error("the failure was not logged")
			}
			if strings.Contains(h.logs.String(), "verysecret") {
				t.Errorf("the credential reached the logs: %s", h.logs)
			}
		})
	}
}

func TestCache(t *testing.T) {
	t.Run("hit and expiry", func(t *testing.T) {
		h := newHarness(t, allow, func(o *Options) { o.CacheTTL = 2 * time.Second })
		var seen served
		handler := h.guard.Protect(protected(&seen), Scopes("events"), NoRateLimit())
		for i := range 3 {
			seen = served{}
			if s := h.serve(t, handler, "X-API-Key", "k"); s.res.StatusCode != 200 || !seen.called || seen.identity.ClientID != 42 {
				t.Fatalf("request %d: status %d, called %v, identity %+v", i+1, s.res.StatusCode, seen.called, seen.identity)
			}
		}
		if got := h.fake.count(); got != 1 {
			t.Errorf("check calls for 3 requests within the TTL = %d, want 1", got)
		}
		h.clock.advance(2*time.Second - time.Nanosecond)
		h.serve(t, handler, "X-API-Key", "k")
		if got := h.fake.count(); got != 1 {
			t.Errorf("check calls just before the TTL = %d, want 1", got)
		}
		h.clock.advance(time.Nanosecond)
		h.serve(t, handler, "X-API-Key", "k")
		if got := h.fake.count(); got != 2 {
			t.Errorf("check calls after the TTL = %d, want 2", got)
		}
	})
	t.Run("revocation takes effect after the TTL", func(t *testing.T) {
		var mu sync.Mutex
		revoked := false
		h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if revoked {
				w.WriteHeader(401)
				return
			}
			allow(w, r)
		})
		var seen served
		handler := h.guard.Protect(protected(&seen), NoRateLimit())
		if s := h.serve(t, handler, "X-API-Key", "k"); s.res.StatusCode != 200 {
			t.Fatalf("before revocation: %d", s.res.StatusCode)
		}
		mu.Lock()
		revoked = true
		mu.Unlock()
		if s := h.serve(t, handler, "X-API-Key", "k"); s.res.StatusCode != 200 {
			t.Errorf("within the TTL (default %v): %d, want the cached 200", DefaultCacheTTL, s.res.StatusCode)
		}
		h.clock.advance(DefaultCacheTTL)
		for i := range 2 {
			if s := h.serve(t, handler, "X-API-Key", "k"); s.res.StatusCode != 401 {
				t.Errorf("after the TTL, request %d: %d, want 401", i+1, s.res.StatusCode)
			}
		}
		if got := h.fake.count(); got != 3 {
			t.Errorf("check calls = %d, want 3 (refusals are not cached)", got)
		}
	})
	t.Run("what the answer depends on is in the key", func(t *testing.T) {
		h := newHarness(t, allow)
		var seen served
		account := func(r *http.Request) string { return r.Header.Get("X-Test-Account") }
		a := h.guard.Protect(protected(&seen), Scopes("events"), AccountFrom(account), NoRateLimit())
		b := h.guard.Protect(protected(&seen), Scopes("events", "reports"), AccountFrom(account), NoRateLimit())
		requests := []struct {
			handler http.Handler
			header  []string
		}{
			{a, []string{"X-API-Key", "k1"}},
			{a, []string{"X-API-Key", "k2"}},
			{a, []string{"Authorization", "k1"}},
			{a, []string{"X-API-Key", "k1", "X-Test-Account", "5"}},
			{b, []string{"X-API-Key", "k1"}},
			{a, []string{"X-API-Key", "k1", "X-API-Key", "k2"}},
		}
		for i, r := range requests {
			h.serve(t, r.handler, r.header...)
			if got := h.fake.count(); got != i+1 {
				t.Fatalf("request %d (%v) was answered from the cache", i+1, r.header)
			}
		}
		for i, r := range requests {
			h.serve(t, r.handler, r.header...)
			if got := h.fake.count(); got != len(requests) {
				t.Fatalf("repeated request %d (%v) was not answered from the cache", i+1, r.header)
			}
		}
	})
	t.Run("rate-limited routes always ask", func(t *testing.T) {
		h := newHarness(t, allow)
		var seen served
		handler := h.guard.Require([]string{"events"}, "reports", protected(&seen))
		for range 3 {
			h.serve(t, handler, "X-API-Key", "k")
		}
		if got := h.fake.count(); got != 3 {
			t.Errorf("check calls = %d, want 3", got)
		}
	})
	t.Run("off", func(t *testing.T) {
		h := newHarness(t, allow, func(o *Options) { o.CacheTTL = -1 })
		var seen served
		handler := h.guard.Protect(protected(&seen), NoRateLimit())
		for range 2 {
			h.serve(t, handler, "X-API-Key", "k")
		}
		if got := h.fake.count(); got != 2 {
			t.Errorf("check calls = %d, want 2", got)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		h := newHarness(t, allow, func(o *Options) { o.MaxCacheEntries = 2 })
		var seen served
		handler := h.guard.Protect(protected(&seen), NoRateLimit())
		for _, k := range []string{"k1", "k2", "k3"} {
			h.serve(t, handler, "X-API-Key", k)
		}
		if got := h.guard.cache.len(); got != 2 {
			t.Errorf("cache entries = %d, want 2", got)
		}
		h.serve(t, handler, "X-API-Key", "k3")
		h.serve(t, handler, "X-API-Key", "k2")
		if got := h.fake.count(); got != 3 {
			t.Errorf("check calls = %d, want 3 (k2 and k3 cached)", got)
		}
		h.serve(t, handler, "X-API-Key", "k1") // the oldest made room
		if got := h.fake.count(); got != 4 {
			t.Errorf("check calls = %d, want 4 (k1 evicted)", got)
		}
	})
	t.Run("expired entries make room first", func(t *testing.T) {
		h := newHarness(t, allow, func(o *Options) { o.MaxCacheEntries = 3 })
		var seen served
		handler := h.guard.Protect(protected(&seen), NoRateLimit())
		h.serve(t, handler, "X-API-Key", "old")
		h.clock.advance(DefaultCacheTTL)
		h.serve(t, handler, "X-API-Key", "new")
		if got := h.guard.cache.len(); got != 1 {
			t.Errorf("cache entries = %d, want 1 (the expired one dropped)", got)
		}
	})
	t.Run("a handler cannot change the cached identity", func(t *testing.T) {
		h := newHarness(t, allow)
		handler := h.guard.Protect(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			id, _ := IdentityFrom(r.Context())
			id.Scopes[0] = "admin"
		}), NoRateLimit())
		h.serve(t, handler, "X-API-Key", "k")
		h.serve(t, handler, "X-API-Key", "k")
		var seen served
		h.guard.Protect(protected(&seen), NoRateLimit()).ServeHTTP(httptest.NewRecorder(), func() *http.Request {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
			r.Header.Set("X-API-Key", "k")
			return r
		}())
		if seen.identity.Scopes[0] != "events" {
			t.Errorf("cached scopes = %q, want events first", seen.identity.Scopes)
		}
	})
}

func TestCacheKeyUnambiguous(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	keys := map[[32]byte]string{}
	for name, k := range map[string][32]byte{
		"scope ab":         cacheKey(hdr("X-API-Key", "k"), "a b", "", ""),
		"scope a, class b": cacheKey(hdr("X-API-Key", "k"), "a", "b", ""),
		"class b":          cacheKey(hdr("X-API-Key", "k"), "", "b", ""),
		"account b":        cacheKey(hdr("X-API-Key", "k"), "", "", "b"),
		"key k":            cacheKey(hdr("X-API-Key", "k"), "", "", ""),
		"auth k":           cacheKey(hdr("Authorization", "k"), "", "", ""),
		"auth k, k":        cacheKey(hdr("Authorization", "k", "Authorization", "k"), "", "", ""),
		"key k, k":         cacheKey(hdr("X-API-Key", "k", "X-API-Key", "k"), "", "", ""),
		"auth k + key k":   cacheKey(hdr("Authorization", "k", "X-API-Key", "k"), "", "", ""),
	} {
		if other, ok := keys[k]; ok {
			t.Errorf("%s and %s share a cache key", name, other)
		}
		keys[k] = name
	}
}

func TestInvalidScopePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a scope with a space did not panic")
		}
	}()
	New(Options{CheckURL: "http://tollgate/auth/check"}).Protect(http.NotFoundHandler(), Scopes("a b"))
}
