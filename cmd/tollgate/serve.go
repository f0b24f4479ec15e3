package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/pkg/tracing"
)

// tracingFlushTimeout bounds the sending of the last spans at exit.
const tracingFlushTimeout = 5 * time.Second

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
	// Tracing first, so that the stores opened next are instrumented when it
	// is on (OTEL_TRACES_EXPORTER; docs/configuration.md).
	stopTracing, err := tracing.Setup(ctx, tracing.Options{ServiceVersion: version, Logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		// At exit: the spans still buffered are sent, within a bound.
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
		defer cancel()
		if err := stopTracing(flushCtx); err != nil {
			logger.Warn("tracing: spans lost at exit", "err", err)
		}
	}()
	if tracing.Enabled() {
		logger.Info("tracing on", "exporter", os.Getenv(tracing.EnvExporter))
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
