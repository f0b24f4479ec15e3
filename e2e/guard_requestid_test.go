package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/guard"
)

// TestGuardForwardsRequestID: the service's request id reaches Tollgate, so
// the check's log line can be found from the service's.
func TestGuardForwardsRequestID(t *testing.T) {
	f := newFixture(t, "embedded")
	_, key := f.apiKey(f.alice, "events")
	api := f.guarded(guard.Options{}, guard.Scopes("events"))
	if res := f.call(api, "/v1/events", "X-API-Key", key, "X-Request-Id", "svc-req-42"); res.status != 200 {
		t.Fatalf("guarded call: %d %s, want 200", res.status, res.body)
	}
	found := false
	for _, line := range strings.Split(f.logs.String(), "\n") {
		var entry struct {
			Msg       string `json:"msg"`
			Endpoint  string `json:"endpoint"`
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "request" && entry.Endpoint == "check" {
			found = found || entry.RequestID == "svc-req-42"
		}
	}
	if !found {
		t.Errorf("no check log line with request_id svc-req-42; logs:\n%s", f.logs.String())
	}
}
