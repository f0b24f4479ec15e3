package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/webhooks"
	"github.com/tollgate/tollgate/storage"
)

// webhooksPath is where the webhooks of the current account live.
const webhooksPath = Prefix + "/webhooks"

// webhookLabels name the form's fields in messages.
var webhookLabels = map[string]string{
	"url":         "URL",
	"events":      "Events",
	"description": "Description",
	"account_id":  "Account",
}

// eventChoice is a checkbox of the create form.
type eventChoice struct {
	Type    string
	Checked bool
}

// webhooksPage is the list of webhooks with the create form, or, with
// Secret set, the one answer that shows a new secret.
type webhooksPage struct {
	Rows           []storage.Webhook
	Events         []eventChoice
	URL            string
	Description    string
	IncludeSubtree bool
	// Created and Secret: the webhook just made and its secret, shown once.
	Created *storage.Webhook
	Secret  string
}

// webhookPage is one webhook and its delivery log.
type webhookPage struct {
	Hook       storage.Webhook
	Deliveries []storage.WebhookDelivery
	Secret     string // after a rotation, once
}

func (c *Console) webhookChoices(checked []string) []eventChoice {
	out := make([]eventChoice, len(webhooks.EventTypes))
	for i, t := range webhooks.EventTypes {
		out[i] = eventChoice{Type: t, Checked: slices.Contains(checked, t)}
	}
	return out
}

func (c *Console) renderWebhooks(w http.ResponseWriter, r *http.Request, st *state, status int, p webhooksPage, errs formErrors) {
	rows, err := c.opts.Service.ListWebhooks(r.Context(), st.act, st.account.ID, storage.Page{Limit: pageSize})
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	p.Rows = rows
	c.render(w, r, st, status, "webhooks", view{Title: "Webhooks", Nav: "webhooks", Notice: notice(r), Errors: errs, Page: p})
}

func (c *Console) listWebhooks(w http.ResponseWriter, r *http.Request, st *state) {
	c.renderWebhooks(w, r, st, http.StatusOK, webhooksPage{Events: c.webhookChoices(nil), IncludeSubtree: true}, nil)
}

func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request, st *state) {
	f := r.PostForm
	sent := webhooksPage{URL: strings.TrimSpace(f.Get("url")), Description: f.Get("description"), IncludeSubtree: f.Get("include_subtree") == "on",
		Events: c.webhookChoices(f["events"])}
	events := f["events"]
	if events == nil {
		events = []string{}
	}
	accountID := st.account.ID
	in := manage.WebhookInput{AccountID: &accountID, URL: &sent.URL, Events: events, Description: &sent.Description, IncludeSubtree: &sent.IncludeSubtree}
	hook, secret, err := c.opts.Service.CreateWebhook(r.Context(), st.act, in)
	if err != nil {
		c.refused(w, r, st, err, webhookLabels, func(status int, errs formErrors) {
			c.renderWebhooks(w, r, st, status, sent, errs)
		})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	c.renderWebhooks(w, r, st, http.StatusOK, webhooksPage{Events: c.webhookChoices(nil), IncludeSubtree: true, Created: &hook, Secret: secret}, nil)
}

func (c *Console) showWebhook(w http.ResponseWriter, r *http.Request, st *state) {
	c.renderWebhook(w, r, st, "")
}

func (c *Console) renderWebhook(w http.ResponseWriter, r *http.Request, st *state, secret string) {
	id := pathID(r)
	hook, err := c.opts.Service.GetWebhook(r.Context(), st.act, id)
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	ds, err := c.opts.Service.ListWebhookDeliveries(r.Context(), st.act, id, storage.Page{After: pageAfter(r), Limit: pageSize})
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	if secret != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	c.render(w, r, st, http.StatusOK, "webhook", view{Title: hook.URL, Nav: "webhooks", Notice: notice(r), Page: webhookPage{Hook: hook, Deliveries: ds, Secret: secret}})
}

func (c *Console) testWebhook(w http.ResponseWriter, r *http.Request, st *state) {
	id := pathID(r)
	if _, err := c.opts.Service.TestWebhook(r.Context(), st.act, id); err != nil {
		c.failure(w, r, st, err)
		return
	}
	http.Redirect(w, r, webhooksPath+"/"+strconv.FormatInt(id, 10)+"?ok=webhook-test", http.StatusSeeOther)
}

func (c *Console) rotateWebhook(w http.ResponseWriter, r *http.Request, st *state) {
	_, secret, err := c.opts.Service.RotateWebhookSecret(r.Context(), st.act, pathID(r), 0)
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	c.renderWebhook(w, r, st, secret)
}

func (c *Console) deleteWebhook(w http.ResponseWriter, r *http.Request, st *state) {
	if err := c.opts.Service.DeleteWebhook(r.Context(), st.act, pathID(r), 0); err != nil {
		c.failure(w, r, st, err)
		return
	}
	http.Redirect(w, r, webhooksPath+"?ok=webhook-deleted", http.StatusSeeOther)
}
