package server_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/server"
)

// recordedMetrics keeps the outcomes the server records.
type recordedMetrics struct {
	mu       sync.Mutex
	outcomes []string
}

func (m *recordedMetrics) ObserveRequest(_, _, outcome string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes = append(m.outcomes, outcome)
}

func (m *recordedMetrics) last() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.outcomes) == 0 {
		return ""
	}
	return m.outcomes[len(m.outcomes)-1]
}

// TestMountedOutcomeFollowsStatus: the check endpoint, the management API
// and the console write their own answers; a refusal must not be counted
// as "ok", or nobody can alert on it.
func TestMountedOutcomeFollowsStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   string
	}{
		{http.StatusOK, "ok"},
		{http.StatusNoContent, "ok"},
		{http.StatusSeeOther, "ok"},
		{http.StatusBadRequest, "invalid_request"},
		{http.StatusUnauthorized, "unauthorized"},
		{http.StatusForbidden, "forbidden"},
		{http.StatusNotFound, "not_found"},
		{http.StatusConflict, "conflict"},
		{http.StatusRequestEntityTooLarge, "too_large"},
		{http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{http.StatusUnprocessableEntity, "client_error"},
		{http.StatusTooManyRequests, "rate_limited"},
		{499, "client_closed"},
		{http.StatusInternalServerError, "server_error"},
		{http.StatusServiceUnavailable, "temporarily_unavailable"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			m := &recordedMetrics{}
			h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.status) })
			srv := server.New(server.Options{
				Metrics:  m,
				Mounts:   []server.Mount{{Prefix: "/api/v1", Endpoint: "admin", Handler: h}},
				Handlers: []server.Mount{{Prefix: "/auth/check", Endpoint: "check", Handler: h}},
			})
			for _, path := range []string{"/auth/check", "/api/v1/keys"} {
				req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
				srv.ServeHTTP(httptest.NewRecorder(), req)
				if got := m.last(); got != tt.want {
					t.Errorf("GET %s answered %d: outcome = %q, want %q", path, tt.status, got, tt.want)
				}
			}
		})
	}
}

// TestOAuthOutcomeKeepsErrorCode: an endpoint that records its own outcome
// (an OAuth error code) keeps it.
func TestOAuthOutcomeKeepsErrorCode(t *testing.T) {
	t.Parallel()
	m := &recordedMetrics{}
	srv := server.New(server.Options{Metrics: m})
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/oauth/token", nil)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /oauth/token status = %d, want %d", rec.Code, http.StatusMethodNotAllowed)
	}
	if got, want := m.last(), "method_not_allowed"; got != want {
		t.Errorf("GET /oauth/token outcome = %q, want %q", got, want)
	}
}
