package fuzzrun_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/fuzzrun"
)

// copyModule copies testdata/<name> to a temporary directory, so that the
// reproducers the fuzzer writes land there and not in the repository.
func copyModule(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestRunReportsFinding runs a real target that the fuzzer breaks next to
// one that holds: the run fails, names the broken target only, and points at
// the reproducer it wrote.
func TestRunReportsFinding(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and fuzzes a module")
	}
	dir := copyModule(t, "failing")
	var out strings.Builder
	err := fuzzrun.Run(t.Context(), fuzzrun.Options{
		Dir: dir,
		Budgets: map[string]int{
			"example.com/failing FuzzBreaks": 1_000_000,
			"example.com/failing FuzzHolds":  500,
		},
		Out: &out,
	})
	fe, ok := errors.AsType[*fuzzrun.FindingsError](err)
	if !ok {
		t.Fatalf("got error %v, want a *FindingsError\n%s", err, out.String())
	}
	if len(fe.Findings) != 1 {
		t.Fatalf("got %d findings, want 1: %v", len(fe.Findings), fe)
	}
	f := fe.Findings[0]
	if f.Target.Name != "FuzzBreaks" {
		t.Errorf("got a finding in %s, want FuzzBreaks", f.Target.Name)
	}
	if !strings.Contains(f.Reason, "deliberate finding") {
		t.Errorf("got reason %q, want the panic's message", f.Reason)
	}
	if want := filepath.Join(dir, "testdata", "fuzz", "FuzzBreaks") + string(filepath.Separator); !strings.HasPrefix(f.Reproducer, want) {
		t.Errorf("got reproducer %q, want a file under %s", f.Reproducer, want)
	}
	if _, err := os.Stat(f.Reproducer); err != nil {
		t.Errorf("reproducer: %v", err)
	}
	for _, want := range []string{"reproducer " + f.Reproducer, "replay with: go test -run '^FuzzBreaks/" + filepath.Base(f.Reproducer) + "$' example.com/failing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got error %q, want it to contain %q", err, want)
		}
	}
	if !strings.Contains(out.String(), "fuzz: 2 targets, 1 failed") {
		t.Errorf("got output without the summary line:\n%s", out.String())
	}
}

// fakeGo writes a go command that lists one target and answers each fuzz run
// with the next of runs (output, then exit status), counting the runs.
func fakeGo(t *testing.T, runs ...string) (gobin, count string) {
	t.Helper()
	dir := t.TempDir()
	count = filepath.Join(dir, "count")
	script := `#!/bin/sh
case "$1 $2" in
"list -f") echo "example.com/x ` + dir + `"; exit 0 ;;
"test -list") echo FuzzX; exit 0 ;;
esac
n=$(($(cat ` + count + ` 2>/dev/null || echo 0) + 1))
echo $n > ` + count + `
case $n in
`
	for i, r := range runs {
		script += "\t" + string(rune('1'+i)) + ") " + r + " ;;\n"
	}
	script += "esac\nexit 1\n"
	gobin = filepath.Join(dir, "go")
	if err := os.WriteFile(gobin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return gobin, count
}

const (
	passes       = `echo "fuzz: elapsed: 1s, execs: 20000 (20000/sec), new interesting: 0"; echo PASS; exit 0`
	bareDeadline = `printf -- '--- FAIL: FuzzX (5.01s)\n    context deadline exceeded\nFAIL\n'; exit 1`
	panics       = `printf -- '--- FAIL: FuzzX (0.20s)\n    --- FAIL: FuzzX (0.00s)\n        testing.go:1591: panic: index out of range\nFAIL\n'; exit 1`
)

// A bare deadline (golang/go#75804) is run once more; only a second one, or
// anything else, fails.
func TestRunRetriesBareDeadlineOnce(t *testing.T) {
	tests := []struct {
		name       string
		runs       []string
		wantRuns   string
		wantFailed bool
		wantReason string
	}{
		{"passes", []string{passes}, "1", false, ""},
		{"bare deadline then pass", []string{bareDeadline, passes}, "2", false, ""},
		{"bare deadline twice", []string{bareDeadline, bareDeadline}, "2", true, "context deadline exceeded"},
		{"panic is not retried", []string{panics, passes}, "1", true, "testing.go:1591: panic: index out of range"},
		{"bare deadline then panic", []string{bareDeadline, panics}, "2", true, "testing.go:1591: panic: index out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gobin, count := fakeGo(t, tt.runs...)
			err := fuzzrun.Run(t.Context(), fuzzrun.Options{Dir: t.TempDir(), Go: gobin})
			b, _ := os.ReadFile(count)
			if got := strings.TrimSpace(string(b)); got != tt.wantRuns {
				t.Errorf("got %s runs, want %s", got, tt.wantRuns)
			}
			fe, failed := errors.AsType[*fuzzrun.FindingsError](err)
			if failed != tt.wantFailed {
				t.Fatalf("got error %v, want failed %v", err, tt.wantFailed)
			}
			if !failed && err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if failed && fe.Findings[0].Reason != tt.wantReason {
				t.Errorf("got reason %q, want %q", fe.Findings[0].Reason, tt.wantReason)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name           string
		output         string
		written        []string
		wantKind       fuzzrun.Kind
		wantReproducer string
		wantReason     string
	}{
		{
			name:       "bare deadline",
			output:     "fuzz: elapsed: 5s, execs: 91234 (18000/sec)\n--- FAIL: FuzzReadClientCredentials (5.02s)\n    context deadline exceeded\nFAIL\nexit status 1\n",
			wantKind:   fuzzrun.BareDeadline,
			wantReason: "context deadline exceeded",
		},
		{
			name: "reproducer written",
			output: "--- FAIL: FuzzParse (0.31s)\n    --- FAIL: FuzzParse (0.00s)\n        scope_test.go:190: got 2 scopes, want 1\n\n" +
				"    Failing input written to testdata/fuzz/FuzzParse/4c3b\n    To re-run:\n    go test -run=FuzzParse/4c3b\nFAIL\n",
			wantKind:       fuzzrun.Failed,
			wantReproducer: "testdata/fuzz/FuzzParse/4c3b",
			wantReason:     "scope_test.go:190: got 2 scopes, want 1",
		},
		{
			name:           "deadline but a new corpus file",
			output:         "--- FAIL: FuzzX (5.00s)\n    context deadline exceeded\n",
			written:        []string{"/m/testdata/fuzz/FuzzX/77aa"},
			wantKind:       fuzzrun.Failed,
			wantReproducer: "/m/testdata/fuzz/FuzzX/77aa",
			wantReason:     "context deadline exceeded",
		},
		{
			name:       "panic beside the deadline",
			output:     "panic: runtime error: index out of range\n--- FAIL: FuzzX (5.00s)\n    context deadline exceeded\n",
			wantKind:   fuzzrun.Failed,
			wantReason: "context deadline exceeded",
		},
		{
			name:       "worker died",
			output:     "--- FAIL: FuzzX (1.00s)\n    fuzzing process hung or terminated unexpectedly: exit status 2\n",
			wantKind:   fuzzrun.Failed,
			wantReason: "fuzzing process hung or terminated unexpectedly: exit status 2",
		},
		{
			name:       "build failure",
			output:     "# example.com/x\n./x_test.go:3:1: syntax error\nFAIL\texample.com/x [build failed]\n",
			wantKind:   fuzzrun.Failed,
			wantReason: "# example.com/x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fuzzrun.Classify(tt.output, tt.written)
			if got.Kind != tt.wantKind || got.Reproducer != tt.wantReproducer || got.Reason != tt.wantReason {
				t.Errorf("got %+v, want {Kind:%d Reproducer:%s Reason:%s}", got, tt.wantKind, tt.wantReproducer, tt.wantReason)
			}
		})
	}
}

func TestReadBudgets(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    map[string]int
		wantErr string
	}{
		{"lines and comments", "# why\n\nexample.com/a FuzzA 300\nexample.com/b FuzzB 20000\n",
			map[string]int{"example.com/a FuzzA": 300, "example.com/b FuzzB": 20000}, ""},
		{"missing count", "example.com/a FuzzA\n", nil, "want <import path> <FuzzName> <execs>"},
		{"zero count", "example.com/a FuzzA 0\n", nil, "want a positive execution count"},
		{"duplicate", "example.com/a FuzzA 1\nexample.com/a FuzzA 2\n", nil, "listed twice"},
		{"empty", "# nothing\n", nil, "no budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "budgets")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := fuzzrun.ReadBudgets(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("got %s = %d, want %d", k, got[k], v)
				}
			}
		})
	}
}
