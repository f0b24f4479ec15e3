package server

import (
	"net/http"
)

// HSTS is the Strict-Transport-Security value of answers served over TLS:
// one year, this host only (a sibling host may not serve HTTPS).
const HSTS = "max-age=31536000"

// securityHeaders are the headers SecurityHeaders adds to every answer
// that does not set them itself. The JSON APIs need no resource of any
// kind and are never framed.
var securityHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Frame-Options", "DENY"},
	{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
}

// SecurityHeaders wraps the public listener's handler so that every answer
// carries X-Content-Type-Options, Referrer-Policy, X-Frame-Options and a
// Content-Security-Policy for JSON, plus Strict-Transport-Security when the
// request came over TLS. A header the inner handler set itself (a page
// with its own Content-Security-Policy) is left as it is: the defaults are
// filled in only where absent, when the answer's header is written.
func SecurityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &headerWriter{ResponseWriter: w, tls: r.TLS != nil}
		h.ServeHTTP(sw, r)
		// A handler that wrote nothing is answered 200 by net/http with
		// the header map as it is now.
		sw.fill()
	})
}

// headerWriter fills in the security headers just before the header is
// written.
type headerWriter struct {
	http.ResponseWriter
	tls    bool
	filled bool
}

func (w *headerWriter) fill() {
	if w.filled {
		return
	}
	w.filled = true
	h := w.Header()
	for _, kv := range securityHeaders {
		if _, ok := h[kv[0]]; !ok {
			h.Set(kv[0], kv[1])
		}
	}
	if _, ok := h["Strict-Transport-Security"]; w.tls && !ok {
		h.Set("Strict-Transport-Security", HSTS)
	}
}

func (w *headerWriter) WriteHeader(code int) {
	w.fill()
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWriter) Write(b []byte) (int, error) {
	w.fill()
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming answers through.
func (w *headerWriter) Flush() {
	w.fill()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *headerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
