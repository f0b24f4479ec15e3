package main

import (
	"context"
	"flag"

	"github.com/tollgate/tollgate/pkg/client"
)

var (
	webhookTable = cliView{
		noun:    "webhooks",
		columns: []string{"id", "account_id", "url", "events", "include_subtree", "enabled", "description"},
		fields:  []string{"id", "account_id", "url", "events", "description", "include_subtree", "enabled", "created_by", "version", "created_at", "updated_at"},
	}
	deliveryTable = cliView{
		noun:    "deliveries",
		columns: []string{"id", "event_id", "event_type", "status", "attempts", "last_status_code", "last_error", "next_attempt_at", "delivered_at"},
		fields:  []string{"id", "event_id", "event_type", "status", "attempts", "last_status_code", "last_error", "next_attempt_at", "delivered_at", "created_at"},
	}
)

func rawWebhook(w *client.Webhook, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return w.Raw, nil
}

// webhookResource is `tollgate webhooks …`.
func webhookResource() cliResource {
	return cliResource{name: "webhooks", summary: "Manage lifecycle webhooks (Standard Webhooks; admins only).", verbs: []cliVerb{
		webhookCreate(), webhookList(), webhookGet(), webhookEdit(),
		{name: "rotate", args: "ID", usage: "[--if-match ETAG]", summary: "give a webhook a new signing secret, shown once",
			setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
				ifMatch := ifMatchFlag(fs)
				return func(ctx context.Context, c *cliClient, id int64) error {
					raw, err := rawWebhook(c.api.RotateWebhookSecret(ctx, id, *ifMatch))
					return c.show(raw, err, webhookTable)
				}
			}},
		{name: "test", args: "ID", summary: "send a webhook.test event (see deliveries)",
			setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
				return func(ctx context.Context, c *cliClient, id int64) error {
					d, err := c.api.TestWebhook(ctx, id)
					if err != nil {
						return c.fail(err)
					}
					return c.printRecord(d.Raw, deliveryTable)
				}
			}},
		{name: "deliveries", args: "ID", usage: "[--after ID] [--limit N]", summary: "the delivery log of a webhook, newest first",
			setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
				var p pageFlags
				p.define(fs)
				return func(ctx context.Context, c *cliClient, id int64) error {
					raw, err := rawList(c.api.ListWebhookDeliveries(ctx, id, p.page()))
					return c.showList(raw, err, deliveryTable)
				}
			}},
		deleteVerb("webhook", "delete a webhook and its delivery log", func(ctx context.Context, api *client.Client, id int64, ifMatch string) (int64, error) {
			return 0, api.DeleteWebhook(ctx, id, ifMatch)
		}),
	}}
}

func webhookCreate() cliVerb {
	return cliVerb{name: "create", usage: "--url URL --events TYPE[,TYPE…] [--account ID] [--description TEXT] [--include-subtree=false]",
		summary: "subscribe a URL to lifecycle events; the signing secret is shown once",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			var in client.WebhookCreate
			fs.StringVar(&in.URL, "url", "", "the https URL to POST events to (required)")
			events := fs.String("events", "", "event types, comma-separated (required): credential.created, credential.rotated, credential.disabled, credential.enabled, credential.deleted, credential.expiring, credential.auto_disabled, credential.leaked, quota.threshold")
			fs.Int64Var(&in.AccountID, "account", 0, "the account (default your own)")
			fs.StringVar(&in.Description, "description", "", "a note")
			subtree := fs.Bool("include-subtree", true, "hear of the account's descendants too")
			return func(ctx context.Context, c *cliClient, _ int64) error {
				in.Events = words(*events)
				if in.URL == "" || len(in.Events) == 0 {
					return usageErrorf("--url and --events are required")
				}
				if c.set["include-subtree"] {
					in.IncludeSubtree = subtree
				}
				raw, err := rawWebhook(c.api.CreateWebhook(ctx, in))
				return c.show(raw, err, webhookTable)
			}
		}}
}

func webhookList() cliVerb {
	return cliVerb{name: "list", usage: "[--account ID] [--after ID] [--limit N]", summary: "list the webhooks of an account's subtree",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			account := fs.Int64("account", 0, "webhooks of this account and its subtree (default your own)")
			var p pageFlags
			p.define(fs)
			return func(ctx context.Context, c *cliClient, _ int64) error {
				raw, err := rawList(c.api.ListWebhooks(ctx, client.WebhookFilter{AccountID: *account, Page: p.page()}))
				return c.showList(raw, err, webhookTable)
			}
		}}
}

func webhookGet() cliVerb {
	return cliVerb{name: "get", args: "ID", summary: "show a webhook (never its secret)",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			return func(ctx context.Context, c *cliClient, id int64) error {
				raw, err := rawWebhook(c.api.GetWebhook(ctx, id))
				return c.show(raw, err, webhookTable)
			}
		}}
}

func webhookEdit() cliVerb {
	return cliVerb{name: "edit", args: "ID", usage: "[--url URL] [--events TYPE,…] [--description TEXT] [--include-subtree BOOL] [--enabled BOOL] [--if-match ETAG]",
		summary: "change a webhook",
		setup: func(fs *flag.FlagSet) func(context.Context, *cliClient, int64) error {
			url := fs.String("url", "", "the https URL")
			events := fs.String("events", "", "event types, comma-separated")
			description := fs.String("description", "", "a note")
			subtree := fs.Bool("include-subtree", true, "hear of the account's descendants too")
			enabled := fs.Bool("enabled", true, "deliver (false holds deliveries)")
			ifMatch := ifMatchFlag(fs)
			return func(ctx context.Context, c *cliClient, id int64) error {
				in := client.WebhookUpdate{IfMatch: *ifMatch}
				if c.set["url"] {
					in.URL = url
				}
				if c.set["events"] {
					in.Events = words(*events)
				}
				if c.set["description"] {
					in.Description = description
				}
				if c.set["include-subtree"] {
					in.IncludeSubtree = subtree
				}
				if c.set["enabled"] {
					in.Enabled = enabled
				}
				raw, err := rawWebhook(c.api.UpdateWebhook(ctx, id, in))
				return c.show(raw, err, webhookTable)
			}
		}}
}
