// Command tollgate-fuzz runs every fuzz target of the module on the
// execution-count budget listed for it in a budget file (.ci/fuzz-budgets),
// so that CI's fuzz pass fails only for a finding: a written reproducer, a
// panic or a failing test, reported with the command that replays it. See
// internal/fuzzrun for why counts and not durations. `make fuzz` runs it;
// FUZZTIME=30s make fuzz gives every target a duration instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tollgate/tollgate/internal/fuzzrun"
)

func main() {
	budgets := flag.String("budgets", ".ci/fuzz-budgets", "file of per-target execution counts")
	fuzztime := flag.String("fuzztime", "", "give every target this -fuzztime instead of its budget (30s, 5000x)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *budgets, *fuzztime, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "fuzz:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, budgetFile, fuzztime string, patterns []string) error {
	o := fuzzrun.Options{Dir: ".", Patterns: patterns, FuzzTime: fuzztime, Out: os.Stdout}
	if fuzztime == "" {
		b, err := fuzzrun.ReadBudgets(budgetFile)
		if err != nil {
			return err
		}
		o.Budgets = b
	}
	return fuzzrun.Run(ctx, o)
}
