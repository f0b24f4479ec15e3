package guard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// Middleware has the type gorilla/mux's Use takes (chi's Use takes the same
// func(http.Handler) http.Handler).
var _ mux.MiddlewareFunc = (&Guard{}).Middleware()

func TestMiddlewareInAUseChain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		answer     func(http.ResponseWriter, *http.Request)
		wantStatus int
		wantCalled bool
	}{
		{"allowed", allow, http.StatusOK, true},
		{"refused", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
		}, http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.answer)
			var seen served
			r := mux.NewRouter()
			r.Use(h.guard.Middleware(Scopes("events"), Class("reports"),
				AccountFrom(func(r *http.Request) string { return mux.Vars(r)["account"] })))
			r.Handle("/v1/accounts/{account}/events", protected(&seen))
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/v1/accounts/12/events", nil)
			req.Header.Set("X-API-Key", "tgk_x")
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || seen.called != tt.wantCalled {
				t.Fatalf("status = %d, handler called = %v; want %d, %v", rec.Code, seen.called, tt.wantStatus, tt.wantCalled)
			}
			got := h.fake.last(t)
			for name, want := range map[string]string{"X-Tollgate-Scope": "events", "X-Tollgate-Rate-Class": "reports", "X-Tollgate-Account": "12", "X-Api-Key": "tgk_x"} {
				if got.Get(name) != want {
					t.Errorf("check request %s = %q, want %q", name, got.Get(name), want)
				}
			}
			if tt.wantCalled && seen.identity.ClientID != 42 {
				t.Errorf("identity in the handler = %+v, want client 42", seen.identity)
			}
		})
	}
}

func TestWriteErrorHook(t *testing.T) {
	t.Parallel()
	refuse := func(status int, header, value, body string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			if header != "" {
				w.Header().Set(header, value)
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	tests := []struct {
		name       string
		answer     func(http.ResponseWriter, *http.Request)
		want       Error
		wantHeader string // set before the hook runs
	}{
		{"401", refuse(http.StatusUnauthorized, "WWW-Authenticate", `Bearer realm="tollgate"`, `{"error":"invalid_token"}`),
			Error{Status: 401, Code: "invalid_token", Description: "no valid credential"}, "WWW-Authenticate"},
		{"403", refuse(http.StatusForbidden, "", "", `{"error":"insufficient_scope"}`),
			Error{Status: 403, Code: "insufficient_scope", Description: "the credential may not make this request"}, ""},
		{"429", refuse(http.StatusTooManyRequests, "Retry-After", "1", `{"error":"rate_limited"}`),
			Error{Status: 429, Code: "rate_limited", Description: "over the rate limit"}, "Retry-After"},
		{"503", refuse(http.StatusServiceUnavailable, "Retry-After", "3", `{"error":"temporarily_unavailable"}`),
			Error{Status: 503, Code: "temporarily_unavailable", Description: "authorization is temporarily unavailable"}, "Retry-After"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got Error
			var gotPath, headerAtHook string
			h := newHarness(t, tt.answer, func(o *Options) {
				o.WriteError = func(w http.ResponseWriter, r *http.Request, e Error) {
					got, gotPath = e, r.URL.Path
					if tt.wantHeader != "" {
						headerAtHook = w.Header().Get(tt.wantHeader)
					}
					w.Header().Set("Content-Type", "application/problem+json")
					w.WriteHeader(e.Status)
					_ = json.NewEncoder(w).Encode(map[string]any{"status": e.Status, "title": e.Description, "type": "urn:err:" + e.Code})
				}
			})
			var seen served
			s := h.serve(t, h.guard.Protect(protected(&seen)), "X-API-Key", "tgk_x")
			if seen.called {
				t.Fatal("the protected handler ran on a refusal")
			}
			if got != tt.want {
				t.Errorf("hook got %+v, want %+v", got, tt.want)
			}
			if gotPath != "/v1/events" {
				t.Errorf("hook got the request for %q, want /v1/events", gotPath)
			}
			if tt.wantHeader != "" && headerAtHook == "" {
				t.Errorf("%s was not set when the hook ran", tt.wantHeader)
			}
			if s.res.StatusCode != tt.want.Status || s.res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("answer = %d %s, want %d application/problem+json", s.res.StatusCode, s.res.Header.Get("Content-Type"), tt.want.Status)
			}
			if !strings.Contains(string(s.body), "urn:err:"+tt.want.Code) {
				t.Errorf("body = %s, want the hook's", s.body)
			}
		})
	}
}

type requestIDKey struct{}

func TestRequestIDForwarded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string // the caller's X-Request-Id
		ctxID  string // an id the service keeps in the context
		fromCt bool   // Options.RequestID reads the context
		want   string // at the check endpoint
	}{
		{name: "caller's header", header: "req-123", want: "req-123"},
		{name: "no id", want: ""},
		{name: "too long", header: strings.Repeat("a", 65), want: ""},
		{name: "from the context", header: "ignored", ctxID: "ctx-7", fromCt: true, want: "ctx-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, allow, func(o *Options) {
				if tt.fromCt {
					o.RequestID = func(r *http.Request) string { id, _ := r.Context().Value(requestIDKey{}).(string); return id }
				}
			})
			var seen served
			handler := h.guard.Protect(protected(&seen))
			if tt.ctxID != "" {
				inner := handler
				handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					inner.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, tt.ctxID)))
				})
			}
			var header []string
			if tt.header != "" {
				header = []string{"X-Request-Id", tt.header}
			}
			h.serve(t, handler, append(header, "X-API-Key", "tgk_x")...)
			if got := h.fake.last(t).Get("X-Request-Id"); got != tt.want {
				t.Errorf("check request X-Request-Id = %q, want %q", got, tt.want)
			}
		})
	}
}
