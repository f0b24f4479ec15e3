package server

import (
	"context"
	"net/http"
	httppprof "net/http/pprof"
	"time"
)

// Check is one dependency /readyz probes.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// OpsHandler serves the ops listener: /healthz (the process answers),
// /readyz (every dependency answers within timeout), /metrics when metrics
// is not nil, and Go's profiles under /debug/pprof/ when pprof is set.
func OpsHandler(metrics http.Handler, checks []Check, timeout time.Duration, pprof bool) http.Handler {
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
	if pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	return mux
}
