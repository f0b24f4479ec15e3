package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Request decoding on the token and introspection endpoints: the body read
// and parsed into parameters, and the client credentials found in it or in
// the Authorization header.
//
//	go test -run '^$' -bench 'ReadBody|ClientCredentials' -benchmem ./pkg/server/

const benchSecret = "Yd3kN0vTqW8xZ2rLbP5sJ7mH9cF1gA4eU6iO3yR0tQw"

func BenchmarkReadBody(b *testing.B) {
	for _, tt := range []struct {
		name, contentType, body string
	}{
		{"form", formType, "grant_type=client_credentials&scope=read+write"},
		{"introspect", formType, "token=tg_at_3q2-7wEjBsW6d1cYkGp0yNfXzU8aJmLhRt5vKoQe9iC.Vb4nHs7TgW2kPqXl0dRz6yMfJc8aUe3oNi5tYw1KpLs"},
		{"json", jsonType, `{"grant_type":"client_credentials","client_id":1234,"client_secret":"` + benchSecret + `"}`},
	} {
		b.Run(tt.name, func(b *testing.B) {
			// One request whose body is rewound each time: only readBody's
			// own work is measured.
			body := strings.NewReader(tt.body)
			r := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
			r.Header.Set("Content-Type", tt.contentType)
			r.Body = io.NopCloser(body)
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(tt.body)
				if _, oerr := readBody(r, 64<<10, true); oerr != nil {
					b.Fatalf("readBody: %s", oerr.description)
				}
			}
		})
	}
}

func BenchmarkReadClientCredentials(b *testing.B) {
	for _, tt := range []struct {
		name, authorization string
		form                map[string][]string
	}{
		// "1234:<secret>"
		{name: "basic", authorization: "Basic MTIzNDpZZDNrTjB2VHFXOHhaMnJMYlA1c0o3bUg5Y0YxZ0E0ZVU2aU8zeVIwdFF3",
			form: map[string][]string{"grant_type": {"client_credentials"}}},
		{name: "post", form: map[string][]string{"grant_type": {"client_credentials"}, "client_id": {"1234"},
			"client_secret": {benchSecret}}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			b.ReportAllocs()
			for b.Loop() {
				creds, oerr := readClientCredentials(r, tt.form)
				if oerr != nil || creds.ClientID != 1234 || creds.Secret != benchSecret {
					b.Fatalf("readClientCredentials = %+v, %v", creds, oerr)
				}
			}
		})
	}
}
