package strictjson

import (
	"errors"
	"testing"
)

func TestCheckDuplicates(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		fold     bool
		wantPath string // "" for no duplicate
	}{
		{"flat, distinct", `{"a":1,"b":2}`, false, ""},
		{"flat, repeated", `{"role":"member","role":"admin"}`, false, "role"},
		{"repeated through an escape", `{"role":"member","\u0072ole":"admin"}`, false, "role"},
		{"nested object", `{"rate_limits":{"token":{"rate":1},"token":{"rate":2}}}`, false, "rate_limits/token"},
		{"object in an array", `{"items":[{"a":1},{"a":1,"a":2}]}`, false, "items/1/a"},
		{"same name in sibling objects", `{"x":{"a":1},"y":{"a":2}}`, false, ""},
		{"case differs, exact", `{"scope":"a","Scope":"b"}`, false, ""},
		{"case differs, folded", `{"role":"member","Role":"admin"}`, true, "Role"},
		{"top-level array", `[{"a":1},{"a":2}]`, false, ""},
		{"scalar", `"x"`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.fold {
				err = CheckDuplicatesFold([]byte(tt.body))
			} else {
				err = CheckDuplicates([]byte(tt.body))
			}
			var dup *DuplicateError
			switch {
			case tt.wantPath == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantPath != "" && !errors.As(err, &dup):
				t.Errorf("got %v, want a duplicate at %q", err, tt.wantPath)
			case tt.wantPath != "" && dup.Path != tt.wantPath:
				t.Errorf("got duplicate at %q, want %q", dup.Path, tt.wantPath)
			}
		})
	}
}

func TestCheckDuplicatesMalformed(t *testing.T) {
	for _, body := range []string{`{"a":`, `{"a" 1}`, `{1:2}`, ``, `[1,`} {
		if err := CheckDuplicates([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: got %v, want ErrMalformed", body, err)
		}
	}
}

func FuzzCheckDuplicates(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[{"c":1}]}}`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = CheckDuplicates(data)
		_ = CheckDuplicatesFold(data)
	})
}
