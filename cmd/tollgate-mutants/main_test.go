package main

import (
	"os"
	"strings"
	"testing"
	"time"
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

// apply on a module of its own: a mutant the test catches is killed, one it
// does not catch survives, and the other ways a mutant proves nothing are
// told apart. The module's files are never changed.
func TestApplyVerdicts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	root := t.TempDir()
	files := map[string]string{
		"go.mod":    "module example.test/m\n\ngo 1.22\n",
		"m.go":      "package m\n\n// Max returns the larger of a and b.\nfunc Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}\n\nfunc Unused() int { return 1 }\n",
		"m_test.go": "package m\n\nimport \"testing\"\n\nfunc TestMax(t *testing.T) {\n\tif got := Max(2, 1); got != 2 {\n\t\tt.Errorf(\"Max(2, 1) = %d, want 2\", got)\n\t}\n}\n",
	}
	for name, text := range files {
		if err := os.WriteFile(root+"/"+name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const test = "go test -count=1 -run 'TestMax' ./"
	tests := []struct {
		name string
		m    mutant
		want string
	}{
		{"caught", mutant{file: "m.go", from: "\tif a > b {", to: "\tif a < b {", test: test}, "killed"},
		{"not caught", mutant{file: "m.go", from: "func Unused() int { return 1 }", to: "func Unused() int { return 2 }", test: test}, "SURVIVED"},
		{"original gone", mutant{file: "m.go", from: "\tif a >= b {", to: "\tif a < b {", test: test}, "NOT FOUND"},
		{"original twice", mutant{file: "m.go", from: "return", to: "return -1 +", test: test}, "AMBIGUOUS"},
		{"does not compile", mutant{file: "m.go", from: "\tif a > b {", to: "\tif a > b {{", test: test}, "NO BUILD"},
		{"runs no test", mutant{file: "m.go", from: "\tif a > b {", to: "\tif a < b {", test: "go test -count=1 -run 'TestNothing' ./"}, "NO TESTS"},
	}
	t.Chdir(root)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.name = tt.name
			if got := apply(root, t.TempDir(), i, tt.m, time.Minute); got.verdict != tt.want {
				t.Errorf("verdict %q, want %q; output:\n%s", got.verdict, tt.want, got.output)
			}
		})
	}
	if b, err := os.ReadFile(root + "/m.go"); err != nil || string(b) != files["m.go"] {
		t.Errorf("m.go changed: %q, %v", b, err)
	}
}
