package storage_test

import (
	"testing"

	"github.com/tollgate/tollgate/storage"
)

func TestRooted(t *testing.T) {
	for _, tt := range []struct {
		root int64
		id   string
	}{{1, "x"}, {9223372036854775807, "a1.b"}, {42, "."}, {7, "\x00\xff"}} {
		got := storage.Rooted(tt.root, tt.id)
		root, rest, ok := storage.SplitRooted(got)
		if !ok || root != tt.root || rest != tt.id {
			t.Errorf("SplitRooted(Rooted(%d, %q) = %q): %d, %q, %v", tt.root, tt.id, got, root, rest, ok)
		}
	}
	// Only Rooted's own spelling is rooted: every other string is an id
	// of its own, stored as it is.
	for _, id := range []string{"", "a1.", "a.x", "a01.x", "a0.x", "a-1.x", "a+1.x", "A1.x", "b1.x", "1.x", "a1x",
		"a9223372036854775808.x", "a1 .x", "ax1.x", "a12345678901234567890.x"} {
		if root, rest, ok := storage.SplitRooted(id); ok {
			t.Errorf("SplitRooted(%q): %d, %q, want not rooted", id, root, rest)
		}
	}
}
