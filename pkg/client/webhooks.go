package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// WebhookCreate is a new webhook: URL hears of Events (credential.created,
// credential.rotated, credential.disabled, credential.enabled,
// credential.deleted, credential.expiring, credential.auto_disabled,
// credential.leaked, quota.threshold).
type WebhookCreate struct {
	// AccountID is the account (0: the caller's).
	AccountID   int64    `json:"account_id,omitempty"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description,omitempty"`
	// IncludeSubtree, when set, says whether the webhook hears of the
	// account's descendants too (default true).
	IncludeSubtree *bool `json:"include_subtree,omitempty"`
	Enabled        *bool `json:"enabled,omitempty"`
}

// WebhookUpdate changes the fields set (nil: unchanged).
type WebhookUpdate struct {
	URL            *string  `json:"url,omitempty"`
	Events         []string `json:"events,omitempty"`
	Description    *string  `json:"description,omitempty"`
	IncludeSubtree *bool    `json:"include_subtree,omitempty"`
	Enabled        *bool    `json:"enabled,omitempty"`
	// IfMatch, when set, is the version the change applies to.
	IfMatch string `json:"-"`
}

// Webhook is a webhook subscription. Secret is set only in the answer of
// its creation and of a rotation: it is never shown again.
type Webhook struct {
	ID             int64     `json:"id"`
	AccountID      int64     `json:"account_id"`
	URL            string    `json:"url"`
	Events         []string  `json:"events"`
	Description    string    `json:"description"`
	IncludeSubtree bool      `json:"include_subtree"`
	Enabled        bool      `json:"enabled"`
	CreatedBy      *int64    `json:"created_by"`
	Version        int64     `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Secret         string    `json:"secret,omitempty"`
	// Raw is the answer's JSON as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// WebhookDelivery is an entry of a webhook's delivery log.
type WebhookDelivery struct {
	ID            int64           `json:"id"`
	EventID       string          `json:"event_id"`
	EventType     string          `json:"event_type"`
	Status        string          `json:"status"` // pending, delivered or failed
	Attempts      int             `json:"attempts"`
	LastStatus    *int            `json:"last_status_code"`
	LastError     string          `json:"last_error,omitempty"` // refused, timeout, connection, status, secret
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	DeliveredAt   *time.Time      `json:"delivered_at"`
	CreatedAt     time.Time       `json:"created_at"`
	Raw           json.RawMessage `json:"-"`
}

// WebhookFilter selects webhooks: those of AccountID (default the
// caller's account) and its subtree.
type WebhookFilter struct {
	AccountID int64
	Page
}

func webhookRaw(w *Webhook) *json.RawMessage { return &w.Raw }

// CreateWebhook adds a webhook; its secret is in the result, once.
func (c *Client) CreateWebhook(ctx context.Context, in WebhookCreate) (*Webhook, error) {
	return record(ctx, c, call{method: http.MethodPost, path: "/webhooks", body: in}, webhookRaw)
}

// ListWebhooks reads a page of webhooks (admins only).
func (c *Client) ListWebhooks(ctx context.Context, f WebhookFilter) (*List[Webhook], error) {
	q := f.query()
	setInt(q, "account_id", f.AccountID)
	return list[Webhook](ctx, c, "/webhooks", q)
}

// GetWebhook reads a webhook (never its secret).
func (c *Client) GetWebhook(ctx context.Context, id int64) (*Webhook, error) {
	return record(ctx, c, call{method: http.MethodGet, path: idPath("/webhooks", id)}, webhookRaw)
}

// UpdateWebhook changes the fields in set.
func (c *Client) UpdateWebhook(ctx context.Context, id int64, in WebhookUpdate) (*Webhook, error) {
	return record(ctx, c, call{method: http.MethodPatch, path: idPath("/webhooks", id), body: in, ifMatch: in.IfMatch}, webhookRaw)
}

// DeleteWebhook deletes a webhook and its delivery log. ifMatch may be
// empty.
func (c *Client) DeleteWebhook(ctx context.Context, id int64, ifMatch string) error {
	_, err := c.do(ctx, call{method: http.MethodDelete, path: idPath("/webhooks", id), ifMatch: ifMatch})
	return err
}

// RotateWebhookSecret gives a webhook a new secret, in the result once.
// ifMatch may be empty.
func (c *Client) RotateWebhookSecret(ctx context.Context, id int64, ifMatch string) (*Webhook, error) {
	return record(ctx, c, call{method: http.MethodPost, path: idPath("/webhooks", id, "rotate"), ifMatch: ifMatch}, webhookRaw)
}

// TestWebhook queues a webhook.test event and returns its delivery.
func (c *Client) TestWebhook(ctx context.Context, id int64) (*WebhookDelivery, error) {
	return record(ctx, c, call{method: http.MethodPost, path: idPath("/webhooks", id, "test")},
		func(d *WebhookDelivery) *json.RawMessage { return &d.Raw })
}

// ListWebhookDeliveries reads a page of a webhook's delivery log, newest
// first.
func (c *Client) ListWebhookDeliveries(ctx context.Context, id int64, p Page) (*List[WebhookDelivery], error) {
	return list[WebhookDelivery](ctx, c, idPath("/webhooks", id, "deliveries"), p.query())
}
