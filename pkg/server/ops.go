package server

import (
	"context"
	"net/http"
	"time"
)

// Check is one dependency /readyz probes.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// OpsHandler serves the ops listener: /healthz (the process answers),
// /readyz (every dependency answers within timeout) and, when metrics is not
// nil, /metrics.
func OpsHandler(metrics http.Handler, checks []Check, timeout time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		status, code := map[string]string{}, http.StatusOK
		for _, c := range checks {
			if err := c.Ping(ctx); err != nil {
				// The error itself may carry a DSN: keep it out of the answer.
				status[c.Name], code = "unavailable", http.StatusServiceUnavailable
				continue
			}
			status[c.Name] = "ok"
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, code, status)
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}
