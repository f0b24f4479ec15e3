package server_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tollgate/tollgate/pkg/server"
)

func TestSecurityHeaders(t *testing.T) {
	const jsonCSP = "default-src 'none'; frame-ancestors 'none'"
	const pageCSP = "default-src 'self'; frame-ancestors 'none'"
	tests := []struct {
		name    string
		tls     bool
		handler http.HandlerFunc
		want    map[string][]string // header: exact values; nil: absent
	}{
		{
			name: "JSON answer",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":"invalid_request"}`)
			},
			want: map[string][]string{
				"X-Content-Type-Options":    {"nosniff"},
				"Referrer-Policy":           {"no-referrer"},
				"X-Frame-Options":           {"DENY"},
				"Content-Security-Policy":   {jsonCSP},
				"Strict-Transport-Security": nil,
			},
		},
		{
			name:    "over TLS",
			tls:     true,
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") },
			want: map[string][]string{
				"Strict-Transport-Security": {server.HSTS},
				"Content-Security-Policy":   {jsonCSP},
			},
		},
		{
			name:    "answer written without WriteHeader",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") },
			want:    map[string][]string{"X-Content-Type-Options": {"nosniff"}, "X-Frame-Options": {"DENY"}},
		},
		{
			name:    "handler that writes nothing",
			handler: func(http.ResponseWriter, *http.Request) {},
			want:    map[string][]string{"X-Content-Type-Options": {"nosniff"}, "Content-Security-Policy": {jsonCSP}},
		},
		{
			name: "page with its own policy (Set)",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Security-Policy", pageCSP)
				w.Header().Set("X-Frame-Options", "SAMEORIGIN")
				_, _ = io.WriteString(w, "<!doctype html>")
			},
			want: map[string][]string{
				"Content-Security-Policy": {pageCSP},
				"X-Frame-Options":         {"SAMEORIGIN"},
				"Referrer-Policy":         {"no-referrer"},
			},
		},
		{
			name: "page with its own policy (Add)",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Add("Content-Security-Policy", pageCSP)
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{"Content-Security-Policy": {pageCSP}},
		},
		{
			name: "handler's own HSTS kept",
			tls:  true,
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Strict-Transport-Security", "max-age=60")
				w.WriteHeader(http.StatusNoContent)
			},
			want: map[string][]string{"Strict-Transport-Security": {"max-age=60"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/x", nil)
			if tt.tls {
				req.TLS = &tls.ConnectionState{Version: tls.VersionTLS13}
			}
			rec := httptest.NewRecorder()
			server.SecurityHeaders(tt.handler).ServeHTTP(rec, req)
			for name, want := range tt.want {
				got := rec.Result().Header.Values(name)
				if want == nil {
					if len(got) != 0 {
						t.Errorf("%s = %q, want absent", name, got)
					}
					continue
				}
				if len(got) != len(want) || got[0] != want[0] {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestSecurityHeadersFlush(t *testing.T) {
	rec := httptest.NewRecorder()
	server.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the wrapper: %v", err)
		}
	})).ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil))
	if !rec.Flushed {
		t.Error("the answer was not flushed")
	}
	if got := rec.Result().Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q after a flush, want nosniff", got)
	}
}
