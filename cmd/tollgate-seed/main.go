// Command tollgate-seed fills a Tollgate token store with live access
// tokens for load tests at scale: .ci/bench.sh (SCALE=1) seeds one million
// tokens of 100,000 clients before it measures issuance and introspection.
//
// Tokens are minted and stored by the server's own code (tokens.Service with
// the configured token secret, on the Redis token store), so every one of
// them introspects as active for as long as its client is usable. Each token
// belongs to a client drawn at random from -clients and to -account. Many
// workers write at once, each on its own Redis connection, so the writes are
// in flight together rather than one round trip at a time.
//
// The configuration comes from the same TOLLGATE_* environment as
// `tollgate serve` (the Redis URL and key prefix, the token secret); a
// sample of the tokens, one per line, is written to -sample-out.
//
//	tollgate-seed -tokens 1000000 -clients 2-100001 -account 1 -sample 1000 -sample-out tokens.txt
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/tokens"
	tgredis "github.com/tollgate/tollgate/storage/redis"
)

// options are the command's flags.
type options struct {
	tokens     int
	firstID    int64 // client ids firstID..lastID
	lastID     int64
	account    int64
	root       int64 // the root of account's tree, which the tokens name; 0: the older format
	generation int64
	scopes     []string
	lifetime   time.Duration
	sample     int
	sampleOut  string
	workers    int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	if err := run(ctx, opts, os.LookupEnv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-seed:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("tollgate-seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.tokens, "tokens", 1_000_000, "number of tokens to mint")
	clients := fs.String("clients", "", "client ids the tokens belong to, FIRST-LAST (required)")
	fs.Int64Var(&o.account, "account", 0, "account id of those clients (required)")
	fs.Int64Var(&o.root, "root", 0, "root account of -account's tree, which the tokens name (the format the check reads with its decision); 0: the older format")
	fs.Int64Var(&o.generation, "generation", 0, "secret generation of those clients")
	scopes := fs.String("scopes", "read write", "space-separated scopes of every token")
	fs.DurationVar(&o.lifetime, "lifetime", time.Hour, "token lifetime")
	fs.IntVar(&o.sample, "sample", 1000, "number of tokens written to -sample-out")
	fs.StringVar(&o.sampleOut, "sample-out", "", "file the sample of tokens is written to, one per line")
	fs.IntVar(&o.workers, "workers", 64, "concurrent writers (and Redis connections)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fail := func(format string, a ...any) (options, error) {
		err := fmt.Errorf(format, a...)
		_, _ = fmt.Fprintln(stderr, "tollgate-seed:", err)
		return o, err
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	first, last, ok := strings.Cut(*clients, "-")
	var err1, err2 error
	o.firstID, err1 = strconv.ParseInt(first, 10, 64)
	o.lastID, err2 = strconv.ParseInt(last, 10, 64)
	if !ok || err1 != nil || err2 != nil || o.firstID <= 0 || o.lastID < o.firstID {
		return fail("-clients %q: want FIRST-LAST, two client ids", *clients)
	}
	if o.account <= 0 {
		return fail("-account: want an account id")
	}
	if o.root < 0 {
		return fail("-root: want an account id, or 0")
	}
	var err error
	if o.scopes, err = scope.Parse(*scopes); err != nil {
		return fail("-scopes: %v", err)
	}
	if o.tokens <= 0 || o.sample < 0 || o.sample > o.tokens || o.workers <= 0 || o.lifetime <= 0 {
		return fail("-tokens, -workers and -lifetime must be positive, -sample between 0 and -tokens")
	}
	if o.sample > 0 && o.sampleOut == "" {
		return fail("-sample-out is required with -sample")
	}
	return o, nil
}

func run(ctx context.Context, o options, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	cfg, err := config.Load("", lookupEnv)
	if err != nil {
		return err
	}
	if cfg.Redis.URL == "" {
		return errors.New("TOLLGATE_REDIS_URL is not set: tokens are seeded into Redis only")
	}
	keys, err := cfg.LoadKeys()
	if err != nil {
		return err
	}
	if keys.TokenSecret == nil {
		return errors.New("TOLLGATE_TOKEN_SECRET is not set")
	}
	format, err := tokens.NewOpaque(keys.TokenSecret, keys.RotatedTokenSecrets)
	if err != nil {
		return err
	}
	client, err := tgredis.NewClient(cfg.Redis.URL, tgredis.ClientOptions{PoolSize: o.workers, ReadTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer func() { _ = client.Close() }()
	store := tgredis.New(client, tgredis.Options{KeyPrefix: cfg.Redis.KeyPrefix})
	issuer := tokens.New(tokens.Options{Format: format, Tokens: store})

	// Every step-th token is kept for the sample.
	step := 0
	var sample []string
	if o.sample > 0 {
		step = o.tokens / o.sample
		sample = make([]string, o.sample)
	}
	clients := o.lastID - o.firstID + 1
	expires := time.Now().Add(o.lifetime)
	start := time.Now()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		failed  error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range o.workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < o.tokens; i = int(next.Add(1)) - 1 {
				claims := tokens.Claims{
					ClientID:   o.firstID + rand.Int64N(clients), // #nosec G404 -- a load mix, not a secret
					Generation: o.generation,
					AccountID:  o.account,
					Root:       o.root,
					GrantType:  "client_credentials",
					ExpiresAt:  expires,
				}
				tok, _, err := issuer.Issue(ctx, "", claims, o.scopes, nil)
				if err != nil {
					errOnce.Do(func() { failed = fmt.Errorf("token %d: %w", i, err); cancel() })
					return
				}
				if step > 0 && i%step == 0 && i/step < len(sample) {
					sample[i/step] = tok
				}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		return failed
	}
	took := time.Since(start)
	_, _ = fmt.Fprintf(stderr, "tollgate-seed: %d tokens of %d clients in %.1f s (%.0f tokens/s)\n",
		o.tokens, clients, took.Seconds(), float64(o.tokens)/took.Seconds())
	if o.sample == 0 {
		return nil
	}
	return os.WriteFile(o.sampleOut, []byte(strings.Join(sample, "\n")+"\n"), 0o600)
}
