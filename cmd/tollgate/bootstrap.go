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
	"github.com/tollgate/tollgate/pkg/admin"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/scope"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
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

	// Refuse before writing anything, so a taken username leaves no orphan
	// account behind.
	if _, err := db.GetUserByUsername(ctx, *username); err == nil {
		return fmt.Errorf("user %q already exists", *username)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("look up user: %w", err)
	}

	passwordHash, err := passwords.Hash(password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	clientSecret, err := secret.Generate()
	if err != nil {
		return err
	}
	secretHash, err := hasher.Hash(ctx, []byte(clientSecret))
	if err != nil {
		return err
	}

	// One transaction: a failure leaves no account or user behind whose
	// password was never shown.
	var account storage.Account
	var user storage.User
	var client storage.Client
	err = db.InTx(ctx, func(tx storage.Store) error {
		var err error
		if account, err = tx.CreateAccount(ctx, storage.Account{Name: *accountName, Status: storage.StatusActive}); err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		if user, err = tx.CreateUser(ctx, storage.User{AccountID: account.ID, Username: *username,
			PasswordHash: passwordHash, Role: storage.RoleAdmin, Status: storage.StatusActive}); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		client, err = tx.CreateClient(ctx, storage.Client{
			AccountID:     account.ID,
			OwnerID:       user.ID,
			Kind:          storage.KindClient,
			Name:          *clientName,
			Description:   "Created by tollgate bootstrap.",
			SecretHash:    string(secretHash),
			SecretHint:    apikey.Hint(clientSecret),
			GrantTypes:    []string{clientcredentials.GrantType, cfg.Grants.EskimiDSPName},
			Scopes:        allowed,
			MayIntrospect: true,
			Status:        storage.StatusActive,
			CreatedBy:     user.ID,
		})
		if err != nil {
			return fmt.Errorf("create client: %w", err)
		}
		// Every user has a default API key.
		rights := cfg.Credentials.DefaultAccessRights
		if _, err := admin.CreateDefaultKey(ctx, tx, hasher, user.ID, account.ID, rights,
			strings.Fields(cfg.Credentials.AccessRights[rights])); err != nil {
			return fmt.Errorf("create default key: %w", err)
		}
		_, err = tx.AppendAudit(ctx, storage.AuditEvent{AccountID: account.ID, Action: "account.bootstrap",
			TargetType: "account", TargetID: account.ID, Outcome: "success",
			Detail: fmt.Sprintf("root account, admin user %d and client %d created by tollgate bootstrap", user.ID, client.ID)})
		return err
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return fmt.Errorf("user %q already exists", *username)
	}
	if err != nil {
		return err
	}
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
