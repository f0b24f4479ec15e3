// Package fuzzrun runs every fuzz target of a module, one after the other,
// each on an execution-count budget (`-fuzztime Nx`), and decides the
// verdict from what the run left behind rather than from its exit status
// alone.
//
// A duration budget (`-fuzztime 5s`) can end a target with a bare "context
// deadline exceeded" and no failing input on a loaded machine: Go 1.26's
// fuzz coordinator races its own deadline (golang/go#75804, fixed in Go
// 1.27). A count budget has no deadline to race. Should a bare deadline
// still show up (a duration given by hand), the target is run once more; a
// second one fails. A written reproducer, a panic or a failing test fails at
// once, with the reproducer's path and the command that replays it.
//
// It is test equipment: nothing in the server imports it.
package fuzzrun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultExecs is the budget of a target the budget file does not list.
const DefaultExecs = 5000

// Target is one fuzz function of one package.
type Target struct {
	// Package is the import path, Dir its directory.
	Package, Dir string
	// Name is the fuzz function's name.
	Name string
}

func (t Target) String() string { return t.Package + " " + t.Name }

// Options configures Run.
type Options struct {
	// Dir is the module's directory; Patterns the packages (default ./...).
	Dir      string
	Patterns []string
	// Budgets maps "<import path> <FuzzName>" to its execution count.
	// Targets not listed get DefaultExecs.
	Budgets map[string]int
	// FuzzTime, when set, is passed to every target instead of its budget
	// (a duration such as 30s, or a count such as 1000x).
	FuzzTime string
	// Go is the go command (default "go").
	Go string
	// Out receives the go command's output and the verdicts.
	Out io.Writer
}

// Finding is a target that failed: what failed and how to replay it.
type Finding struct {
	Target Target
	// Reproducer is the failing input the fuzzer wrote, when it wrote one.
	Reproducer string
	// Reason is the first line that says why the target failed.
	Reason string
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s: %s", f.Target, f.Reason)
	if f.Reproducer != "" {
		s += fmt.Sprintf("\n    reproducer %s\n    replay with: go test -run '^%s/%s$' %s",
			f.Reproducer, f.Target.Name, filepath.Base(f.Reproducer), f.Target.Package)
	}
	return s
}

// FindingsError is what Run returns when a target failed.
type FindingsError struct{ Findings []Finding }

func (e *FindingsError) Error() string {
	lines := make([]string, 0, len(e.Findings))
	for _, f := range e.Findings {
		lines = append(lines, f.String())
	}
	return fmt.Sprintf("%d fuzz targets failed:\n  %s", len(e.Findings), strings.Join(lines, "\n  "))
}

// Run lists the fuzz targets and runs each on its budget. It returns a
// *FindingsError naming every target that failed, or another error when the
// targets could not be listed or run at all.
func Run(ctx context.Context, o Options) error {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if len(o.Patterns) == 0 {
		o.Patterns = []string{"./..."}
	}
	targets, err := List(ctx, o)
	if err != nil {
		return err
	}
	var findings []Finding
	for _, t := range targets {
		fuzztime := o.FuzzTime
		if fuzztime == "" {
			n, ok := o.Budgets[t.String()]
			if !ok {
				n = DefaultExecs
			}
			fuzztime = strconv.Itoa(n) + "x"
		}
		if f := runTarget(ctx, o, t, fuzztime); f != nil {
			findings = append(findings, *f)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	_, _ = fmt.Fprintf(o.Out, "fuzz: %d targets, %d failed\n", len(targets), len(findings))
	if len(findings) > 0 {
		return &FindingsError{Findings: findings}
	}
	return nil
}

// List returns the fuzz targets of the packages, in package order.
func List(ctx context.Context, o Options) ([]Target, error) {
	out, err := output(ctx, o, append([]string{"list", "-f", "{{.ImportPath}} {{.Dir}}"}, o.Patterns...)...)
	if err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, out)
	}
	var targets []Target
	for line := range strings.Lines(string(out)) {
		pkg, dir, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		names, err := output(ctx, o, "test", "-list", "^Fuzz", pkg)
		if err != nil {
			return nil, fmt.Errorf("go test -list %s: %w\n%s", pkg, err, names)
		}
		for name := range strings.Lines(string(names)) {
			if name = strings.TrimSpace(name); strings.HasPrefix(name, "Fuzz") {
				targets = append(targets, Target{Package: pkg, Dir: dir, Name: name})
			}
		}
	}
	return targets, nil
}

// runTarget runs one target, once more after a bare deadline, and returns
// its finding, or nil when it passed.
func runTarget(ctx context.Context, o Options, t Target, fuzztime string) *Finding {
	for attempt := 1; ; attempt++ {
		_, _ = fmt.Fprintf(o.Out, "== %s (-fuzztime %s)\n", t, fuzztime)
		corpus := filepath.Join(t.Dir, "testdata", "fuzz", t.Name)
		before := files(corpus)
		var buf bytes.Buffer
		began := time.Now()
		err := stream(ctx, o, io.MultiWriter(o.Out, &buf),
			"test", "-run", "^$", "-fuzz", "^"+t.Name+"$", "-fuzztime", fuzztime, t.Package)
		took := time.Since(began).Round(100 * time.Millisecond)
		if err == nil {
			_, _ = fmt.Fprintf(o.Out, "-- %s passed in %v\n", t, took)
			return nil
		}
		_, _ = fmt.Fprintf(o.Out, "-- %s failed in %v\n", t, took)
		written := newFiles(corpus, before)
		v := Classify(buf.String(), written)
		if v.Kind == BareDeadline && attempt == 1 {
			_, _ = fmt.Fprintf(o.Out, "fuzz: %s ended with a bare %q and no failing input (golang/go#75804): running it once more\n", t, "context deadline exceeded")
			continue
		}
		// go test names the reproducer relative to the package.
		if v.Reproducer != "" && !filepath.IsAbs(v.Reproducer) {
			v.Reproducer = filepath.Join(t.Dir, v.Reproducer)
		}
		return &Finding{Target: t, Reproducer: v.Reproducer, Reason: v.Reason}
	}
}

// Kind says why a target's run failed.
type Kind int

const (
	// Failed is a real finding: a reproducer, a panic, a failing test, or a
	// failure no other kind explains (a build error).
	Failed Kind = iota
	// BareDeadline is the fuzz coordinator's race: "context deadline
	// exceeded" with no failing input and nothing else wrong.
	BareDeadline
)

// Verdict is what Classify makes of a failed run.
type Verdict struct {
	Kind Kind
	// Reproducer is the failing input's path, when one was written.
	Reproducer string
	// Reason is the line that says why.
	Reason string
}

var failingInput = regexp.MustCompile(`Failing input written to (\S+)`)

// Classify reads the output of a failed `go test -fuzz` run and the files
// it added to the target's corpus directory.
func Classify(output string, written []string) Verdict {
	v := Verdict{Kind: Failed, Reason: firstFailure(output)}
	if m := failingInput.FindStringSubmatch(output); m != nil {
		v.Reproducer = m[1]
	} else if len(written) > 0 {
		v.Reproducer = written[0]
	}
	if v.Reproducer != "" {
		return v
	}
	if strings.Contains(output, "panic:") || strings.Contains(output, "fuzzing process hung or terminated unexpectedly") {
		return v
	}
	if v.Reason == "context deadline exceeded" {
		v.Kind = BareDeadline
	}
	return v
}

// firstFailure returns the first line under "--- FAIL:" that says why, or
// the first line of output when there is none (a build error).
func firstFailure(output string) string {
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	first, inFail := "", false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if first == "" {
			first = line
		}
		if strings.HasPrefix(line, "--- FAIL:") {
			inFail = true
			continue
		}
		if inFail && !strings.HasPrefix(line, "fuzz:") {
			return line
		}
	}
	return first
}

func files(dir string) map[string]bool {
	entries, _ := os.ReadDir(dir)
	out := make(map[string]bool, len(entries))
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

func newFiles(dir string, before map[string]bool) []string {
	var out []string
	for name := range files(dir) {
		if !before[name] {
			out = append(out, filepath.Join(dir, name))
		}
	}
	sort.Strings(out)
	return out
}

// output runs the go command and returns what it printed.
func output(ctx context.Context, o Options, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir = o.Dir
	return cmd.CombinedOutput()
}

// stream runs the go command with its output going to w.
func stream(ctx context.Context, o Options, w io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = w, w
	return cmd.Run()
}

// ReadBudgets reads a budget file: one "<import path> <FuzzName> <execs>"
// per line; blank lines and lines starting with # are skipped.
func ReadBudgets(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fuzz budgets: %w", err)
	}
	out := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want <import path> <FuzzName> <execs>, got %q", path, i+1, line)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s:%d: want a positive execution count, got %q", path, i+1, f[2])
		}
		key := f[0] + " " + f[1]
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%s:%d: %s listed twice", path, i+1, key)
		}
		out[key] = n
	}
	if len(out) == 0 {
		return nil, errors.New("read fuzz budgets: no budget in " + path)
	}
	return out, nil
}
