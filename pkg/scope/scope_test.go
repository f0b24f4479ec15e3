package scope_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/scope"
)

// tokens returns n distinct scope tokens s0 … s(n-1).
func tokens(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("s%d", i)
	}
	return out
}

func TestParse(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 128)
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "empty", in: "", want: nil},
		{name: "single", in: "read", want: []string{"read"}},
		{name: "multiple", in: "read write admin", want: []string{"read", "write", "admin"}},
		{name: "duplicates removed order kept", in: "write read write admin read", want: []string{"write", "read", "admin"}},
		{name: "double spaces", in: "read  write", want: []string{"read", "write"}},
		{name: "leading and trailing spaces", in: " read write ", want: []string{"read", "write"}},
		{name: "spaces only", in: "   ", want: nil},
		{name: "case sensitive", in: "Read read", want: []string{"Read", "read"}},
		{name: "punctuation allowed", in: "a:b/c.d-e_f!#$%&'()*+,;<=>?@[]^`{|}~", want: []string{"a:b/c.d-e_f!#$%&'()*+,;<=>?@[]^`{|}~"}},
		{name: "url scope", in: "https://api.example.com/read", want: []string{"https://api.example.com/read"}},
		{name: "token of 128 chars", in: long, want: []string{long}},
		{name: "MaxTokens tokens", in: strings.Join(tokens(scope.MaxTokens), " "), want: tokens(scope.MaxTokens)},
		{name: "MaxTokens tokens with duplicates", in: strings.Join(append(tokens(scope.MaxTokens), tokens(scope.MaxTokens)...), " "), want: tokens(scope.MaxTokens)},
		{name: "over MaxTokens", in: strings.Join(tokens(scope.MaxTokens+1), " "), wantErr: true},
		{name: "token over 128 chars", in: "read " + long + "a", wantErr: true},
		{name: "double quote", in: `read "write"`, wantErr: true},
		{name: "backslash", in: `read\write`, wantErr: true},
		{name: "tab separator", in: "read\twrite", wantErr: true},
		{name: "newline", in: "read\nwrite", wantErr: true},
		{name: "NUL", in: "read\x00", wantErr: true},
		{name: "DEL", in: "read\x7f", wantErr: true},
		{name: "non-ASCII", in: "lecture écriture", wantErr: true},
		{name: "invalid UTF-8", in: "read \xff", wantErr: true},
		{name: "non-breaking space", in: "read\u00a0write", wantErr: true},
		{name: "invalid after valid", in: "a b c \"", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := scope.Parse(tt.in)
			if tt.wantErr {
				if !errors.Is(err, scope.ErrInvalid) {
					t.Errorf("Parse(%q) = %q, %v; want ErrInvalid", tt.in, got, err)
				}
				if got != nil {
					t.Errorf("Parse(%q) = %q with error, want nil", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error = %v, want nil", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tok  string
		want bool
	}{
		{tok: "read", want: true},
		{tok: "!", want: true},
		{tok: "~", want: true},
		{tok: "#", want: true},
		{tok: "[]", want: true},
		{tok: strings.Repeat("x", 128), want: true},
		{tok: "", want: false},
		{tok: strings.Repeat("x", 129), want: false},
		{tok: " ", want: false},
		{tok: "a b", want: false},
		{tok: `"`, want: false},
		{tok: `\`, want: false},
		{tok: "\x00", want: false},
		{tok: "\x1f", want: false},
		{tok: "\x7f", want: false},
		{tok: "\x80", want: false},
		{tok: "é", want: false},
	}
	for _, tt := range tests {
		if got := scope.Valid(tt.tok); got != tt.want {
			t.Errorf("Valid(%q) = %t, want %t", tt.tok, got, tt.want)
		}
	}
	// Every single byte: exactly %x21 / %x23-5B / %x5D-7E are valid.
	for c := 0; c < 256; c++ {
		want := c == 0x21 || c >= 0x23 && c <= 0x5B || c >= 0x5D && c <= 0x7E
		if got := scope.Valid(string([]byte{byte(c)})); got != want {
			t.Errorf("Valid(%q) = %t, want %t", []byte{byte(c)}, got, want)
		}
	}
}

func TestGrant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		requested []string
		allowed   []string
		want      []string
		wantErr   bool
	}{
		{name: "none requested gets all allowed", requested: nil, allowed: []string{"read", "write"}, want: []string{"read", "write"}},
		{name: "empty requested gets all allowed", requested: []string{}, allowed: []string{"read", "write"}, want: []string{"read", "write"}},
		{name: "none requested none allowed", requested: nil, allowed: nil, want: nil},
		{name: "all requested allowed", requested: []string{"write", "read"}, allowed: []string{"read", "write"}, want: []string{"write", "read"}},
		{name: "intersection in requested order", requested: []string{"admin", "write", "read"}, allowed: []string{"read", "write"}, want: []string{"write", "read"}},
		{name: "subset", requested: []string{"read"}, allowed: []string{"read", "write"}, want: []string{"read"}},
		{name: "duplicates requested", requested: []string{"read", "read", "write", "read"}, allowed: []string{"read", "write"}, want: []string{"read", "write"}},
		{name: "duplicates allowed", requested: []string{"read"}, allowed: []string{"read", "read"}, want: []string{"read"}},
		{name: "case sensitive", requested: []string{"READ"}, allowed: []string{"read"}, wantErr: true},
		{name: "none allowed", requested: []string{"admin"}, allowed: []string{"read", "write"}, wantErr: true},
		{name: "nothing allowed at all", requested: []string{"read"}, allowed: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := scope.Grant(tt.requested, tt.allowed)
			if tt.wantErr {
				if !errors.Is(err, scope.ErrInvalid) {
					t.Errorf("Grant(%q, %q) = %q, %v; want ErrInvalid", tt.requested, tt.allowed, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Grant(%q, %q) error = %v, want nil", tt.requested, tt.allowed, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Grant(%q, %q) = %q, want %q", tt.requested, tt.allowed, got, tt.want)
			}
		})
	}
}

func TestGrantDoesNotAlias(t *testing.T) {
	t.Parallel()
	allowed := []string{"read", "write"}
	got, err := scope.Grant(nil, allowed)
	if err != nil {
		t.Fatalf("Grant(nil, %q) error = %v", allowed, err)
	}
	got[0] = "admin"
	if want := []string{"read", "write"}; !slices.Equal(allowed, want) {
		t.Errorf("after changing Grant's result, allowed = %q, want %q (result aliases allowed)", allowed, want)
	}

	requested := []string{"read"}
	got, err = scope.Grant(requested, allowed)
	if err != nil {
		t.Fatalf("Grant(%q, %q) error = %v", requested, allowed, err)
	}
	got[0] = "admin"
	if requested[0] != "read" || allowed[0] != "read" {
		t.Errorf("after changing Grant's result, requested = %q, allowed = %q; want them unchanged", requested, allowed)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", " ", "read", "read write", "read  write", "write read write", `read "write"`, `a\b`,
		"read\twrite", "é", "\xff", "\x00", strings.Repeat("a", 129), strings.Join(tokens(scope.MaxTokens+1), " "),
		strings.Repeat("a ", 1000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := scope.Parse(s)
		if err != nil {
			if !errors.Is(err, scope.ErrInvalid) || got != nil {
				t.Fatalf("Parse(%q) = %q, %v; want nil, ErrInvalid", s, got, err)
			}
			return
		}
		if len(got) > scope.MaxTokens {
			t.Fatalf("Parse(%q) gave %d tokens, want at most %d", s, len(got), scope.MaxTokens)
		}
		seen := map[string]bool{}
		for _, tok := range got {
			if !scope.Valid(tok) {
				t.Fatalf("Parse(%q) gave invalid token %q", s, tok)
			}
			if seen[tok] {
				t.Fatalf("Parse(%q) gave %q twice", s, tok)
			}
			seen[tok] = true
		}
		// Parsing is a function of the set of tokens, in first-seen order:
		// joining and reparsing gives the same tokens.
		again, err := scope.Parse(strings.Join(got, " "))
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("Parse(Join(Parse(%q))) = %q, %v; want %q", s, again, err, got)
		}
		// Every space-separated field of the input is a token of the output.
		for _, field := range strings.Fields(s) {
			if !seen[field] {
				t.Fatalf("Parse(%q) = %q, missing field %q", s, got, field)
			}
		}
	})
}
