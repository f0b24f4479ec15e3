package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/client"
)

// Views of the API's resources as tables.
var (
	accountTable = cliView{
		noun:    "accounts",
		columns: []string{"id", "parent_id", "name", "status", "created_at", "updated_at"},
		fields:  []string{"id", "parent_id", "name", "status", "created_at", "updated_at", "version"},
	}
	accountPolicyTable = cliView{
		noun:    "accounts",
		columns: []string{"id", "name", "policies", "effective_policies"},
		fields:  []string{"id", "name", "policies", "effective_policies", "version"},
	}
	accountBudgetTable = cliView{
		noun:    "accounts",
		columns: []string{"id", "name", "budget", "quota_usage"},
		fields:  []string{"id", "name", "budget", "quota_usage", "version"},
	}
	userTable = cliView{
		noun:    "users",
		columns: []string{"id", "account_id", "username", "role", "status", "created_at"},
		fields:  []string{"id", "account_id", "username", "role", "status", "created_at", "updated_at", "version"},
	}
	clientTable = cliView{
		noun: "clients",
		columns: []string{"id", "name", "description", "secret_hint", "access_rights", "scopes", "grant_types", "status",
			"owner_id", "created_by", "created_at", "last_used_at", "expires_at"},
		fields: []string{"id", "kind", "account_id", "owner_id", "name", "description", "access_rights", "scopes",
			"grant_types", "may_introspect", "token_lifetime", "reuse_tokens", "access_token_strategy", "dpop_bound_access_tokens", "token_endpoint_auth_method", "jwks_uri", "rate_limits", "quota", "quota_usage", "allowed_cidrs", "status", "disabled_reason", "secret_hint", "expires_at", "last_used_at",
			"previous_secret_retire_at", "created_by", "created_at", "updated_at", "version"},
	}
	keyTable = cliView{
		noun: "keys",
		columns: []string{"id", "name", "description", "key_hint", "is_default", "access_rights", "scopes", "status",
			"owner_id", "created_by", "created_at", "last_used_at", "expires_at"},
		fields: []string{"id", "kind", "account_id", "owner_id", "is_default", "name", "description", "access_rights",
			"scopes", "grant_types", "may_introspect", "token_lifetime", "access_token_strategy", "dpop_bound_access_tokens", "rate_limits", "quota", "quota_usage", "allowed_cidrs", "status", "disabled_reason", "key_hint", "secret_hint", "expires_at", "last_used_at",
			"previous_secret_retire_at", "created_by", "created_at", "updated_at", "version"},
	}
	auditTable = cliView{
		noun: "events",
		columns: []string{"id", "time", "account_id", "actor_user_id", "actor_client_id", "action", "target_type",
			"target_id", "outcome", "remote_addr", "detail"},
	}
	usageTable = cliView{
		noun:    "usage rows",
		columns: []string{"time", "credential_id", "rate_class", "outcome", "count"},
	}
	clientTokenTable = cliView{fields: []string{"token_type", "expires_in", "expires_at", "scope"}}
)

func cliResources() []cliResource {
	return []cliResource{
		{name: "accounts", summary: "Manage accounts and sub-accounts.", verbs: []cliVerb{
			accountCreate(),
			getVerb("show an account", accountTable, func(ctx context.Context, api *client.Client, id int64) ([]byte, error) {
				return rawAccount(api.GetAccount(ctx, id))
			}),
			accountChildren(),
			accountRename(),
			accountPolicies(),
			accountBudget(),
			statusVerb("disable", "disable an account: its subtree's credentials and tokens stop working", accountTable,
				func(ctx context.Context, api *client.Client, id int64, ifMatch string) ([]byte, error) {
					return rawAccount(api.DisableAccount(ctx, id, ifMatch))
				}),
			statusVerb("enable", "enable an account", accountTable,
				func(ctx context.Context, api *client.Client, id int64, ifMatch string) ([]byte, error) {
					return rawAccount(api.EnableAccount(ctx, id, ifMatch))
				}),
		}},
		{name: "users", summary: "Manage users.", verbs: []cliVerb{
			userCreate(),
			userList(),
			getVerb("show a user", userTable, func(ctx context.Context, api *client.Client, id int64) ([]byte, error) {
				return rawUser(api.GetUser(ctx, id))
			}),
			userSetRole(),
			statusVerb("disable", "disable a user", userTable,
				func(ctx context.Context, api *client.Client, id int64, ifMatch string) ([]byte, error) {
					return rawUser(api.DisableUser(ctx, id, ifMatch))
				}),
			statusVerb("enable", "enable a user", userTable,
				func(ctx context.Context, api *client.Client, id int64, ifMatch string) ([]byte, error) {
					return rawUser(api.EnableUser(ctx, id, ifMatch))
				}),
			userResetPassword(),
			deleteVerb("user", "delete a user", func(ctx context.Context, api *client.Client, id int64, ifMatch string) (int64, error) {
				return 0, api.DeleteUser(ctx, id, ifMatch)
			}),
		}},
		credentialResource("clients", "Manage API clients (client id and secret).", clientTable, clientCalls),
		credentialResource("keys", "Manage API keys (one tgk_… string).", keyTable, keyCalls),
		{name: "audit", summary: "Read the audit trail.", verbs: []cliVerb{auditList()}},
		{name: "usage", summary: "Read the usage of a credential or of an account's subtree.", verbs: []cliVerb{usageShow()}},
		webhookResource(),
		tokenResource(),
	}
}

// The JSON of a record the SDK returned, as the server sent it.

func rawAccount(a *client.Account, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return a.Raw, nil
}

func rawUser(u *client.User, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return u.Raw, nil
}

func rawCredential(c *client.Credential, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return c.Raw, nil
}

func rawWithSecret(c *client.CredentialWithSecret, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return c.Raw, nil
}

func rawList[T any](l *client.List[T], err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return l.Raw, nil
}

// pageFlags are --after and --limit.
type pageFlags struct{ after, limit int64 }

func (p *pageFlags) define(fs *flag.FlagSet) {
	fs.Int64Var(&p.after, "after", 0, "start after this id (the `next` of the previous page)")
	fs.Int64Var(&p.limit, "limit", 0, "page size, 1–100 (default the server's, 20)")
}

func (p *pageFlags) page() client.Page {
	return client.Page{After: p.after, Limit: int(p.limit)}
}

// show prints the record raw returns: as a record, or through fail.
func (c *cliClient) show(raw []byte, err error, v cliView) error {
	if err != nil {
		return c.fail(err)
	}
	return c.printRecord(raw, v)
}

// showList prints the page raw returns: as a list, or through fail.
func (c *cliClient) showList(raw []byte, err error, v cliView) error {
	if err != nil {
		return c.fail(err)
	}
	return c.printList(raw, v)
}

func getVerb(summary string, v cliView, get func(context.Context, *client.Client, int64) ([]byte, error)) cliVerb {
	return cliVerb{name: "get", args: "ID", summary: summary,
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			return func(ctx context.Context, c *cliClient, id int64) error {
				raw, err := get(ctx, c.api, id)
				return c.show(raw, err, v)
			}
		}}
}

// statusVerb is enable or disable.
func statusVerb(name, summary string, v cliView, set func(context.Context, *client.Client, int64, string) ([]byte, error)) cliVerb {
	return cliVerb{name: name, args: "ID", usage: "[--if-match ETAG]", summary: summary,
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				raw, err := set(ctx, c.api, id, *ifMatch)
				return c.show(raw, err, v)
			}
		}}
}

// deleteVerb deletes with del, which returns the id of a key replacing the
// deleted one (a user's default key), else 0.
func deleteVerb(noun, summary string, del func(context.Context, *client.Client, int64, string) (int64, error)) cliVerb {
	return cliVerb{name: "delete", args: "ID", usage: "[--if-match ETAG]", summary: summary,
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				replacement, err := del(ctx, c.api, id, *ifMatch)
				if err != nil {
					return c.fail(err)
				}
				c.printDone("deleted %s %d", noun, id)
				if replacement != 0 {
					c.printDone("it was the owner's default key: the new default key is %d", replacement)
				}
				return nil
			}
		}}
}

func ifMatchFlag(fs *flag.FlagSet) *string {
	return fs.String("if-match", "", "refuse the change unless the record's version (ETag) is this one")
}

// ---------------------------------------------------------------- accounts

func accountCreate() cliVerb {
	return cliVerb{name: "create", usage: "--name NAME [--parent ID]", summary: "create a sub-account",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			name := fs.String("name", "", "name of the account (required)")
			parent := fs.Int64("parent", 0, "parent account (default your own)")
			return func(ctx context.Context, c *cliClient, _ int64) error {
				in := client.AccountCreate{Name: *name}
				if c.set["parent"] {
					in.ParentID = *parent
				}
				raw, err := rawAccount(c.api.CreateAccount(ctx, in))
				return c.show(raw, err, accountTable)
			}
		}}
}

func accountChildren() cliVerb {
	return cliVerb{name: "children", args: "ID", usage: "[--after ID] [--limit N]", summary: "list an account's direct children",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var p pageFlags
			p.define(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				raw, err := rawList(c.api.ListAccountChildren(ctx, id, p.page()))
				return c.showList(raw, err, accountTable)
			}
		}}
}

func accountRename() cliVerb {
	return cliVerb{name: "rename", args: "ID", usage: "--name NAME [--if-match ETAG]", summary: "rename an account",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			name := fs.String("name", "", "the new name (required)")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				if !c.set["name"] {
					return usageErrorf("--name is required")
				}
				raw, err := rawAccount(c.api.UpdateAccount(ctx, id, client.AccountUpdate{Name: name, IfMatch: *ifMatch}))
				return c.show(raw, err, accountTable)
			}
		}}
}

// policyValue reads a policy flag: "inherit" makes the account inherit,
// else the value is one of allowed, read by parse.
func policyValue[T any](flagName, s string, parse func(string) T, allowed ...string) (client.Setting[T], error) {
	if s == "inherit" {
		return client.Inherit[T](), nil
	}
	if !slices.Contains(allowed, s) {
		return client.Setting[T]{}, usageErrorf("--%s must be %s or inherit, got %q", flagName, strings.Join(allowed, ", "), s)
	}
	return client.Set(parse(s)), nil
}

func accountPolicies() cliVerb {
	return cliVerb{name: "policies", args: "ID", usage: "[--require-password-for-new-keys true|false|inherit] [--keys-managed-by anyone|admins|inherit] [--leaked-key-action disable|notify|inherit] [--if-match ETAG]",
		summary: "show or set an account's policies (sub-accounts inherit what they do not set)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			password := fs.String("require-password-for-new-keys", "", "creating a client or key asks for the creator's password: true, false, or inherit")
			managed := fs.String("keys-managed-by", "", "who manages clients and keys: anyone (their own), admins, or inherit")
			leaked := fs.String("leaked-key-action", "", "what happens to a credential reported leaked by secret scanning: disable, notify (left working), or inherit")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				var change client.PolicyChange
				var err error
				if c.set["require-password-for-new-keys"] {
					change.RequirePasswordForNewKeys, err = policyValue("require-password-for-new-keys", *password,
						func(s string) bool { return s == "true" }, "true", "false")
					if err != nil {
						return err
					}
				}
				if c.set["keys-managed-by"] {
					change.KeysManagedBy, err = policyValue("keys-managed-by", *managed, func(s string) string { return s }, "anyone", "admins")
					if err != nil {
						return err
					}
				}
				if c.set["leaked-key-action"] {
					change.LeakedKeyAction, err = policyValue("leaked-key-action", *leaked, func(s string) string { return s }, "disable", "notify")
					if err != nil {
						return err
					}
				}
				var raw []byte
				if change == (client.PolicyChange{}) {
					raw, err = rawAccount(c.api.GetAccount(ctx, id))
				} else {
					raw, err = rawAccount(c.api.UpdateAccount(ctx, id, client.AccountUpdate{Policies: &change, IfMatch: *ifMatch}))
				}
				return c.show(raw, err, accountPolicyTable)
			}
		}}
}

func accountBudget() cliVerb {
	return cliVerb{name: "budget", args: "ID", usage: "[--budget-rate CLASS=RATE[:BURST]]… [--budget-quota N/day|N/month|none] [--remove] [--if-match ETAG]",
		summary: "show or set what an account's whole subtree may use together (admins of a parent account)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var rates listFlag
			fs.Var(&rates, "budget-rate", "a per-second limit of a rate class over the subtree, class=rate[:burst]; repeat it or separate with commas; none removes them")
			quota := fs.String("budget-quota", "", "most calls of the subtree per UTC day or month, N/day or N/month, or none")
			remove := fs.Bool("remove", false, "remove the account's budget")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				if !c.set["budget-rate"] && !c.set["budget-quota"] && !c.set["remove"] {
					raw, err := rawAccount(c.api.GetAccount(ctx, id))
					return c.show(raw, err, accountBudgetTable)
				}
				if *remove {
					if c.set["budget-rate"] || c.set["budget-quota"] {
						return usageErrorf("--remove goes alone")
					}
					raw, err := rawAccount(c.api.UpdateAccount(ctx, id, client.AccountUpdate{Budget: client.Remove[client.Budget](), IfMatch: *ifMatch}))
					return c.show(raw, err, accountBudgetTable)
				}
				// A budget is replaced whole: what the flags leave out is
				// kept from the current one.
				cur, err := c.api.GetAccount(ctx, id)
				if err != nil {
					return c.show(nil, err, accountBudgetTable)
				}
				var b client.Budget
				if cur.Budget != nil {
					b = *cur.Budget
				}
				if c.set["budget-rate"] {
					limits, err := parseRateLimits(strings.Join(rates.values(), ","))
					if err != nil {
						return usageErrorf("--budget-rate: %s", strings.TrimPrefix(err.Error(), "--rate-limits: "))
					}
					b.RateLimits = limits
				}
				if c.set["budget-quota"] {
					if b.Quota, err = parseQuota("budget-quota", *quota); err != nil {
						return err
					}
				}
				raw, err := rawAccount(c.api.UpdateAccount(ctx, id, client.AccountUpdate{Budget: client.Set(b), IfMatch: *ifMatch}))
				return c.show(raw, err, accountBudgetTable)
			}
		}}
}

// parseQuota reads flag value v, "N/day" or "N/month", or "none" (nil).
func parseQuota(flagName, v string) (*client.Quota, error) {
	v = strings.TrimSpace(v)
	if v == "none" {
		return nil, nil
	}
	n, period, ok := strings.Cut(v, "/")
	limit, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	if !ok || err != nil || (period != client.QuotaDay && period != client.QuotaMonth) {
		return nil, usageErrorf("--%s: want N/day, N/month or none, got %q", flagName, v)
	}
	return &client.Quota{Limit: limit, Period: period}, nil
}

// listFlag is a flag given several times, or once with commas: each value
// an item; "none" alone is the empty list.
type listFlag struct{ items []string }

func (l *listFlag) String() string { return strings.Join(l.items, ",") }

// Set implements flag.Value.
func (l *listFlag) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			l.items = append(l.items, item)
		}
	}
	return nil
}

// values returns the items given, a non-nil empty list for "none".
func (l *listFlag) values() []string {
	if len(l.items) == 1 && l.items[0] == "none" {
		return []string{}
	}
	if l.items == nil {
		return []string{}
	}
	return l.items
}

// ---------------------------------------------------------------- users

func userCreate() cliVerb {
	return cliVerb{name: "create", usage: "--username NAME [--account ID] [--role admin|member] [--password-file FILE]",
		summary: "create a user (and the user's default API key)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			username := fs.String("username", "", "the user's login name (required)")
			account := fs.Int64("account", 0, "the user's account (default your own)")
			role := fs.String("role", "", "admin or member (default member)")
			passwordFile := fs.String("password-file", "", "file holding the password (default $TOLLGATE_PASSWORD, else asked on the terminal)")
			return func(ctx context.Context, c *cliClient, _ int64) error {
				if !c.set["username"] {
					return usageErrorf("--username is required")
				}
				password, err := readPassword(c.e, *passwordFile, "Password of "+*username, true)
				if err != nil {
					return err
				}
				in := client.UserCreate{Username: *username, Password: password, AccountID: *account, Role: client.Role(*role)}
				raw, err := rawUser(c.api.CreateUser(ctx, in))
				return c.show(raw, err, userTable)
			}
		}}
}

func userList() cliVerb {
	return cliVerb{name: "list", usage: "[--account ID [--subtree]] [--after ID] [--limit N]",
		summary: "list users (default: of your account and its whole subtree)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			account := fs.Int64("account", 0, "only users of this account")
			subtree := fs.Bool("subtree", false, "with --account, include the account's descendants")
			var p pageFlags
			p.define(fs)
			return func(ctx context.Context, c *cliClient, _ int64) error {
				raw, err := rawList(c.api.ListUsers(ctx, client.UserFilter{AccountID: *account, Subtree: *subtree, Page: p.page()}))
				return c.showList(raw, err, userTable)
			}
		}}
}

func userSetRole() cliVerb {
	return cliVerb{name: "set-role", args: "ID", usage: "--role admin|member [--if-match ETAG]", summary: "change a user's role",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			role := fs.String("role", "", "admin or member (required)")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				if !c.set["role"] {
					return usageErrorf("--role is required")
				}
				raw, err := rawUser(c.api.UpdateUser(ctx, id, client.UserUpdate{Role: client.Role(*role), IfMatch: *ifMatch}))
				return c.show(raw, err, userTable)
			}
		}}
}

func userResetPassword() cliVerb {
	return cliVerb{name: "reset-password", args: "ID", usage: "[--password-file FILE] [--old-password-file FILE]",
		summary: "set a user's password (your own needs the old one)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			passwordFile := fs.String("password-file", "", "file holding the new password (default $TOLLGATE_PASSWORD, else asked on the terminal)")
			oldFile := fs.String("old-password-file", "", "file holding your current password, to change your own")
			return func(ctx context.Context, c *cliClient, id int64) error {
				var in client.PasswordChange
				if *oldFile != "" {
					old, err := readPassword(c.e, *oldFile, "", false)
					if err != nil {
						return err
					}
					in.OldPassword = old
				}
				password, err := readPassword(c.e, *passwordFile, "New password", true)
				if err != nil {
					return err
				}
				in.Password = password
				if err := c.api.SetPassword(ctx, id, in); err != nil {
					return c.fail(err)
				}
				c.printDone("changed the password of user %d", id)
				return nil
			}
		}}
}

// ---------------------------------------------------------------- clients and keys

// credentialCalls are the SDK's calls of clients or of keys.
type credentialCalls struct {
	create func(*client.Client, context.Context, client.CredentialCreate) (*client.CredentialWithSecret, error)
	get    func(*client.Client, context.Context, int64) (*client.Credential, error)
	list   func(*client.Client, context.Context, client.CredentialFilter) (*client.List[client.Credential], error)
	update func(*client.Client, context.Context, int64, client.CredentialUpdate) (*client.Credential, error)
	rotate func(*client.Client, context.Context, int64, client.Rotation) (*client.CredentialWithSecret, error)
	delete func(*client.Client, context.Context, int64, string) (int64, error)
}

var (
	clientCalls = credentialCalls{
		create: (*client.Client).CreateClient, get: (*client.Client).GetClient, list: (*client.Client).ListClients,
		update: (*client.Client).UpdateClient, rotate: (*client.Client).RotateClient,
		delete: func(api *client.Client, ctx context.Context, id int64, ifMatch string) (int64, error) {
			return 0, api.DeleteClient(ctx, id, ifMatch)
		},
	}
	keyCalls = credentialCalls{
		create: (*client.Client).CreateKey, get: (*client.Client).GetKey, list: (*client.Client).ListKeys,
		update: (*client.Client).UpdateKey, rotate: (*client.Client).RotateKey, delete: (*client.Client).DeleteKey,
	}
)

// credentialResource is `clients` or `keys`: the same record, shown two ways.
func credentialResource(name, summary string, v cliView, calls credentialCalls) cliResource {
	noun := name[:len(name)-1]
	status := func(s client.Status) func(context.Context, *client.Client, int64, string) ([]byte, error) {
		return func(ctx context.Context, api *client.Client, id int64, ifMatch string) ([]byte, error) {
			return rawCredential(calls.update(api, ctx, id, client.CredentialUpdate{Status: s, IfMatch: ifMatch}))
		}
	}
	verbs := []cliVerb{
		credentialCreate(noun, v, calls),
		credentialList(v, calls),
		getVerb("show "+article(noun), v, func(ctx context.Context, api *client.Client, id int64) ([]byte, error) {
			return rawCredential(calls.get(api, ctx, id))
		}),
		credentialEdit(noun, v, calls),
		statusVerb("disable", "disable "+article(noun)+": its tokens stop working at once", v, status(client.StatusDisabled)),
		statusVerb("enable", "enable "+article(noun), v, status(client.StatusActive)),
		credentialRotate(noun, v, calls),
		deleteVerb(noun, "delete "+article(noun)+": its tokens stop working at once", func(ctx context.Context, api *client.Client, id int64, ifMatch string) (int64, error) {
			return calls.delete(api, ctx, id, ifMatch)
		}),
	}
	if name == "clients" {
		verbs = append(verbs, clientToken())
		verbs = append(verbs, federatedVerbs()...)
	}
	return cliResource{name: name, summary: summary, verbs: verbs}
}

func article(noun string) string {
	if noun == "key" {
		return "an API key"
	}
	return "an API client"
}

// credentialFlags are the editable fields of a client or key.
type credentialFlags struct {
	name, description, accessRights, scopes, grantTypes, tokenLifetime, expiresAt, rateLimits string
	accessTokenStrategy, authMethod, jwksFile, jwksURI                                        string
	quota                                                                                     string
	allowedCIDRs                                                                              listFlag
	mayIntrospect, reuseTokens, dpopBound                                                     bool
	owner, account                                                                            int64
}

func (f *credentialFlags) define(fs *flag.FlagSet, noun string, creating bool) {
	fs.StringVar(&f.name, "name", "", "name, up to 100 characters")
	fs.StringVar(&f.description, "description", "", "description, up to 500 characters")
	fs.StringVar(&f.accessRights, "access-rights", "", "a named bundle of scopes (e.g. full, events, events_contacts)")
	fs.StringVar(&f.scopes, "scopes", "", "raw scopes instead of --access-rights, space- or comma-separated")
	if noun == "client" {
		fs.StringVar(&f.grantTypes, "grant-types", "", "allowed grant types, comma-separated (default: the server's credentials.default_grant_types)")
		fs.StringVar(&f.authMethod, "token-endpoint-auth-method", "", "client_secret_basic (the default), client_secret_post or private_key_jwt (with --jwks-file or --jwks-uri)")
		fs.StringVar(&f.jwksFile, "jwks-file", "", "file holding the client's public JWK Set, for private_key_jwt")
		fs.StringVar(&f.jwksURI, "jwks-uri", "", "https URL of the client's public JWK Set, for private_key_jwt")
	}
	fs.BoolVar(&f.mayIntrospect, "may-introspect", false, "may introspect tokens (admins only)")
	fs.StringVar(&f.tokenLifetime, "token-lifetime", "", "lifetime of its tokens (e.g. 3600, 2h; 0 means the server default)")
	fs.BoolVar(&f.reuseTokens, "reuse-tokens", false, "answer a client_credentials request with its current token while it has half its life left")
	fs.StringVar(&f.accessTokenStrategy, "access-token-strategy", "", "format of its access tokens: opaque (the default) or jwt (RFC 9068)")
	fs.BoolVar(&f.dpopBound, "dpop-bound-access-tokens", false, "require a DPoP proof (RFC 9449) for every token, bound to the proof's key")
	fs.StringVar(&f.expiresAt, "expires-at", "", "RFC 3339 time after which it stops working, or never")
	fs.StringVar(&f.rateLimits, "rate-limits", "", "overrides of rate classes, class=rate[:burst] comma-separated, or none (admins)")
	fs.StringVar(&f.quota, "quota", "", "most calls per UTC day or month, N/day or N/month, or none (admins)")
	fs.Var(&f.allowedCIDRs, "allowed-cidr", "an address or CIDR prefix it may be used from; repeat it or separate with commas; none removes the allowlist")
	if creating {
		fs.Int64Var(&f.owner, "owner", 0, "the user who owns it (admins; default you)")
		fs.Int64Var(&f.account, "account", 0, "an account of your subtree, for a credential no user owns (admins)")
	}
}

// update holds the fields given on the command line, and only those; n is
// how many.
func (f *credentialFlags) update(c *cliClient) (in client.CredentialUpdate, n int, err error) {
	given := func(name string) bool {
		if c.set[name] {
			n++
			return true
		}
		return false
	}
	if given("name") {
		in.Name = &f.name
	}
	if given("description") {
		in.Description = &f.description
	}
	if given("access-rights") {
		in.AccessRights = &f.accessRights
	}
	if given("may-introspect") {
		in.MayIntrospect = &f.mayIntrospect
	}
	if given("reuse-tokens") {
		in.ReuseTokens = &f.reuseTokens
	}
	if given("access-token-strategy") {
		in.AccessTokenStrategy = &f.accessTokenStrategy
	}
	if given("dpop-bound-access-tokens") {
		in.DPoPBoundAccessTokens = &f.dpopBound
	}
	if given("token-endpoint-auth-method") {
		in.TokenEndpointAuthMethod = &f.authMethod
	}
	if given("jwks-uri") {
		in.JWKSURI = &f.jwksURI
	}
	if given("jwks-file") {
		if in.JWKS, err = readJWKS(f.jwksFile); err != nil {
			return in, n, err
		}
	}
	if given("scopes") {
		in.Scopes = nonNilWords(f.scopes)
	}
	if given("grant-types") {
		in.GrantTypes = nonNilWords(f.grantTypes)
	}
	if given("token-lifetime") {
		s, err := seconds("token-lifetime", f.tokenLifetime)
		if err != nil {
			return in, n, err
		}
		in.TokenLifetime = &s
	}
	if given("rate-limits") {
		if in.RateLimits, err = parseRateLimits(f.rateLimits); err != nil {
			return in, n, err
		}
	}
	if given("quota") {
		q, err := parseQuota("quota", f.quota)
		if err != nil {
			return in, n, err
		}
		in.Quota = client.Remove[client.Quota]()
		if q != nil {
			in.Quota = client.Set(*q)
		}
	}
	if given("allowed-cidr") {
		in.AllowedCIDRs = f.allowedCIDRs.values()
	}
	if given("expires-at") {
		if f.expiresAt == "never" {
			f.expiresAt = ""
		}
		in.ExpiresAt = &f.expiresAt
	}
	return in, n, nil
}

// create holds the fields given on the command line.
func (f *credentialFlags) create(c *cliClient) (client.CredentialCreate, error) {
	u, _, err := f.update(c)
	if err != nil {
		return client.CredentialCreate{}, err
	}
	in := client.CredentialCreate{Scopes: u.Scopes, GrantTypes: u.GrantTypes, RateLimits: u.RateLimits, OwnerID: f.owner, AccountID: f.account,
		AllowedCIDRs: u.AllowedCIDRs}
	if c.set["quota"] {
		if in.Quota, err = parseQuota("quota", f.quota); err != nil {
			return client.CredentialCreate{}, err
		}
	}
	for dst, src := range map[*string]*string{&in.Name: u.Name, &in.Description: u.Description, &in.AccessRights: u.AccessRights, &in.ExpiresAt: u.ExpiresAt} {
		if src != nil {
			*dst = *src
		}
	}
	in.MayIntrospect = u.MayIntrospect != nil && *u.MayIntrospect
	in.ReuseTokens = u.ReuseTokens != nil && *u.ReuseTokens
	if u.AccessTokenStrategy != nil {
		in.AccessTokenStrategy = *u.AccessTokenStrategy
	}
	in.DPoPBoundAccessTokens = u.DPoPBoundAccessTokens != nil && *u.DPoPBoundAccessTokens
	if u.TokenEndpointAuthMethod != nil {
		in.TokenEndpointAuthMethod = *u.TokenEndpointAuthMethod
	}
	if u.JWKSURI != nil {
		in.JWKSURI = *u.JWKSURI
	}
	in.JWKS = u.JWKS
	if u.TokenLifetime != nil {
		in.TokenLifetime = *u.TokenLifetime
	}
	return in, nil
}

// maxJWKSFile bounds the JWK Set file read; the server refuses sets over
// 16 KiB anyway.
const maxJWKSFile = 64 << 10

// readJWKS reads a JWK Set from file name. It must be a JSON object; the
// server checks the rest.
func readJWKS(name string) (json.RawMessage, error) {
	file, err := os.Open(name) // #nosec G304 -- the user names their own key set file on the command line
	if err != nil {
		return nil, fmt.Errorf("--jwks-file: %w", err)
	}
	defer func() { _ = file.Close() }()
	b, err := io.ReadAll(io.LimitReader(file, maxJWKSFile+1))
	if err != nil {
		return nil, fmt.Errorf("--jwks-file: %w", err)
	}
	if len(b) > maxJWKSFile {
		return nil, fmt.Errorf("--jwks-file: larger than %d bytes", maxJWKSFile)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, errors.New(`--jwks-file: not a JSON object (a JWK Set: {"keys": [...]})`)
	}
	return json.RawMessage(b), nil
}

func nonNilWords(s string) []string {
	w := words(s)
	if w == nil {
		return []string{}
	}
	return w
}

func credentialCreate(noun string, v cliView, calls credentialCalls) cliVerb {
	return cliVerb{name: "create", usage: "--name NAME [--description TEXT] [--access-rights NAME | --scopes LIST] …",
		summary: "create " + article(noun) + " (its secret is shown once)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var f credentialFlags
			f.define(fs, noun, true)
			passwordFile := fs.String("password-file", "", "file holding your password, for an account that asks for it "+
				"(default $TOLLGATE_PASSWORD, else asked on the terminal when the server asks)")
			return func(ctx context.Context, c *cliClient, _ int64) error {
				in, err := f.create(c)
				if err != nil {
					return err
				}
				// The password goes only where the account's policy asks
				// for it: sent at once when a file names it, else asked
				// for when the server answers that it needs it.
				if *passwordFile != "" {
					if in.Password, err = readPassword(c.e, *passwordFile, "Your password", false); err != nil {
						return err
					}
				}
				created, err := calls.create(c.api, ctx, in)
				if *passwordFile == "" && asksOnlyPassword(err) {
					// A prompt: a failed write shows in the password read that follows.
					_, _ = fmt.Fprintln(c.e.stderr, "This account asks for your own password to create "+article(noun)+".")
					if in.Password, err = readPassword(c.e, "", "Your password", false); err != nil {
						return err
					}
					created, err = calls.create(c.api, ctx, in)
				}
				raw, err := rawWithSecret(created, err)
				return c.show(raw, err, v)
			}
		}}
}

func credentialList(v cliView, calls credentialCalls) cliVerb {
	return cliVerb{name: "list", usage: "[--owner ID] [--status active|disabled] [--account ID [--subtree]] [--after ID] [--limit N]",
		summary: "list " + v.noun + " (a member sees only their own)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			owner := fs.Int64("owner", 0, "only those of this user")
			status := fs.String("status", "", "only active or disabled ones")
			account := fs.Int64("account", 0, "only those of this account")
			subtree := fs.Bool("subtree", false, "with --account, include the account's descendants")
			var p pageFlags
			p.define(fs)
			return func(ctx context.Context, c *cliClient, _ int64) error {
				filter := client.CredentialFilter{OwnerID: *owner, Status: client.Status(*status), AccountID: *account, Subtree: *subtree, Page: p.page()}
				raw, err := rawList(calls.list(c.api, ctx, filter))
				return c.showList(raw, err, v)
			}
		}}
}

func credentialEdit(noun string, v cliView, calls credentialCalls) cliVerb {
	return cliVerb{name: "edit", args: "ID", usage: "[--name NAME] [--description TEXT] [--access-rights NAME | --scopes LIST] … [--if-match ETAG]",
		summary: "change the given fields of " + article(noun),
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var f credentialFlags
			f.define(fs, noun, false)
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				in, n, err := f.update(c)
				if err != nil {
					return err
				}
				if n == 0 {
					return usageErrorf("nothing to change: give at least one field flag")
				}
				in.IfMatch = *ifMatch
				raw, err := rawCredential(calls.update(c.api, ctx, id, in))
				return c.show(raw, err, v)
			}
		}}
}

func credentialRotate(noun string, v cliView, calls credentialCalls) cliVerb {
	return cliVerb{name: "rotate", args: "ID", usage: "[--overlap DURATION] [--if-match ETAG]",
		summary: "give " + article(noun) + " a new secret (shown once); the old one works for the overlap",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			overlap := fs.String("overlap", "", "how long the old secret keeps working (e.g. 0, 1h, 86400; default the server's, 24h)")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				r := client.Rotation{IfMatch: *ifMatch}
				if c.set["overlap"] {
					n, err := seconds("overlap", *overlap)
					if err != nil {
						return err
					}
					d := time.Duration(n) * time.Second
					r.Overlap = &d
				}
				raw, err := rawWithSecret(calls.rotate(c.api, ctx, id, r))
				return c.show(raw, err, v)
			}
		}}
}

func clientToken() cliVerb {
	return cliVerb{name: "token", args: "ID", usage: "[--lifetime DURATION] [--password-file FILE]",
		summary: "generate a long-lived token for an API client, confirming your identity with your password",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			lifetime := fs.String("lifetime", "", "lifetime of the token (e.g. 720h; default the server's, one year)")
			passwordFile := fs.String("password-file", "", "file holding your password (default $TOLLGATE_PASSWORD, else asked on the terminal)")
			return func(ctx context.Context, c *cliClient, id int64) error {
				var in client.ClientTokenRequest
				if c.set["lifetime"] {
					n, err := seconds("lifetime", *lifetime)
					if err != nil {
						return err
					}
					in.Lifetime = &n
				}
				password, err := readPassword(c.e, *passwordFile, "Your password", false)
				if err != nil {
					return err
				}
				in.Password = password
				tok, err := c.api.CreateClientToken(ctx, id, in)
				if err != nil {
					return c.fail(err)
				}
				return c.printRecord(tok.Raw, clientTokenTable)
			}
		}}
}

// ---------------------------------------------------------------- audit

func auditList() cliVerb {
	return cliVerb{name: "list", usage: "[--account ID] [--after ID] [--limit N]",
		summary: "list audit events of an account's subtree, newest first",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			account := fs.Int64("account", 0, "events of this account and its subtree (default your own)")
			var p pageFlags
			p.define(fs)
			return func(ctx context.Context, c *cliClient, _ int64) error {
				raw, err := rawList(c.api.ListAudit(ctx, client.AuditFilter{AccountID: *account, Page: p.page()}))
				return c.showList(raw, err, auditTable)
			}
		}}
}

// ---------------------------------------------------------------- usage

func usageShow() cliVerb {
	return cliVerb{name: "show", usage: "(--credential ID | --account ID) [--granularity minute|hour|day] [--from TIME] [--to TIME]",
		summary: "show calls per bucket, credential, rate class and outcome, oldest first (times RFC 3339, UTC buckets)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			credential := fs.Int64("credential", 0, "the usage of this client or key")
			account := fs.Int64("account", 0, "the usage of every credential of this account and its subtree")
			granularity := fs.String("granularity", "", "minute, hour or day (default hour)")
			from := fs.String("from", "", "first bucket, RFC 3339 (default the last hour, 24 hours or 30 days before --to)")
			to := fs.String("to", "", "end of the range, excluded, RFC 3339 (default now)")
			return func(ctx context.Context, c *cliClient, _ int64) error {
				if (*credential == 0) == (*account == 0) {
					return usageErrorf("give exactly one of --credential and --account")
				}
				q := client.UsageQuery{CredentialID: *credential, AccountID: *account, Granularity: *granularity}
				for _, t := range []struct {
					name, raw string
					dst       *time.Time
				}{{"--from", *from, &q.From}, {"--to", *to, &q.To}} {
					if t.raw == "" {
						continue
					}
					v, err := time.Parse(time.RFC3339, t.raw)
					if err != nil {
						return usageErrorf("%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", t.name, t.raw)
					}
					*t.dst = v
				}
				u, err := c.api.GetUsage(ctx, q)
				var raw []byte
				if u != nil {
					raw = u.Raw
				}
				return c.showList(raw, err, usageTable)
			}
		}}
}

// parseRateLimits reads "class=rate[:burst],…" or "none".
func parseRateLimits(v string) (map[string]client.RateLimit, error) {
	out := map[string]client.RateLimit{}
	if strings.TrimSpace(v) == "none" {
		return out, nil
	}
	for _, item := range strings.Split(v, ",") {
		class, rb, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || class == "" {
			return nil, fmt.Errorf("--rate-limits: want class=rate[:burst], got %q", item)
		}
		rate, burst, err := config.ParseRate(rb)
		if err != nil {
			return nil, fmt.Errorf("--rate-limits: class %q: %w", class, err)
		}
		out[class] = client.RateLimit{Rate: rate, Burst: burst}
	}
	return out, nil
}
