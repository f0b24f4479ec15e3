package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestOpsEndpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.tokenCC(f.cc)
		f.post("/oauth/token", formCT, form("grant_type", "client_credentials"), "Authorization", basic(f.cc.ID, "wrong"))
		f.post("/oauth/token", formCT, form("grant_type", "evil-grant-"+strings.Repeat("x", 10)), "Authorization", basic(f.cc.ID, "wrong"))
		f.introspect(f.rs, "junk")
		// Refusals of the mounted endpoints: no credential at the check
		// endpoint, an unknown rate class, no token at the management API.
		f.check(http.MethodGet)
		f.check(http.MethodGet, "X-API-Key", "tgk_nope", "X-Tollgate-Rate-Class", "no-such-class")
		f.post("/api/v1/keys", "application/json", "{}")

		get := func(path string) (int, string) {
			res, err := http.Get(f.ops.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		if code, body := get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
			t.Errorf("/healthz = %d %s", code, body)
		}
		if code, body := get("/readyz"); code != 200 || body != `{"database":"ok","tokens":"ok"}` {
			t.Errorf("/readyz = %d %s", code, body)
		}
		if code, _ := get("/debug/pprof/"); code != http.StatusNotFound {
			t.Errorf("/debug/pprof/ = %d with ops.pprof off, want 404", code)
		}
		code, metrics := get("/metrics")
		if code != 200 {
			t.Fatalf("/metrics = %d", code)
		}
		for _, want := range []string{
			`tollgate_http_requests_total{endpoint="token",grant_type="client_credentials",outcome="ok"} 1`,
			`tollgate_http_requests_total{endpoint="token",grant_type="client_credentials",outcome="invalid_client"} 1`,
			`tollgate_http_requests_total{endpoint="token",grant_type="none",outcome="unsupported_grant_type"} 1`,
			`tollgate_http_requests_total{endpoint="introspect",grant_type="none",outcome="inactive"} 1`,
			`tollgate_http_requests_total{endpoint="check",grant_type="none",outcome="unauthorized"} 1`,
			`tollgate_http_requests_total{endpoint="check",grant_type="none",outcome="invalid_request"} 1`,
			`tollgate_http_requests_total{endpoint="admin",grant_type="none",outcome="unauthorized"} 1`,
			`tollgate_http_request_duration_seconds_bucket{endpoint="token"`,
			`go_goroutines`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if strings.Contains(metrics, "evil-grant") {
			t.Error("/metrics carries a label value taken from the request")
		}
		for _, s := range f.secrets {
			if strings.Contains(metrics, s) {
				t.Error("/metrics carries a secret")
			}
		}
	})
}
