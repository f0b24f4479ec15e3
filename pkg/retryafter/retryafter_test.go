package retryafter_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/retryafter"
)

func TestSeconds(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want int64
	}{
		{"negative", -5 * time.Second, 1},
		{"zero", 0, 1},
		{"one nanosecond", time.Nanosecond, 1},
		{"just under a second", time.Second - time.Nanosecond, 1},
		{"one second", time.Second, 1},
		{"just over a second", time.Second + time.Nanosecond, 2},
		{"one and a half seconds", 1500 * time.Millisecond, 2},
		{"whole seconds", 30 * time.Second, 30},
		{"a minute and a bit", time.Minute + time.Millisecond, 61},
		{"the longest duration", math.MaxInt64, math.MaxInt64/int64(time.Second) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryafter.Seconds(tt.d); got != tt.want {
				t.Errorf("Seconds(%v) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}

func TestSet(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "99")
	retryafter.Set(h, 2100*time.Millisecond)
	if got, want := h.Values("Retry-After"), []string{"3"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("Retry-After = %q, want %q", got, want)
	}
}
