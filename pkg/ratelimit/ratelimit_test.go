package ratelimit_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/ratelimit"
)

func TestHeaders(t *testing.T) {
	tests := []struct {
		name  string
		class string
		res   ratelimit.Result
		want  http.Header
	}{
		{
			name:  "allowed",
			class: "default",
			res: ratelimit.Result{
				Allowed: true, Limit: ratelimit.Limit{Rate: 3, Burst: 3},
				Remaining: 2, ResetAfter: 333 * time.Millisecond,
			},
			want: http.Header{
				"Ratelimit-Policy": {`"default";q=3;w=1`},
				"Ratelimit":        {`"default";r=2;t=1`},
			},
		},
		{
			name:  "allowed, fully replenished",
			class: "reports",
			res:   ratelimit.Result{Allowed: true, Limit: ratelimit.Limit{Rate: 1, Burst: 5}, Remaining: 5},
			want: http.Header{
				"Ratelimit-Policy": {`"reports";q=5;w=1`},
				"Ratelimit":        {`"reports";r=5;t=0`},
			},
		},
		{
			name:  "denied, retry rounded up",
			class: "reports",
			res: ratelimit.Result{
				Limit: ratelimit.Limit{Rate: 1, Burst: 1}, RetryAfter: 1001 * time.Millisecond,
				ResetAfter: 2001 * time.Millisecond,
			},
			want: http.Header{
				"Ratelimit-Policy": {`"reports";q=1;w=1`},
				"Ratelimit":        {`"reports";r=0;t=3`},
				"Retry-After":      {"2"},
			},
		},
		{
			name:  "denied, sub-second retry is at least 1",
			class: "default",
			res: ratelimit.Result{
				Limit: ratelimit.Limit{Rate: 20, Burst: 10}, RetryAfter: 50 * time.Millisecond,
				ResetAfter: 500 * time.Millisecond,
			},
			want: http.Header{
				"Ratelimit-Policy": {`"default";q=10;w=1`},
				"Ratelimit":        {`"default";r=0;t=1`},
				"Retry-After":      {"1"},
			},
		},
		{
			name:  "denied, whole seconds stay whole",
			class: "default",
			res: ratelimit.Result{
				Limit: ratelimit.Limit{Rate: 1, Burst: 2}, RetryAfter: 3 * time.Second,
				ResetAfter: 4 * time.Second,
			},
			want: http.Header{
				"Ratelimit-Policy": {`"default";q=2;w=1`},
				"Ratelimit":        {`"default";r=0;t=4`},
				"Retry-After":      {"3"},
			},
		},
		{
			name:  "denied, zero retry still says 1",
			class: "default",
			res:   ratelimit.Result{Limit: ratelimit.Limit{Rate: 1, Burst: 1}},
			want: http.Header{
				"Ratelimit-Policy": {`"default";q=1;w=1`},
				"Ratelimit":        {`"default";r=0;t=0`},
				"Retry-After":      {"1"},
			},
		},
		{
			name:  "name is escaped as a structured-field string",
			class: "a\"b\\c\nd\u00e9",
			res:   ratelimit.Result{Allowed: true, Limit: ratelimit.Limit{Rate: 1, Burst: 1}},
			want: http.Header{
				"Ratelimit-Policy": {`"a\"b\\c_d__";q=1;w=1`},
				"Ratelimit":        {`"a\"b\\c_d__";r=0;t=0`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := http.Header{}
			ratelimit.Headers(got, tt.class, tt.res)
			if len(got) != len(tt.want) {
				t.Errorf("got headers %v, want %v", got, tt.want)
			}
			for name, want := range tt.want {
				if g := got.Values(name); len(g) != 1 || g[0] != want[0] {
					t.Errorf("%s: got %q, want %q", name, g, want[0])
				}
			}
		})
	}
}

// An allowed answer leaves a Retry-After set by someone else alone, and a
// denied one replaces it.
func TestHeadersRetryAfterOnlyWhenDenied(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "120")
	ratelimit.Headers(h, "default", ratelimit.Result{Allowed: true, Limit: ratelimit.Limit{Rate: 1, Burst: 1}})
	if got := h.Get("Retry-After"); got != "120" {
		t.Errorf("allowed: got Retry-After %q, want %q", got, "120")
	}
	ratelimit.Headers(h, "default", ratelimit.Result{Limit: ratelimit.Limit{Rate: 1, Burst: 1}, RetryAfter: time.Second})
	if got := h.Values("Retry-After"); len(got) != 1 || got[0] != "1" {
		t.Errorf("denied: got Retry-After %q, want [1]", got)
	}
}

func TestLimitValidate(t *testing.T) {
	tests := []struct {
		limit ratelimit.Limit
		ok    bool
	}{
		{ratelimit.Limit{Rate: 1, Burst: 1}, true},
		{ratelimit.Limit{Rate: 3, Burst: 10}, true},
		{ratelimit.Limit{Rate: 0, Burst: 1}, false},
		{ratelimit.Limit{Rate: -1, Burst: 1}, false},
		{ratelimit.Limit{Rate: 1, Burst: 0}, false},
	}
	for _, tt := range tests {
		err := tt.limit.Validate()
		if tt.ok && err != nil {
			t.Errorf("%+v: got %v, want nil", tt.limit, err)
		}
		if !tt.ok && !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("%+v: got %v, want ErrInvalidLimit", tt.limit, err)
		}
	}
}
