package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/app"
)

func serve(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configPath := fs.String("config", "", "path of a YAML configuration file")
	migrateFlag := fs.Bool("migrate", false, "apply pending database migrations before serving")
	if err := parseCommandFlags(fs, args, "tollgate serve [flags]", "Run the authorization server: the public listener (OAuth endpoints, /auth/check, the\nmanagement API, the console) and the ops listener (/metrics, /healthz, /readyz). SIGTERM drains\nin-flight requests. Settings come from --config and TOLLGATE_* variables (docs/configuration.md).", e); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, e)
	if err != nil {
		return err
	}
	logger, closeLog := newServeLogger(cfg.Log, e.stderr)
	defer closeLog()
	goredis.SetLogger(redisLog{logger})
	keys, err := resolveKeys(cfg)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, app.Options{Keys: keys, Migrate: *migrateFlag, Logger: logger, Version: version})
	if err != nil {
		return err
	}
	defer func() { _ = a.Close() }() // at exit: the listeners have drained, nothing is left to write
	return a.Run(ctx, app.RunOptions{Ready: e.ready, Hangups: hangups, Notice: e.stderr})
}

// hangups registers for SIGHUP at once, so that a signal sent as soon as
// the server says it is ready is not lost (nor kills the process), and
// answers the channel and its stop function.
func hangups() (<-chan os.Signal, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}
