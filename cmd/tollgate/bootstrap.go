package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/grants/clientcredentials"
	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/secret"
)

// bootstrapEnvPassword names the variable that may carry the admin password.
const bootstrapEnvPassword = config.BootstrapPasswordEnv

// bootstrapResult is printed once, as one JSON object: the only time the
// password and the client secret are shown.
type bootstrapResult struct {
	AccountID    int64  `json:"account_id"`
	UserID       int64  `json:"user_id"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	ClientID     int64  `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func bootstrap(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configPath := fs.String("config", "", "path of a YAML configuration file")
	accountName := fs.String("account", "root", "name of the root account")
	username := fs.String("username", "admin", "username of the admin user")
	passwordFile := fs.String("password-file", "", "file holding the admin password (default: "+bootstrapEnvPassword+", else generated)")
	scopes := fs.String("scopes", "read write", "space-separated scopes the first client may be granted")
	clientName := fs.String("client-name", "bootstrap", "name of the first client")
	migrateFlag := fs.Bool("migrate", false, "apply pending database migrations first")
	if err := parseCommandFlags(fs, args, "tollgate bootstrap [flags]", "Create a root account, an admin user and a first client, and print their credentials once as\nJSON. The password comes from --password-file, else TOLLGATE_BOOTSTRAP_PASSWORD, else is generated.", e); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "bootstrap: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	allowed, err := scope.Parse(*scopes)
	if err != nil {
		return fmt.Errorf("--scopes: %w", err)
	}
	if *username == "" || *accountName == "" {
		return errors.New("--account and --username must not be empty")
	}
	cfg, err := loadConfig(*configPath, e)
	if err != nil {
		return err
	}
	logger := app.NewLogger(cfg.Log, e.stderr)
	password, err := bootstrapPassword(*passwordFile, e)
	if err != nil {
		return err
	}
	keys, err := resolveKeys(cfg)
	if err != nil {
		return err
	}
	hasher, err := app.NewHasher(keys)
	if err != nil {
		return err
	}
	passwords, err := secret.NewPasswords(secret.DefaultArgon2Params)
	if err != nil {
		return err
	}
	db, err := app.OpenDatabase(ctx, cfg, *migrateFlag, logger)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // the bootstrap's writes are committed (or their error returned) before this

	svc := manage.New(manage.Options{Store: db, Hasher: hasher, Passwords: passwords,
		AccessRights: app.AccessRights(cfg), DefaultAccessRights: cfg.Credentials.DefaultAccessRights})
	done, err := svc.Bootstrap(ctx, manage.BootstrapInput{AccountName: *accountName, Username: *username, Password: password,
		ClientName: *clientName, Scopes: allowed, GrantTypes: []string{clientcredentials.GrantType, cfg.Grants.EskimiDSPName}})
	if e := manage.ErrorOf(err); err != nil && e.Code == manage.Conflict {
		return fmt.Errorf("user %q already exists", *username)
	} else if err != nil {
		return e.Err
	}
	account, user, client, clientSecret := done.Account, done.User, done.Client, done.ClientSecret
	logger.Info("bootstrapped", "account_id", account.ID, "user_id", user.ID, "client_id", client.ID)
	enc := json.NewEncoder(e.stdout)
	// #nosec G117 -- the one place the generated admin password and client
	// secret are shown: on stdout, to the operator who ran the command.
	return enc.Encode(bootstrapResult{
		AccountID: account.ID, UserID: user.ID, Username: user.Username, Password: password,
		ClientID: client.ID, ClientSecret: clientSecret,
	})
}

func bootstrapPassword(file string, e env) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file) // #nosec G304 -- the operator names the password file on the command line
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		return checkPassword(strings.TrimRight(string(b), "\r\n"))
	}
	if v, ok := e.lookupEnv(bootstrapEnvPassword); ok && v != "" {
		return checkPassword(v)
	}
	return secret.Generate()
}

func checkPassword(p string) (string, error) {
	if len(p) < 12 {
		return "", errors.New("the admin password must be at least 12 characters")
	}
	if len(p) > secret.MaxPasswordLength {
		return "", secret.ErrPasswordTooLong
	}
	return p, nil
}
