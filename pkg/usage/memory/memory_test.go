package memory_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/pkg/usage/memory"
)

func TestCountsAddAndRead(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC)
	clock := now
	c := memory.New(func() time.Time { return clock })
	add := func(root int64, minute time.Time, cred int64, outcome string, n int64) {
		t.Helper()
		if err := c.Add(t.Context(), root, usage.Count{Minute: minute, CredentialID: cred, Class: "default", Outcome: outcome, N: n}); err != nil {
			t.Fatal(err)
		}
	}
	add(1, now, 7, usage.OutcomeAllowed, 2)
	add(1, now.Add(20*time.Second), 7, usage.OutcomeAllowed, 1) // the same minute
	add(1, now, 3, usage.OutcomeForbidden, 1)
	add(2, now, 7, usage.OutcomeAllowed, 5) // another root
	add(1, now.Add(time.Minute), 7, usage.OutcomeAllowed, 9)
	got, err := c.ReadMinute(t.Context(), 1, now.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := []usage.Count{
		{Minute: now, CredentialID: 3, Class: "default", Outcome: usage.OutcomeForbidden, N: 1},
		{Minute: now, CredentialID: 7, Class: "default", Outcome: usage.OutcomeAllowed, N: 3},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ReadMinute = %+v, want %+v", got, want)
	}
	// Past usage.CountTTL the minute is gone, as the Redis hash would be.
	clock = now.Add(usage.CountTTL + 2*time.Minute)
	add(1, clock, 7, usage.OutcomeAllowed, 1)
	if got, _ := c.ReadMinute(t.Context(), 1, now); len(got) != 0 {
		t.Errorf("after the TTL: %+v, want nothing", got)
	}
}
