package main

import (
	"context"
	"flag"
	"fmt"
)

func migrate(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configPath := fs.String("config", "", "path of a YAML configuration file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, err := loadConfig(*configPath, e)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, e.stderr)
	db, err := openDatabase(ctx, cfg, true, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintln(e.stdout, "database schema is up to date")
	return nil
}
