package guard

import (
	"net/http"
	"net/url"
	"testing"
)

// TestForwardingDPoP: with a DPoP proof the guard sends the proof and the
// request's method and URL (its own by default: httptest's requests are
// http://example.com/…; RequestURL's when given), and without one it sends
// none of them; a request with a proof never uses the cache.
func TestForwardingDPoP(t *testing.T) {
	h := newHarness(t, allow)
	var seen served
	handler := h.guard.Protect(protected(&seen), Scopes("events"), NoRateLimit())
	h.serve(t, handler, "Authorization", "DPoP tok", "DPoP", "proof-1")
	got := h.fake.last(t)
	want := map[string]string{"Authorization": "DPoP tok", "DPoP": "proof-1", "X-Forwarded-Method": "POST",
		"X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com", "X-Forwarded-Uri": "/v1/events"}
	for name, w := range want {
		if g := got.Get(name); g != w {
			t.Errorf("check endpoint got %s = %q, want %q", name, g, w)
		}
	}
	h.serve(t, handler, "Authorization", "DPoP tok", "DPoP", "proof-1")
	if n := h.fake.count(); n != 2 {
		t.Errorf("the same request with a proof twice: %d checks, want 2 (never from the cache)", n)
	}
	h.serve(t, handler, "Authorization", "Bearer tok")
	for _, name := range []string{"DPoP", "X-Forwarded-Method", "X-Forwarded-Uri"} {
		if g := h.fake.last(t).Get(name); g != "" {
			t.Errorf("without a proof the check endpoint got %s = %q, want none", name, g)
		}
	}

	public := newHarness(t, allow, func(o *Options) {
		o.RequestURL = func(*http.Request) *url.URL {
			return &url.URL{Scheme: "https", Host: "api.example.com", Path: "/public/v1/events", RawQuery: "page=2"}
		}
	})
	public.serve(t, public.guard.Protect(protected(&seen)), "Authorization", "DPoP tok", "DPoP", "proof-2")
	got = public.fake.last(t)
	for name, w := range map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com", "X-Forwarded-Uri": "/public/v1/events?page=2"} {
		if g := got.Get(name); g != w {
			t.Errorf("with RequestURL, check endpoint got %s = %q, want %q", name, g, w)
		}
	}
}
