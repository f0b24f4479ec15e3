package manage

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// TestDescribeChanges checks the audit detail of an edit: every changed
// field, old → new, none that did not change, and long descriptions cut.
func TestDescribeChanges(t *testing.T) {
	base := storage.Client{Name: "Billing", Description: "d", AccessRights: "events", Scopes: []string{"events"},
		GrantTypes: []string{"client_credentials"}, Status: storage.StatusActive}
	exp := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		change func(c *storage.Client)
		sent   []string
		want   string
	}{
		{"rename", func(c *storage.Client) { c.Name = "Billing v2" }, []string{"name"}, `name "Billing" → "Billing v2"`},
		{"several", func(c *storage.Client) {
			c.Status, c.GrantTypes, c.ExpiresAt = storage.StatusDisabled, []string{"client_credentials", "eskimi_dsp"}, exp
		}, []string{"status", "grant_types", "expires_at"},
			"grant_types client_credentials → client_credentials eskimi_dsp; expires_at never → 2030-01-02T00:00:00Z; status active → disabled"},
		{"rate limits", func(c *storage.Client) { c.RateLimits = map[string]storage.RateLimit{"reports": {Rate: 1, Burst: 2}} },
			[]string{"rate_limits"}, "rate_limits none → reports=1:2"},
		{"nothing changed", func(*storage.Client) {}, []string{"name"}, "unchanged (sent name)"},
		{"long description", func(c *storage.Client) { c.Description = strings.Repeat("x", 200) }, []string{"description"},
			`description "d" → "` + strings.Repeat("x", 60) + `…"`},
	}
	for _, tt := range tests {
		cur := base
		cur.Scopes, cur.GrantTypes = append([]string{}, base.Scopes...), append([]string{}, base.GrantTypes...)
		tt.change(&cur)
		if got := describeChanges(base, cur, tt.sent); got != tt.want {
			t.Errorf("%s: describeChanges = %q, want %q", tt.name, got, tt.want)
		}
	}
}
