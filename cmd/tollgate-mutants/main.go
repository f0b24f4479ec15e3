// Command tollgate-mutants checks that the tests guard the rules they are
// written for: it applies one-line mutants — a rule deliberately broken —
// one at a time, each through the go command's -overlay flag (the working
// tree is never touched and nothing is copied), and runs the test named for
// each, which must fail. It fails if a mutant survives, if a mutant's
// original text is no longer in its file (the code moved on: update the
// list), if a mutant does not compile, or if a test fails without its
// mutant (a failure that proves nothing). `make test-mutations` runs it on
// .ci/mutants.txt; the list's format is described at its top.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	listPath := flag.String("list", ".ci/mutants.txt", "the mutants `file`")
	run := flag.String("run", "", "only the mutants whose name matches this `regexp`")
	baseline := flag.Bool("baseline", true, "first run each test without its mutant, which must pass")
	timeout := flag.Duration("timeout", 10*time.Minute, "the longest one test run may take")
	verbose := flag.Bool("v", false, "print the output of every test run")
	quick := flag.Bool("quick", false, "only the mutants marked `quick: yes`")
	flag.Parse()
	if err := mutate(*listPath, *run, *quick, *baseline, *timeout, *verbose, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-mutants:", err)
		os.Exit(1)
	}
}

// mutant is one deliberate break and the test that must catch it.
type mutant struct {
	name, file, from, to, test string
	quick                      bool // run by -quick
	line                       int  // in the list, for messages
}

// parse reads the list: blocks of "key: value" lines separated by blank
// lines, # starting a comment line.
func parse(r io.Reader) ([]mutant, error) {
	var (
		out  []mutant
		cur  mutant
		errs []error
	)
	flush := func() {
		if cur == (mutant{}) {
			return
		}
		var missing []string
		for _, f := range []struct{ key, value string }{{"name", cur.name}, {"file", cur.file}, {"from", cur.from}, {"to", cur.to}, {"test", cur.test}} {
			if f.value == "" {
				missing = append(missing, f.key)
			}
		}
		switch {
		case missing != nil:
			errs = append(errs, fmt.Errorf("line %d: mutant %q lacks %s", cur.line, cur.name, strings.Join(missing, ", ")))
		case cur.from == cur.to:
			errs = append(errs, fmt.Errorf("line %d: mutant %q changes nothing", cur.line, cur.name))
		case !strings.HasPrefix(cur.test, "go test "):
			errs = append(errs, fmt.Errorf("line %d: mutant %q: the test must be a `go test …` command", cur.line, cur.name))
		default:
			out = append(out, cur)
		}
		cur = mutant{}
	}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			flush()
			continue
		case strings.HasPrefix(trimmed, "#"):
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: want `key: value`", n))
			continue
		}
		// One space after the colon separates; the rest is the value as
		// is, leading tabs of Go code included.
		value = strings.TrimPrefix(value, " ")
		if cur.line == 0 {
			cur.line = n
		}
		switch strings.TrimSpace(key) {
		case "name":
			cur.name = value
		case "file":
			cur.file = value
		case "from":
			cur.from = value
		case "to":
			cur.to = value
		case "test":
			cur.test = value
		case "quick":
			if value != "yes" {
				errs = append(errs, fmt.Errorf("line %d: quick: want yes", n))
			}
			cur.quick = true
		default:
			errs = append(errs, fmt.Errorf("line %d: unknown key %q", n, key))
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, errors.Join(errs...)
}

// result is how one mutant fared.
type result struct {
	m       mutant
	verdict string // killed, SURVIVED, NOT FOUND, AMBIGUOUS, NO BUILD, NO TESTS, ERROR
	took    time.Duration
	output  string
}

func (r result) ok() bool { return r.verdict == "killed" }

func mutate(listPath, run string, quick, baseline bool, timeout time.Duration, verbose bool, stdout io.Writer) error {
	f, err := os.Open(listPath)
	if err != nil {
		return err
	}
	mutants, err := parse(f)
	_ = f.Close() // read-only: parse has already read all it needs
	if err != nil {
		return fmt.Errorf("%s: %w", listPath, err)
	}
	re, err := regexp.Compile(run)
	if err != nil {
		return fmt.Errorf("-run: %w", err)
	}
	var kept []mutant
	for _, m := range mutants {
		if re.MatchString(m.name) && (m.quick || !quick) {
			kept = append(kept, m)
		}
	}
	mutants = kept
	if len(mutants) == 0 {
		return errors.New("no mutant to run")
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tollgate-mutants-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }() // best effort: a leftover temporary directory fails nothing
	start := time.Now()

	var failures []string
	if baseline {
		seen := map[string]bool{}
		for _, m := range mutants {
			if seen[m.test] {
				continue
			}
			seen[m.test] = true
			t0 := time.Now()
			out, err := goTest(m.test, "", timeout)
			_, _ = fmt.Fprintf(stdout, "baseline %-70s %6.1fs %s\n", m.test, time.Since(t0).Seconds(), passFail(err))
			switch {
			case err != nil:
				failures = append(failures, fmt.Sprintf("the test %q fails without any mutant:\n%s", m.test, tail(out, 40)))
			case ranNothing(out):
				failures = append(failures, fmt.Sprintf("the test %q runs no test: check its -run pattern", m.test))
			}
		}
		if failures != nil {
			return errors.New(strings.Join(failures, "\n"))
		}
	}

	var results []result
	for i, m := range mutants {
		r := apply(root, dir, i, m, timeout)
		results = append(results, r)
		fmt.Fprintf(stdout, "%-9s %-60s %6.1fs\n", r.verdict, m.name, r.took.Seconds())
		if verbose || !r.ok() {
			if r.output != "" {
				_, _ = fmt.Fprintln(stdout, tail(r.output, 40)) // a report writer that fails has no one left to tell
			}
		}
		if !r.ok() {
			failures = append(failures, fmt.Sprintf("%s (%s, list line %d): %s", m.name, m.file, m.line, r.verdict))
		}
	}

	_, _ = fmt.Fprintln(stdout) // as above; the exit status carries the verdict
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "mutant\ttest\tkilled\tseconds")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\n", r.m.name, r.m.test, r.verdict, r.took.Seconds())
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "%d mutants, %d killed, in %.0fs\n", len(results), len(results)-len(failures), time.Since(start).Seconds())
	if failures != nil {
		return fmt.Errorf("%d of %d mutants not killed:\n  %s", len(failures), len(results), strings.Join(failures, "\n  "))
	}
	return nil
}

// apply runs m's test with m applied through an overlay.
func apply(root, dir string, i int, m mutant, timeout time.Duration) result {
	r := result{m: m}
	path := filepath.Join(root, filepath.FromSlash(m.file))
	src, err := os.ReadFile(path)
	if err != nil {
		r.verdict, r.output = "ERROR", err.Error()
		return r
	}
	switch n := strings.Count(string(src), m.from); n {
	case 0:
		r.verdict = "NOT FOUND"
		return r
	case 1:
	default:
		r.verdict, r.output = "AMBIGUOUS", fmt.Sprintf("the original text occurs %d times", n)
		return r
	}
	mutated := filepath.Join(dir, fmt.Sprintf("%d-%s", i, filepath.Base(path)))
	if err := os.WriteFile(mutated, []byte(strings.Replace(string(src), m.from, m.to, 1)), 0o600); err != nil {
		r.verdict, r.output = "ERROR", err.Error()
		return r
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {path: mutated}})
	if err != nil {
		r.verdict, r.output = "ERROR", err.Error()
		return r
	}
	overlayPath := filepath.Join(dir, fmt.Sprintf("%d-overlay.json", i))
	if err := os.WriteFile(overlayPath, overlay, 0o600); err != nil {
		r.verdict, r.output = "ERROR", err.Error()
		return r
	}
	t0 := time.Now()
	out, err := goTest(m.test, overlayPath, timeout)
	r.took, r.output = time.Since(t0), out
	switch {
	case err == nil && ranNothing(out):
		r.verdict = "NO TESTS"
	case err == nil:
		r.verdict = "SURVIVED"
	case buildFailed(out):
		r.verdict = "NO BUILD"
	case errors.Is(err, context.DeadlineExceeded):
		r.verdict = "ERROR"
		r.output = "timed out after " + timeout.String() + "\n" + out
	default:
		r.verdict = "killed"
	}
	return r
}

// goTest runs test, a `go test …` command line, with overlay (when not
// empty) as the go command's -overlay file. The overlay goes in GOFLAGS, so
// that the go commands a test runs itself (the tests that build the binary
// and start processes) build the mutant too.
func goTest(test, overlay string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// The list's commands are shell words (quoted -run patterns).
	cmd := exec.CommandContext(ctx, "bash", "-c", "exec "+test) // #nosec G204 -- the command comes from the repository's own list
	cmd.Env = os.Environ()
	if overlay != "" {
		if strings.ContainsAny(overlay, " \t\n") {
			return "", fmt.Errorf("the overlay path %q holds a space, which GOFLAGS cannot carry", overlay)
		}
		cmd.Env = append(cmd.Env, "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -overlay="+overlay))
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), ctx.Err()
	}
	return string(out), err
}

// buildFailed reports whether go test failed before running any test: a
// mutant that does not compile proves nothing about the tests.
func buildFailed(out string) bool {
	return strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]") ||
		goError.MatchString(out) && !strings.Contains(out, "--- FAIL")
}

// goError is a line of the go command's own errors (a bad flag, an
// unreadable overlay).
var goError = regexp.MustCompile(`(?m)^go: `)

// ranNothing reports whether go test ran no test at all: a -run pattern
// that matches nothing passes, and would let every mutant survive unseen or,
// worse, pass a baseline that proves nothing.
func ranNothing(out string) bool {
	return strings.Contains(out, "[no tests to run]") || strings.Contains(out, "testing: warning: no tests to run")
}

func passFail(err error) string {
	if err != nil {
		return "FAIL"
	}
	return "ok"
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
