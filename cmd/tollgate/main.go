// Command tollgate runs the Tollgate authorization server and its
// maintenance tasks. This package owns the process: the commands and their
// flags, the configuration and key material, the logger, the signals, and
// the management CLI. The application itself (stores, OAuth 2.0 provider,
// HTTP handlers, listeners) is built and run by internal/app.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv}); err != nil {
		if !errors.Is(err, errUsage) && !errors.Is(err, errFailed) {
			fmt.Fprintln(os.Stderr, "tollgate:", err)
		}
		os.Exit(exitStatus(err))
	}
}

// env is what a command takes from its process, injected so tests can run
// commands in-process.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	// ready, when not nil, receives the public and ops addresses once serve
	// listens.
	ready func(public, ops string)
}

var errUsage = errors.New("usage")

// errHelp reports that a command printed its help as asked (-h): the
// process exits with status 0.
var errHelp = errors.New("help shown")

// parseCommandFlags parses the flags of a server command. -h and --help
// print the command's help on stdout (exit 0); a bad flag prints the error
// and the help on stderr (exit 2).
func parseCommandFlags(fs *flag.FlagSet, args []string, usage, summary string, e env) error {
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", usage, summary)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	// flag prints its own error on the output, then calls Usage.
	fs.SetOutput(e.stderr)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		help(e.stdout)
		return errHelp
	case err != nil:
		fmt.Fprintln(e.stderr)
		help(e.stderr)
		return errUsage
	}
	return nil
}

const usageText = `Usage: tollgate <command> [flags]

Commands:
  serve      run the authorization server
  migrate    apply pending database migrations
  bootstrap  create a root account, an admin user and a first client
  signing-keys rotate|list
             rotate or list the keys that sign JWT access tokens
  version    print the version

Management (talk to a running server's API; see 'tollgate <command> -h'):
  accounts   create|get|children|rename|policies|budget|disable|enable
  users      create|list|get|set-role|disable|enable|reset-password|delete
  clients    create|list|get|edit|disable|enable|rotate|delete|token|federated-add|federated-list|federated-delete
  keys       create|list|get|edit|disable|enable|rotate|delete
  audit      list
  usage      show
  webhooks   create|list|get|edit|rotate|test|deliveries|delete
  tokens     exchange

Run 'tollgate <command> -h' for a command's flags.
`

func run(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		_, _ = fmt.Fprint(e.stderr, usageText)
		return errUsage
	}
	err := dispatch(ctx, args, e)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, e env) error {
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], e)
	case "migrate":
		return migrate(ctx, args[1:], e)
	case "bootstrap":
		return bootstrap(ctx, args[1:], e)
	case "signing-keys":
		return signingKeys(ctx, args[1:], e)
	case "accounts", "users", "clients", "keys", "audit", "usage", "webhooks", "tokens":
		return runCLI(ctx, args[0], args[1:], e)
	case "version", "--version", "-v":
		fmt.Fprintln(e.stdout, "tollgate", version)
		return nil
	case "help", "-h", "--help":
		_, _ = fmt.Fprint(e.stdout, usageText)
		return nil
	default:
		fmt.Fprintf(e.stderr, "tollgate: unknown command %q\n\n%s", args[0], usageText)
		return errUsage
	}
}
