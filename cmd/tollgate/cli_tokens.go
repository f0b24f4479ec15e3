package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/client"
)

// tokenResource is `tollgate tokens …`: tokens of the token endpoint, got
// with a client's or an API key's own credentials rather than a management
// token.
func tokenResource() cliResource {
	return cliResource{name: "tokens", summary: "Exchange tokens at the token endpoint (RFC 8693) with a client's or an API key's own credentials.",
		verbs: []cliVerb{tokenExchange()}}
}

func tokenExchange() cliVerb {
	return cliVerb{name: "exchange", ownAuth: true,
		usage: "(--client-id ID [--client-secret-file FILE] [--subject-token-file FILE] | --api-key-file FILE) [--account ID] [--scope S]…",
		summary: "exchange a client's access token, or an API key, for a token acting on one account and narrower scopes; " +
			"the client's secret comes from the file, else $" + config.CLIClientSecretEnv + ", an API key from the file, else $" + config.CLIAPIKeyEnv,
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			clientID := fs.String("client-id", "", "the client that authenticates and whose token is exchanged")
			secretFile := fs.String("client-secret-file", "", "file holding the client's secret (default $"+config.CLIClientSecretEnv+")")
			subjectFile := fs.String("subject-token-file", "", "file holding the client's access token to exchange (default a new token of the client)")
			keyFile := fs.String("api-key-file", "", "file holding an API key to exchange instead (default $"+config.CLIAPIKeyEnv+" when no --client-id)")
			account := fs.Int64("account", 0, "the new token acts on this account and its descendants only")
			var scopes listFlag
			fs.Var(&scopes, "scope", "the new token's scopes, no wider than the exchanged token's; repeat it or separate with spaces or commas (default the exchanged token's)")
			return func(ctx context.Context, c *cliClient, _ int64) error {
				ex := client.TokenExchange{Scopes: words(strings.Join(scopes.items, " "))}
				if c.set["account"] {
					if *account <= 0 {
						return usageErrorf("--account must be a positive integer, got %d", *account)
					}
					ex.AccountID = *account
				}
				var t *client.IssuedToken
				switch {
				case *clientID != "":
					if *keyFile != "" {
						return usageErrorf("give --client-id or --api-key-file, not both")
					}
					secret, err := readCredential(c.e, "--client-secret-file", *secretFile, config.CLIClientSecretEnv, "client secret")
					if err != nil {
						return err
					}
					if *subjectFile != "" {
						if ex.SubjectToken, err = readCredential(c.e, "--subject-token-file", *subjectFile, "", "subject token"); err != nil {
							return err
						}
					}
					api, err := c.connect(client.WithClientCredentials(*clientID, secret))
					if err != nil {
						return usageErrorf("%v", err)
					}
					if t, err = api.ExchangeToken(ctx, ex); err != nil {
						return c.fail(err)
					}
				default:
					if *secretFile != "" || *subjectFile != "" {
						return usageErrorf("--client-secret-file and --subject-token-file go with --client-id")
					}
					if v, _ := c.e.lookupEnv(config.CLIAPIKeyEnv); *keyFile == "" && strings.TrimSpace(v) == "" {
						return usageErrorf("give --client-id (its secret in --client-secret-file or $%s), or an API key in --api-key-file or $%s",
							config.CLIClientSecretEnv, config.CLIAPIKeyEnv)
					}
					key, err := readCredential(c.e, "--api-key-file", *keyFile, config.CLIAPIKeyEnv, "API key")
					if err != nil {
						return err
					}
					// The key is the exchange's only authentication; the SDK
					// client needs credentials all the same, and the key is
					// the one at hand.
					api, err := c.connect(client.WithToken(key))
					if err != nil {
						return usageErrorf("%v", err)
					}
					if t, err = api.ExchangeAPIKey(ctx, key, ex); err != nil {
						return c.fail(err)
					}
				}
				return c.printToken(t)
			}
		}}
}

// readCredential returns a secret from file, else from the variable
// envName (none when ""), trimmed of surrounding white space: never a flag
// value. Its errors are usage errors naming the flag or the variable, never
// the value.
func readCredential(e env, flagName, file, envName, what string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file) // #nosec G304 G703 -- the user names their own credential file on the command line
		if err != nil {
			return "", usageErrorf("%s: %w", flagName, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", usageErrorf("%s: the file is empty", flagName)
		}
		return v, nil
	}
	if envName != "" {
		if v, _ := e.lookupEnv(envName); strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), nil
		}
		return "", usageErrorf("no %s: give %s or set %s", what, flagName, envName)
	}
	return "", usageErrorf("no %s: give %s", what, flagName)
}

// printToken prints an issued token: its fields in a table (the token
// first, whole), or as JSON. The token goes to stdout only.
func (c *cliClient) printToken(t *client.IssuedToken) error {
	if c.json {
		// #nosec G117 -- the token is what the command was asked for: on
		// stdout, to whoever ran it, and nowhere else.
		b, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("encode the token: %w", err)
		}
		return c.printJSON(b)
	}
	tw := tabwriter.NewWriter(c.e.stdout, 0, 0, 2, ' ', 0)
	for _, f := range []struct{ name, value string }{
		{"access_token", t.AccessToken},
		{"token_type", t.TokenType},
		{"issued_token_type", t.IssuedTokenType},
		{"expires_in", strconv.FormatInt(t.ExpiresIn, 10)},
		{"scope", t.Scope},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", f.name, cell(f.value, false))
	}
	return tw.Flush()
}
