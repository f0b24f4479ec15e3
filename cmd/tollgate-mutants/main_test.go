package main

import (
	"os"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const good = "name: n\nfile: f.go\nfrom: \tif a < b {\nto: \tif a <= b {\ntest: go test -run 'X' ./f/\n"
	tests := []struct {
		name    string
		list    string
		want    int    // mutants
		wantErr string // in the error; "" for none
	}{
		{"one block", "# a comment\n\n" + good, 1, ""},
		{"two blocks, quick", good + "\n" + strings.Replace(good, "name: n", "name: m", 1) + "quick: yes\n", 2, ""},
		{"missing test", "name: n\nfile: f.go\nfrom: a\nto: b\n", 0, "lacks test"},
		{"unknown key", good + "tset: x\n", 0, `unknown key "tset"`},
		{"changes nothing", "name: n\nfile: f.go\nfrom: a\nto: a\ntest: go test ./x/\n", 0, "changes nothing"},
		{"not go test", strings.Replace(good, "test: go test", "test: make test", 1), 0, "go test"},
		{"no colon", "name n\n", 0, "key: value"},
		{"quick is yes or nothing", good + "quick: no\n", 0, "quick: want yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(strings.NewReader(tt.list))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("parse: err = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "" && len(got) != tt.want {
				t.Fatalf("parse: %d mutants, want %d", len(got), tt.want)
			}
		})
	}
	m, err := parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	// The value keeps the Go code's leading tab: only the one space after
	// the colon is a separator.
	if got, want := m[0].from, "\tif a < b {"; got != want {
		t.Errorf("from = %q, want %q", got, want)
	}
}

// The repository's own list parses, and each original text is in its file
// exactly once: drift is caught here, before any mutant runs.
func TestRepositoryList(t *testing.T) {
	f, err := os.Open("../../.ci/mutants.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mutants, err := parse(f)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range mutants {
		if names[m.name] {
			t.Errorf("mutant %q: the name is taken", m.name)
		}
		names[m.name] = true
		src, err := os.ReadFile("../../" + m.file)
		if err != nil {
			t.Errorf("mutant %q: %v", m.name, err)
			continue
		}
		if n := strings.Count(string(src), m.from); n != 1 {
			t.Errorf("mutant %q: the original text occurs %d times in %s, want 1", m.name, n, m.file)
		}
	}
}
