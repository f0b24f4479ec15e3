package gateway_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/pkg/gateway"
	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// recordedEvents keeps the quota thresholds the check reports.
type recordedEvents struct {
	mu     sync.Mutex
	events []usage.QuotaThreshold
}

func (r *recordedEvents) QuotaThreshold(_ context.Context, e usage.QuotaThreshold) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// TestCheckQuotaThresholds: crossing 80% and 100% of a credential's quota
// and of a budget's is reported once each, with who and how much.
func TestCheckQuotaThresholds(t *testing.T) {
	s := newCheckSetup(t)
	if _, err := s.db.UpdateAccount(t.Context(), s.root.ID, func(a *storage.Account) error {
		a.Budget = &storage.Budget{Quota: &storage.Quota{Limit: 10, Period: storage.QuotaMonth}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c, key := s.key(storage.Client{AccountID: s.child.ID, Quota: &storage.Quota{Limit: 5, Period: storage.QuotaDay}})
	events := &recordedEvents{}
	check := s.check(func(o *gateway.Options) { o.Events = events })
	for i := range 5 {
		if rec := serve(t, check, gateway.HeaderAPIKey, key); rec.Code != http.StatusOK {
			t.Fatalf("call %d: %d, want 200", i+1, rec.Code)
		}
	}
	// The sixth call is refused by the credential's quota: it crosses nothing.
	if rec := serve(t, check, gateway.HeaderAPIKey, key); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("sixth call: %d, want 429", rec.Code)
	}
	type seen struct {
		account, credential int64
		percent             int
		used                int64
	}
	var got []seen
	for _, e := range events.events {
		got = append(got, seen{e.AccountID, e.CredentialID, e.Percent, e.Used})
	}
	want := []seen{{s.child.ID, c.ID, 80, 4}, {s.child.ID, c.ID, 100, 5}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("events %+v, want %+v", got, want)
	}
	// The budget: 5 spent of 10; a key with no quota of its own spends 3
	// more (80%), then the last 2 (100%).
	_, other := s.key(storage.Client{AccountID: s.child.ID})
	events.events = nil
	serve(t, check, gateway.HeaderAPIKey, other, gateway.HeaderCost, "3")
	serve(t, check, gateway.HeaderAPIKey, other, gateway.HeaderCost, "2")
	if rec := serve(t, check, gateway.HeaderAPIKey, other); rec.Code != http.StatusTooManyRequests || rec.Header().Get(gateway.HeaderRefusal) != "quota" {
		t.Errorf("budget spent: %d, refusal %q; want 429 quota", rec.Code, rec.Header().Get(gateway.HeaderRefusal))
	}
	got = nil
	for _, e := range events.events {
		got = append(got, seen{e.AccountID, e.CredentialID, e.Percent, e.Used})
	}
	want = []seen{{s.root.ID, 0, 80, 8}, {s.root.ID, 0, 100, 10}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("budget events %+v, want %+v", got, want)
	}
}

// TestCheckCostHeader: the cost is a decimal integer from 1 to
// meter.MaxCost, once.
func TestCheckCostHeader(t *testing.T) {
	s := newCheckSetup(t)
	_, key := s.key(storage.Client{AccountID: s.root.ID})
	check := s.check(nil)
	for _, tt := range []struct {
		cost []string
		want int
	}{
		{nil, http.StatusOK},
		{[]string{"1"}, http.StatusOK},
		{[]string{strconv.Itoa(meter.MaxCost)}, http.StatusOK},
		{[]string{strconv.Itoa(meter.MaxCost + 1)}, http.StatusBadRequest},
		{[]string{"0"}, http.StatusBadRequest},
		{[]string{"-3"}, http.StatusBadRequest},
		{[]string{"007"}, http.StatusBadRequest},
		{[]string{"x"}, http.StatusBadRequest},
		{[]string{"1", "1"}, http.StatusBadRequest},
	} {
		header := []string{gateway.HeaderAPIKey, key}
		for _, c := range tt.cost {
			header = append(header, gateway.HeaderCost, c)
		}
		if got := serve(t, check, header...).Code; got != tt.want {
			t.Errorf("cost %q: %d, want %d", tt.cost, got, tt.want)
		}
	}
}

// FuzzCost: whatever the header holds, a cost is accepted only in range,
// and only as its own plain decimal form.
func FuzzCost(f *testing.F) {
	for _, s := range []string{"", "1", "1000000", "1000001", "0", "-1", "+1", "01", "1e3", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, ok := gateway.ParseCost(raw)
		if !ok {
			return
		}
		if n < 1 || n > meter.MaxCost {
			t.Fatalf("ParseCost(%q) = %d, out of range", raw, n)
		}
		if raw != "" && strconv.FormatInt(n, 10) != raw {
			t.Fatalf("ParseCost(%q) = %d, not its plain decimal form", raw, n)
		}
	})
}
