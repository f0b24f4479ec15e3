package main

import (
	"context"
	"flag"
	"strings"

	"github.com/tollgate/tollgate/pkg/client"
)

// federatedTable shows a client's federated credentials.
var federatedTable = cliView{
	noun:    "federated credentials",
	columns: []string{"id", "name", "issuer", "subject", "audiences", "claims", "created_at"},
	fields:  []string{"id", "client_id", "name", "issuer", "subject", "audiences", "claims", "created_by", "created_at"},
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// federatedVerbs are the verbs of an API client's federated credentials
// (workload identity federation).
func federatedVerbs() []cliVerb {
	return []cliVerb{federatedAdd(), federatedList(), federatedDelete()}
}

func federatedAdd() cliVerb {
	return cliVerb{name: "federated-add", args: "ID",
		usage:   "--issuer URL --subject SUB --audience AUD [--audience AUD…] [--claim NAME=VALUE…] [--name NAME] [--if-match ETAG]",
		summary: "trust an external OIDC issuer's tokens (GitHub Actions, Kubernetes) for an API client, for one subject",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var in client.FederatedCredentialCreate
			var audiences, claims repeated
			fs.StringVar(&in.Name, "name", "", "a label, unique among the client's federated credentials (default: the subject)")
			fs.StringVar(&in.Issuer, "issuer", "", "the issuer URL, exactly as the tokens' iss (https)")
			fs.StringVar(&in.Subject, "subject", "", "the tokens' sub, compared exactly (e.g. repo:org/repo:ref:refs/heads/main)")
			fs.Var(&audiences, "audience", "an aud value accepted (repeatable, or comma-separated)")
			fs.Var(&claims, "claim", "a condition NAME=VALUE on a top-level string claim, e.g. repository_id=123 (repeatable)")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				for _, a := range audiences {
					in.Audiences = append(in.Audiences, words(a)...)
				}
				for _, kv := range claims {
					name, value, ok := strings.Cut(kv, "=")
					if !ok || name == "" {
						return usageErrorf("--claim must be NAME=VALUE, got %q", kv)
					}
					if in.Claims == nil {
						in.Claims = map[string]string{}
					}
					in.Claims[name] = value
				}
				if in.Issuer == "" || in.Subject == "" || len(in.Audiences) == 0 {
					return usageErrorf("--issuer, --subject and at least one --audience are required")
				}
				in.IfMatch = *ifMatch
				fc, err := c.api.CreateFederatedCredential(ctx, id, in)
				if err != nil {
					return c.fail(err)
				}
				return c.printRecord(fc.Raw, federatedTable)
			}
		}}
}

func federatedList() cliVerb {
	return cliVerb{name: "federated-list", args: "ID", summary: "list an API client's federated credentials",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			return func(ctx context.Context, c *cliClient, id int64) error {
				l, err := c.api.ListFederatedCredentials(ctx, id)
				if err != nil {
					return c.fail(err)
				}
				return c.printList(l.Raw, federatedTable)
			}
		}}
}

func federatedDelete() cliVerb {
	return cliVerb{name: "federated-delete", args: "ID", usage: "--credential FID [--if-match ETAG]",
		summary: "delete a federated credential of an API client: its tokens stop authenticating the client at once",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			fid := fs.Int64("credential", 0, "the federated credential's id (see federated-list)")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				if *fid <= 0 {
					return usageErrorf("--credential is required")
				}
				if err := c.api.DeleteFederatedCredential(ctx, id, *fid, *ifMatch); err != nil {
					return c.fail(err)
				}
				c.printDone("deleted federated credential %d of API client %d", *fid, id)
				return nil
			}
		}}
}
