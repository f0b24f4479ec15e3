package allowlist_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/allowlist"
	"github.com/tollgate/tollgate/storage"
)

func TestAllows(t *testing.T) {
	list := []string{"203.0.113.0/24", "2001:db8::/32", "192.0.2.7/32"}
	for _, tt := range []struct {
		cidrs []string
		addr  string
		want  bool
	}{
		{nil, "", true},
		{nil, "198.51.100.1", true},
		{list, "203.0.113.200", true},
		{list, "::ffff:203.0.113.5", true},
		{list, "2001:db8::1", true},
		{list, "fe80::1%eth0", false},
		{list, "192.0.2.7", true},
		{list, "192.0.2.8", false},
		{list, "203.0.114.1", false},
		{list, "", false},
		{list, "not an address", false},
		{list, "203.0.113.1:443", false},
	} {
		if got := allowlist.Allows(tt.cidrs, tt.addr); got != tt.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tt.cidrs, tt.addr, got, tt.want)
		}
	}
}

type audit struct {
	mu     sync.Mutex
	events []storage.AuditEvent
}

func (a *audit) AppendAudit(_ context.Context, e storage.AuditEvent) (storage.AuditEvent, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return e, nil
}

// TestRefusalsAreBounded: one event per credential per minute, and no more
// credentials remembered than MaxTracked.
func TestRefusalsAreBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &audit{}
	r := allowlist.New(allowlist.Options{Audit: a, MaxTracked: 3, Now: func() time.Time { return now }})
	key := storage.Client{ID: 1, AccountID: 9, Kind: storage.KindKey}
	for range 1000 {
		r.Refused(t.Context(), allowlist.Refusal{Client: key, Addr: "198.51.100.1", Where: "check endpoint"})
	}
	if len(a.events) != 1 {
		t.Fatalf("%d events for a flood within a minute, want 1", len(a.events))
	}
	e := a.events[0]
	if e.Action != "key.refused_address" || e.TargetID != 1 || e.AccountID != 9 || e.RemoteAddr != "198.51.100.1" || e.Outcome != "failure" {
		t.Errorf("event = %+v", e)
	}
	for id := int64(2); id < 100; id++ {
		r.Refused(t.Context(), allowlist.Refusal{Client: storage.Client{ID: id, Kind: storage.KindClient}, Addr: "198.51.100.1", Where: "token endpoint"})
	}
	if len(a.events) != 3 {
		t.Errorf("%d events for 99 credentials with room for 3, want 3", len(a.events))
	}
	now = now.Add(time.Minute)
	r.Refused(t.Context(), allowlist.Refusal{Client: key, Where: "check endpoint"})
	if len(a.events) != 4 || a.events[3].RemoteAddr != "" {
		t.Errorf("after a minute: %d events, want a 4th (no address forwarded)", len(a.events))
	}
}
