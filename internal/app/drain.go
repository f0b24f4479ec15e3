package app

import (
	"net/http"
	"sync/atomic"
)

// drain is the first step of a graceful shutdown (http.shutdown_delay):
// the listeners stay open and every request is still served, but /readyz
// answers 503 so that load balancers take the instance out of rotation, and
// every answer carries Connection: close so that keep-alive clients open
// their next connection elsewhere. Only then do the listeners close; a
// request still arriving at that moment would be refused.
type drain struct{ on atomic.Bool }

func (d *drain) start() { d.on.Store(true) }

// public wraps the public handler.
func (d *drain) public(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.on.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// ops wraps the ops handler: /readyz says the instance is going away.
func (d *drain) ops(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.on.Load() {
			w.Header().Set("Connection", "close")
			if r.URL.Path == "/readyz" && r.Method == http.MethodGet {
				h := w.Header()
				h.Set("Content-Type", "application/json")
				h.Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"shutdown":"draining"}` + "\n"))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
