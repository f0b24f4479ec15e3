package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/tollgate/tollgate/internal/app"
)

func migrate(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configPath := fs.String("config", "", "path of a YAML configuration file")
	if err := parseCommandFlags(fs, args, "tollgate migrate [flags]", "Apply pending database migrations to the configured database (TOLLGATE_DATABASE_URL, else the\nembedded SQLite file).", e); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, e)
	if err != nil {
		return err
	}
	logger := app.NewLogger(cfg.Log, e.stderr)
	db, applied, err := app.OpenAndMigrate(ctx, cfg, true, logger)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // the migrations are committed (or their error returned) before this
	if len(applied) == 0 {
		fmt.Fprintln(e.stdout, "database schema is up to date; nothing to apply")
		return nil
	}
	fmt.Fprintf(e.stdout, "applied %d migrations: %s\n", len(applied), strings.Join(applied, ", "))
	return nil
}
