package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// absurdLimits sends absurd quotas, bad CIDRs and wrong budget types to
// every route that takes them: each is a 4xx in problem+json, never a 500,
// and (checked by the suite's snapshot) changes nothing.
func (h *hostile) absurdLimits() {
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
	}
	tenK, _ := json.Marshal(map[string]any{"allowed_cidrs": many})
	credential := []string{
		`{"quota":{"limit":0,"period":"day"}}`,
		`{"quota":{"limit":-1,"period":"day"}}`,
		`{"quota":{"limit":9223372036854775808,"period":"day"}}`,
		`{"quota":{"limit":1e308,"period":"month"}}`,
		`{"quota":{"limit":2.5,"period":"day"}}`,
		`{"quota":{"limit":"1000","period":"day"}}`,
		`{"quota":{"limit":1000,"period":"fortnight"}}`,
		`{"quota":{"limit":1000,"period":"day","period":"month"}}`,
		`{"quota":"unlimited"}`,
		`{"allowed_cidrs":["10.0.0.1/33"]}`,
		`{"allowed_cidrs":["::/129"]}`,
		`{"allowed_cidrs":["garbage","10.0.0.0/8"]}`,
		`{"allowed_cidrs":["fe80::1%eth0"]}`,
		`{"allowed_cidrs":[null]}`,
		`{"allowed_cidrs":{"a":"10.0.0.0/8"}}`,
		string(tenK),
	}
	budget := []string{
		`{"budget":{"rate_limits":{"default":{"rate":-1,"burst":1}}}}`,
		`{"budget":{"rate_limits":{"default":{"rate":1e10,"burst":1}}}}`,
		`{"budget":{"rate_limits":{"nope":{"rate":1,"burst":1}}}}`,
		`{"budget":{"rate_limits":"fast"}}`,
		`{"budget":{"quota":{"limit":0,"period":"day"}}}`,
		`{"budget":{"quota":{"limit":1,"period":"year"}}}`,
		`{"budget":{"quota":true}}`,
		`{"budget":[1,2]}`,
		`{"budget":{"rate_limits":{},"rate_limits":{}}}`,
	}
	auth := []string{"Content-Type", "application/json", "Authorization", "Bearer " + h.admin}
	for _, path := range []string{fmt.Sprintf("/api/v1/clients/%d", h.client.ID), fmt.Sprintf("/api/v1/keys/%d", h.kid.ID)} {
		for _, body := range credential {
			h.refused("absurd limit", http.MethodPatch, path, h.do(http.MethodPatch, path, body, auth...))
		}
	}
	for _, path := range []string{"/api/v1/clients", "/api/v1/keys"} {
		for _, body := range credential {
			body = `{"name":"absurd",` + strings.TrimPrefix(body, "{")
			h.refused("absurd limit", http.MethodPost, path, h.do(http.MethodPost, path, body, auth...))
		}
	}
	for _, body := range budget {
		path := fmt.Sprintf("/api/v1/accounts/%d", h.account.ID)
		h.refused("absurd budget", http.MethodPatch, path, h.do(http.MethodPatch, path, body, auth...))
		create := `{"name":"absurd",` + strings.TrimPrefix(body, "{")
		h.refused("absurd budget", http.MethodPost, "/api/v1/accounts", h.do(http.MethodPost, "/api/v1/accounts", create, auth...))
	}
	// The admin's own root account: a budget nobody below may set.
	root := fmt.Sprintf("/api/v1/accounts/%d", h.f.root.ID)
	h.refused("own budget", http.MethodPatch, root, h.do(http.MethodPatch, root, `{"budget":{"quota":{"limit":1,"period":"day"}}}`, auth...))
}
