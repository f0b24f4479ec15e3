package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/config"
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
			"grant_types", "may_introspect", "token_lifetime", "reuse_tokens", "status", "disabled_reason", "secret_hint", "expires_at", "last_used_at",
			"previous_secret_retire_at", "created_by", "created_at", "updated_at", "version"},
	}
	keyTable = cliView{
		noun: "keys",
		columns: []string{"id", "name", "description", "key_hint", "is_default", "access_rights", "scopes", "status",
			"owner_id", "created_by", "created_at", "last_used_at", "expires_at"},
		fields: []string{"id", "kind", "account_id", "owner_id", "is_default", "name", "description", "access_rights",
			"scopes", "grant_types", "may_introspect", "token_lifetime", "status", "disabled_reason", "key_hint", "secret_hint", "expires_at", "last_used_at",
			"previous_secret_retire_at", "created_by", "created_at", "updated_at", "version"},
	}
	auditTable = cliView{
		noun: "events",
		columns: []string{"id", "time", "account_id", "actor_user_id", "actor_client_id", "action", "target_type",
			"target_id", "outcome", "remote_addr", "detail"},
	}
	clientTokenTable = cliView{fields: []string{"token_type", "expires_in", "expires_at", "scope"}}
)

func cliResources() []cliResource {
	return []cliResource{
		{name: "accounts", summary: "Manage accounts and sub-accounts.", verbs: []cliVerb{
			accountCreate(),
			getVerb("/accounts", "show an account", accountTable),
			accountChildren(),
			accountRename(),
			accountPolicies(),
			statusVerb("disable", "/accounts", "disabled", "disable an account: its subtree's credentials and tokens stop working", accountTable),
			statusVerb("enable", "/accounts", "active", "enable an account", accountTable),
		}},
		{name: "users", summary: "Manage users.", verbs: []cliVerb{
			userCreate(),
			userList(),
			getVerb("/users", "show a user", userTable),
			userSetRole(),
			statusVerb("disable", "/users", "disabled", "disable a user", userTable),
			statusVerb("enable", "/users", "active", "enable a user", userTable),
			userResetPassword(),
			deleteVerb("/users", "user", "delete a user"),
		}},
		credentialResource("clients", "Manage API clients (client id and secret).", clientTable),
		credentialResource("keys", "Manage API keys (one tgk_… string).", keyTable),
		{name: "audit", summary: "Read the audit trail.", verbs: []cliVerb{auditList()}},
	}
}

func idPath(base string, id int64, rest ...string) string {
	p := base + "/" + strconv.FormatInt(id, 10)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// pageFlags are --after and --limit.
type pageFlags struct{ after, limit int64 }

func (p *pageFlags) define(fs *flag.FlagSet) {
	fs.Int64Var(&p.after, "after", 0, "start after this id (the `next` of the previous page)")
	fs.Int64Var(&p.limit, "limit", 0, "page size, 1–100 (default the server's, 20)")
}

func (p *pageFlags) query(c *cliClient) url.Values {
	q := url.Values{}
	if c.set["after"] {
		q.Set("after", strconv.FormatInt(p.after, 10))
	}
	if c.set["limit"] {
		q.Set("limit", strconv.FormatInt(p.limit, 10))
	}
	return q
}

func getVerb(base, summary string, v cliView) cliVerb {
	return cliVerb{name: "get", args: "ID", summary: summary,
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			return func(ctx context.Context, c *cliClient, id int64) error {
				res, err := c.do(ctx, cliCall{method: http.MethodGet, path: idPath(base, id)})
				if err != nil {
					return err
				}
				return c.printRecord(res, v)
			}
		}}
}

// statusVerb is enable or disable: PATCH {"status": status}.
func statusVerb(name, base, status, summary string, v cliView) cliVerb {
	return cliVerb{name: name, args: "ID", usage: "[--if-match ETAG]", summary: summary,
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				res, err := c.do(ctx, cliCall{method: http.MethodPatch, path: idPath(base, id),
					body: map[string]any{"status": status}, ifMatch: *ifMatch})
				if err != nil {
					return err
				}
				return c.printRecord(res, v)
			}
		}}
}

func deleteVerb(base, noun, summary string) cliVerb {
	return cliVerb{name: "delete", args: "ID", usage: "[--if-match ETAG]", summary: summary,
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				res, err := c.do(ctx, cliCall{method: http.MethodDelete, path: idPath(base, id), ifMatch: *ifMatch})
				if err != nil {
					return err
				}
				c.printDone("deleted %s %d", noun, id)
				if r := res.header.Get("Tollgate-Replacement-Key"); r != "" {
					c.printDone("it was the owner's default key: the new default key is %s", clean(r))
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
				body := map[string]any{"name": *name}
				if c.set["parent"] {
					body["parent_id"] = *parent
				}
				res, err := c.do(ctx, cliCall{method: http.MethodPost, path: "/accounts", body: body})
				if err != nil {
					return err
				}
				return c.printRecord(res, accountTable)
			}
		}}
}

func accountChildren() cliVerb {
	return cliVerb{name: "children", args: "ID", usage: "[--after ID] [--limit N]", summary: "list an account's direct children",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var p pageFlags
			p.define(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				res, err := c.do(ctx, cliCall{method: http.MethodGet, path: idPath("/accounts", id, "children"), query: p.query(c)})
				if err != nil {
					return err
				}
				return c.printList(res, accountTable)
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
				res, err := c.do(ctx, cliCall{method: http.MethodPatch, path: idPath("/accounts", id),
					body: map[string]any{"name": *name}, ifMatch: *ifMatch})
				if err != nil {
					return err
				}
				return c.printRecord(res, accountTable)
			}
		}}
}

// policyValue reads a policy flag: "inherit" is null, else one of allowed.
func policyValue(flagName, s string, allowed ...string) (any, error) {
	if s == "inherit" {
		return nil, nil
	}
	if !slices.Contains(allowed, s) {
		return nil, usageErrorf("--%s must be %s or inherit, got %q", flagName, strings.Join(allowed, ", "), s)
	}
	if s == "true" || s == "false" {
		return s == "true", nil
	}
	return s, nil
}

func accountPolicies() cliVerb {
	return cliVerb{name: "policies", args: "ID", usage: "[--require-password-for-new-keys true|false|inherit] [--keys-managed-by anyone|admins|inherit] [--if-match ETAG]",
		summary: "show or set an account's policies (sub-accounts inherit what they do not set)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			password := fs.String("require-password-for-new-keys", "", "creating a client or key asks for the creator's password: true, false, or inherit")
			managed := fs.String("keys-managed-by", "", "who manages clients and keys: anyone (their own), admins, or inherit")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				policies := map[string]any{}
				if c.set["require-password-for-new-keys"] {
					v, err := policyValue("require-password-for-new-keys", *password, "true", "false")
					if err != nil {
						return err
					}
					policies["require_password_for_new_keys"] = v
				}
				if c.set["keys-managed-by"] {
					v, err := policyValue("keys-managed-by", *managed, "anyone", "admins")
					if err != nil {
						return err
					}
					policies["keys_managed_by"] = v
				}
				call := cliCall{method: http.MethodGet, path: idPath("/accounts", id)}
				if len(policies) > 0 {
					call = cliCall{method: http.MethodPatch, path: idPath("/accounts", id),
						body: map[string]any{"policies": policies}, ifMatch: *ifMatch}
				}
				res, err := c.do(ctx, call)
				if err != nil {
					return err
				}
				return c.printRecord(res, accountPolicyTable)
			}
		}}
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
				body := map[string]any{"username": *username, "password": password}
				if c.set["account"] {
					body["account_id"] = *account
				}
				if c.set["role"] {
					body["role"] = *role
				}
				res, err := c.do(ctx, cliCall{method: http.MethodPost, path: "/users", body: body})
				if err != nil {
					return err
				}
				return c.printRecord(res, userTable)
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
				q := p.query(c)
				if c.set["account"] {
					q.Set("account_id", strconv.FormatInt(*account, 10))
				}
				if *subtree {
					q.Set("subtree", "true")
				}
				res, err := c.do(ctx, cliCall{method: http.MethodGet, path: "/users", query: q})
				if err != nil {
					return err
				}
				return c.printList(res, userTable)
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
				res, err := c.do(ctx, cliCall{method: http.MethodPatch, path: idPath("/users", id),
					body: map[string]any{"role": *role}, ifMatch: *ifMatch})
				if err != nil {
					return err
				}
				return c.printRecord(res, userTable)
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
				body := map[string]any{}
				if *oldFile != "" {
					old, err := readPassword(c.e, *oldFile, "", false)
					if err != nil {
						return err
					}
					body["old_password"] = old
				}
				password, err := readPassword(c.e, *passwordFile, "New password", true)
				if err != nil {
					return err
				}
				body["password"] = password
				if _, err := c.do(ctx, cliCall{method: http.MethodPost, path: idPath("/users", id, "password"), body: body}); err != nil {
					return err
				}
				c.printDone("changed the password of user %d", id)
				return nil
			}
		}}
}

// ---------------------------------------------------------------- clients and keys

// credentialResource is `clients` or `keys`: the same record, shown two ways.
func credentialResource(name, summary string, v cliView) cliResource {
	base := "/" + name
	noun := name[:len(name)-1]
	verbs := []cliVerb{
		credentialCreate(base, noun, v),
		credentialList(base, v),
		getVerb(base, "show "+article(noun), v),
		credentialEdit(base, noun, v),
		statusVerb("disable", base, "disabled", "disable "+article(noun)+": its tokens stop working at once", v),
		statusVerb("enable", base, "active", "enable "+article(noun), v),
		credentialRotate(base, noun, v),
		deleteVerb(base, noun, "delete "+article(noun)+": its tokens stop working at once"),
	}
	if name == "clients" {
		verbs = append(verbs, clientToken())
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
	mayIntrospect, reuseTokens                                                                bool
	owner, account                                                                            int64
}

func (f *credentialFlags) define(fs *flag.FlagSet, noun string, creating bool) {
	fs.StringVar(&f.name, "name", "", "name, up to 100 characters")
	fs.StringVar(&f.description, "description", "", "description, up to 500 characters")
	fs.StringVar(&f.accessRights, "access-rights", "", "a named bundle of scopes (e.g. full, events, events_contacts)")
	fs.StringVar(&f.scopes, "scopes", "", "raw scopes instead of --access-rights, space- or comma-separated")
	if noun == "client" {
		fs.StringVar(&f.grantTypes, "grant-types", "", "allowed grant types, comma-separated (default: the server's credentials.default_grant_types)")
	}
	fs.BoolVar(&f.mayIntrospect, "may-introspect", false, "may introspect tokens (admins only)")
	fs.StringVar(&f.tokenLifetime, "token-lifetime", "", "lifetime of its tokens (e.g. 3600, 2h; 0 means the server default)")
	fs.BoolVar(&f.reuseTokens, "reuse-tokens", false, "answer a client_credentials request with its current token while it has half its life left")
	fs.StringVar(&f.expiresAt, "expires-at", "", "RFC 3339 time after which it stops working, or never")
	fs.StringVar(&f.rateLimits, "rate-limits", "", "overrides of rate classes, class=rate[:burst] comma-separated, or none (admins)")
	if creating {
		fs.Int64Var(&f.owner, "owner", 0, "the user who owns it (admins; default you)")
		fs.Int64Var(&f.account, "account", 0, "an account of your subtree, for a credential no user owns (admins)")
	}
}

// body holds the fields given on the command line, and only those.
func (f *credentialFlags) body(c *cliClient) (map[string]any, error) {
	b := map[string]any{}
	for flagName, v := range map[string]any{
		"name": f.name, "description": f.description, "access-rights": f.accessRights, "may-introspect": f.mayIntrospect,
		"reuse-tokens": f.reuseTokens, "owner": f.owner, "account": f.account,
	} {
		if c.set[flagName] {
			b[jsonField(flagName)] = v
		}
	}
	if c.set["scopes"] {
		b["scopes"] = nonNilWords(f.scopes)
	}
	if c.set["grant-types"] {
		b["grant_types"] = nonNilWords(f.grantTypes)
	}
	if c.set["token-lifetime"] {
		n, err := seconds("token-lifetime", f.tokenLifetime)
		if err != nil {
			return nil, err
		}
		b["token_lifetime"] = n
	}
	if c.set["rate-limits"] {
		limits, err := parseRateLimits(f.rateLimits)
		if err != nil {
			return nil, err
		}
		b["rate_limits"] = limits
	}
	if c.set["expires-at"] {
		if f.expiresAt == "never" {
			f.expiresAt = ""
		}
		b["expires_at"] = f.expiresAt
	}
	return b, nil
}

// jsonField is the API member a flag sets.
func jsonField(flagName string) string {
	switch flagName {
	case "owner":
		return "owner_id"
	case "account":
		return "account_id"
	}
	b := []byte(flagName)
	for i := range b {
		if b[i] == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

func nonNilWords(s string) []string {
	w := words(s)
	if w == nil {
		return []string{}
	}
	return w
}

func credentialCreate(base, noun string, v cliView) cliVerb {
	return cliVerb{name: "create", usage: "--name NAME [--description TEXT] [--access-rights NAME | --scopes LIST] …",
		summary: "create " + article(noun) + " (its secret is shown once)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var f credentialFlags
			f.define(fs, noun, true)
			passwordFile := fs.String("password-file", "", "file holding your password, for an account that asks for it "+
				"(default $TOLLGATE_PASSWORD, else asked on the terminal when the server asks)")
			return func(ctx context.Context, c *cliClient, _ int64) error {
				body, err := f.body(c)
				if err != nil {
					return err
				}
				// The password goes only where the account's policy asks
				// for it: sent at once when a file names it, else asked
				// for when the server answers that it needs it.
				if *passwordFile != "" {
					if body["password"], err = readPassword(c.e, *passwordFile, "Your password", false); err != nil {
						return err
					}
				}
				res, err := c.do(ctx, cliCall{method: http.MethodPost, path: base, body: body, askPassword: *passwordFile == ""})
				if errors.Is(err, errPasswordAsked) {
					// A prompt: a failed write shows in the password read that follows.
					_, _ = fmt.Fprintln(c.e.stderr, "This account asks for your own password to create "+article(noun)+".")
					if body["password"], err = readPassword(c.e, "", "Your password", false); err != nil {
						return err
					}
					res, err = c.do(ctx, cliCall{method: http.MethodPost, path: base, body: body})
				}
				if err != nil {
					return err
				}
				return c.printRecord(res, v)
			}
		}}
}

func credentialList(base string, v cliView) cliVerb {
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
				q := p.query(c)
				if c.set["owner"] {
					q.Set("owner_id", strconv.FormatInt(*owner, 10))
				}
				if c.set["status"] {
					q.Set("status", *status)
				}
				if c.set["account"] {
					q.Set("account_id", strconv.FormatInt(*account, 10))
				}
				if *subtree {
					q.Set("subtree", "true")
				}
				res, err := c.do(ctx, cliCall{method: http.MethodGet, path: base, query: q})
				if err != nil {
					return err
				}
				return c.printList(res, v)
			}
		}}
}

func credentialEdit(base, noun string, v cliView) cliVerb {
	return cliVerb{name: "edit", args: "ID", usage: "[--name NAME] [--description TEXT] [--access-rights NAME | --scopes LIST] … [--if-match ETAG]",
		summary: "change the given fields of " + article(noun),
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var f credentialFlags
			f.define(fs, noun, false)
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				body, err := f.body(c)
				if err != nil {
					return err
				}
				if len(body) == 0 {
					return usageErrorf("nothing to change: give at least one field flag")
				}
				res, err := c.do(ctx, cliCall{method: http.MethodPatch, path: idPath(base, id), body: body, ifMatch: *ifMatch})
				if err != nil {
					return err
				}
				return c.printRecord(res, v)
			}
		}}
}

func credentialRotate(base, noun string, v cliView) cliVerb {
	return cliVerb{name: "rotate", args: "ID", usage: "[--overlap DURATION] [--if-match ETAG]",
		summary: "give " + article(noun) + " a new secret (shown once); the old one works for the overlap",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			overlap := fs.String("overlap", "", "how long the old secret keeps working (e.g. 0, 1h, 86400; default the server's, 24h)")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				body := map[string]any{}
				if c.set["overlap"] {
					n, err := seconds("overlap", *overlap)
					if err != nil {
						return err
					}
					body["overlap_seconds"] = n
				}
				res, err := c.do(ctx, cliCall{method: http.MethodPost, path: idPath(base, id, "rotate"), body: body, ifMatch: *ifMatch})
				if err != nil {
					return err
				}
				return c.printRecord(res, v)
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
				body := map[string]any{}
				if c.set["lifetime"] {
					n, err := seconds("lifetime", *lifetime)
					if err != nil {
						return err
					}
					body["lifetime"] = n
				}
				password, err := readPassword(c.e, *passwordFile, "Your password", false)
				if err != nil {
					return err
				}
				body["password"] = password
				res, err := c.do(ctx, cliCall{method: http.MethodPost, path: idPath("/clients", id, "tokens"), body: body})
				if err != nil {
					return err
				}
				return c.printRecord(res, clientTokenTable)
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
				q := p.query(c)
				if c.set["account"] {
					q.Set("account_id", strconv.FormatInt(*account, 10))
				}
				res, err := c.do(ctx, cliCall{method: http.MethodGet, path: "/audit", query: q})
				if err != nil {
					return err
				}
				return c.printList(res, auditTable)
			}
		}}
}

// parseRateLimits reads "class=rate[:burst],…" or "none".
func parseRateLimits(v string) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
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
		out[class] = map[string]int{"rate": rate, "burst": burst}
	}
	return out, nil
}
