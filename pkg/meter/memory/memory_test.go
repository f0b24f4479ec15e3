package memory_test

import (
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/meter/conformance"
	"github.com/tollgate/tollgate/pkg/meter/memory"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/usage"
	usagememory "github.com/tollgate/tollgate/pkg/usage/memory"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (meter.Decider, conformance.Counts) {
		counts := usagememory.New(nil)
		return memory.New(memory.Options{Counter: counts}), func(t *testing.T, root int64, minute time.Time) map[string]int64 {
			cs, err := counts.ReadMinute(t.Context(), root, minute)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]int64{}
			for _, c := range cs {
				out[usage.CountField(c.CredentialID, c.Class, c.Outcome)] = c.N
			}
			return out
		}
	})
}

// Expired state is dropped as decisions go on: memory stays bounded by the
// keys active lately.
func TestSweep(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := memory.New(memory.Options{Now: func() time.Time { return now }})
	for i := range 5000 {
		req := meter.Request{Root: 1, CredentialID: int64(i + 1), AccountID: 1, Class: "default", Cost: 1,
			Rate: meterLimit, Now: now}
		if _, err := d.Decide(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Millisecond)
	}
	if got := d.Len(); got >= 5000 {
		t.Errorf("held %d states after 50 s of one call per credential at 100/s, want the replenished ones dropped", got)
	}
}

// meterLimit refills in 10 ms.
var meterLimit = ratelimit.Limit{Rate: 100, Burst: 1}
