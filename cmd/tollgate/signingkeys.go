package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/storage"
)

const signingKeysUsage = `Usage: tollgate signing-keys <rotate|list> [flags]

Manage the keys that sign JWT access tokens, in the configured database
(with the configured key-encryption key), like migrate: run it next to the
servers, which follow a change on their next reload.

  rotate  make a new key now; it is published at once and signs after
          signing_keys.publish_ahead, and the key it replaces stays
          published until the last token it signed has expired
  list    list the published keys and when each signs
`

// signingKeys runs `tollgate signing-keys`.
func signingKeys(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || (args[0] != "rotate" && args[0] != "list") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(e.stdout, signingKeysUsage)
			return errHelp
		}
		fmt.Fprint(e.stderr, signingKeysUsage)
		return errUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("signing-keys "+sub, flag.ContinueOnError)
	configPath := fs.String("config", "", "path of a YAML configuration file")
	if err := parseCommandFlags(fs, args[1:], "tollgate signing-keys "+sub+" [flags]", signingKeysUsage, e); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "tollgate signing-keys %s: unexpected argument %q\n", sub, fs.Arg(0))
		return errUsage
	}
	cfg, err := loadConfig(*configPath, e)
	if err != nil {
		return err
	}
	logger := app.NewLogger(cfg.Log, e.stderr)
	keys, err := resolveKeys(cfg)
	if err != nil {
		return err
	}
	db, err := app.OpenDatabase(ctx, cfg, false, logger)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // every write is committed (or its error returned) before this
	ring, err := app.SigningRing(ctx, cfg, keys, db, logger, nil)
	if err != nil {
		return err
	}
	if sub == "rotate" {
		kid, activeAt, err := ring.Rotate(ctx)
		if err != nil {
			return err
		}
		if _, err := db.AppendAudit(ctx, storage.AuditEvent{Action: "signing_key.rotate", TargetType: "signing_key",
			Outcome: "success", Detail: "kid " + kid}); err != nil {
			return errors.Join(fmt.Errorf("new signing key %s made, but not audited", kid), err)
		}
		fmt.Fprintf(e.stdout, "new signing key %s (%s) published; it signs from %s\n", kid, cfg.SigningKeys.Algorithm,
			activeAt.UTC().Format(time.RFC3339))
		return nil
	}
	all, err := db.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	signer, err := ring.Signer()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSIGNS FROM\tSTATE")
	now := time.Now()
	for _, k := range all {
		state := "retired"
		switch {
		case k.ID == signer.ID:
			state = "signing"
		case k.ActiveAt.After(now):
			state = "next"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.ActiveAt.UTC().Format(time.RFC3339), state)
	}
	return tw.Flush()
}
