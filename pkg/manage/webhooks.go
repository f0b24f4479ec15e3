package manage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/webhooks"
	"github.com/tollgate/tollgate/storage"
)

// Bounds of a webhook's fields.
const (
	MaxWebhooksPerAccount = 20
	maxWebhookURL         = 2000
	maxWebhookDescription = 200
)

// WebhookSecrets seals a webhook's signing secret under the key-encryption
// key (*webhooks.Secrets).
type WebhookSecrets interface {
	Seal(webhookID int64, secret string) ([]byte, error)
}

// WebhookInput is a new webhook, or the fields of one to change (nil:
// unchanged; on create, AccountID nil is the actor's account and
// IncludeSubtree nil is true).
type WebhookInput struct {
	AccountID      *int64
	URL            *string
	Events         []string // nil: unchanged
	Description    *string
	IncludeSubtree *bool
	Enabled        *bool
}

// checkWebhook applies in to w and returns the invalid fields.
func (s *Service) checkWebhook(in WebhookInput, w *storage.Webhook, creating bool) []FieldError {
	var errs []FieldError
	bad := func(field, detail string) { errs = append(errs, FieldError{Field: field, Detail: detail}) }
	switch {
	case in.URL != nil:
		u := strings.TrimSpace(*in.URL)
		if len(u) > maxWebhookURL {
			bad("url", fmt.Sprintf("must be at most %d characters", maxWebhookURL))
		} else if err := egress.CheckURL(u, s.opts.WebhooksAllowHTTP); err != nil {
			if s.opts.WebhooksAllowHTTP {
				bad("url", "must be an http or https URL with a host, without user info or fragment")
			} else {
				bad("url", "must be an https URL of a public host, without user info or fragment")
			}
		}
		w.URL = u
	case creating:
		bad("url", "is required")
	}
	switch {
	case in.Events != nil:
		if len(in.Events) == 0 {
			bad("events", "must name at least one event type")
		}
		seen := map[string]bool{}
		for _, e := range in.Events {
			if !webhooks.KnownEvent(e) {
				bad("events", "unknown event type "+strconv.Quote(e)+"; known: "+strings.Join(webhooks.EventTypes, ", "))
				break
			}
			if seen[e] {
				bad("events", "names "+strconv.Quote(e)+" twice")
				break
			}
			seen[e] = true
		}
		w.Events = slices.Clone(in.Events)
	case creating:
		bad("events", "is required")
	}
	if in.Description != nil {
		if *in.Description != "" {
			if p := text(*in.Description, 0, maxWebhookDescription); p != "" {
				bad("description", p)
			}
		}
		w.Description = strings.TrimSpace(*in.Description)
	}
	if in.IncludeSubtree != nil {
		w.IncludeSubtree = *in.IncludeSubtree
	}
	if in.Enabled != nil {
		w.Enabled = *in.Enabled
	}
	return errs
}

// webhookText describes a webhook for the audit trail: never its secret.
func webhookText(w storage.Webhook) string {
	return fmt.Sprintf("url %s events %s include_subtree %t enabled %t", strconv.Quote(w.URL), strings.Join(w.Events, ","), w.IncludeSubtree, w.Enabled)
}

func (s *Service) webhookSecrets() (WebhookSecrets, error) {
	if s.opts.WebhookSecrets == nil {
		return nil, &Error{Code: Unavailable, Detail: "Webhooks are not configured on this server (no key-encryption key).", Err: errors.New("no webhook secrets")}
	}
	return s.opts.WebhookSecrets, nil
}

// CreateWebhook adds a webhook to an account of the admin's subtree and
// returns it with its signing secret, which is never shown again.
func (s *Service) CreateWebhook(ctx context.Context, act Actor, in WebhookInput) (storage.Webhook, string, error) {
	p := act.p
	sealer, err := s.webhookSecrets()
	if err != nil {
		return storage.Webhook{}, "", err
	}
	accountID := p.accountID
	if in.AccountID != nil {
		accountID = *in.AccountID
	}
	if err := s.reach(ctx, p, accountID); err != nil {
		if in.AccountID != nil && isNotFound(err) {
			return storage.Webhook{}, "", invalid([]FieldError{{Field: "account_id", Detail: "is not an account you manage"}})
		}
		return storage.Webhook{}, "", err
	}
	w := storage.Webhook{AccountID: accountID, IncludeSubtree: true, Enabled: true, CreatedBy: p.userID()}
	if errs := s.checkWebhook(in, &w, true); errs != nil {
		return storage.Webhook{}, "", invalid(errs)
	}
	secret, err := webhooks.NewSecret()
	if err != nil {
		return storage.Webhook{}, "", internal(err)
	}
	var out storage.Webhook
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		existing, err := tx.ListWebhooks(ctx, storage.WebhookFilter{AccountID: accountID}, storage.Page{Limit: MaxWebhooksPerAccount + 1})
		if err != nil {
			return err
		}
		if len(existing) >= MaxWebhooksPerAccount {
			return &Error{Code: Conflict, Detail: fmt.Sprintf("An account may have at most %d webhooks: delete one first.", MaxWebhooksPerAccount)}
		}
		w.SecretSealed = []byte{0} // sealed below, bound to the id
		created, err := tx.CreateWebhook(ctx, w)
		if err != nil {
			return err
		}
		sealed, err := sealer.Seal(created.ID, secret)
		if err != nil {
			return internal(err)
		}
		out, err = tx.UpdateWebhook(ctx, created.ID, func(w *storage.Webhook) error {
			w.SecretSealed = sealed
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit("webhook.create", "webhook", out.ID, out.AccountID, webhookText(out)))
		return err
	})
	if err != nil {
		return storage.Webhook{}, "", storeError(err)
	}
	return out, secret, nil
}

// loadWebhook returns webhook id when the admin p may manage it.
func (s *Service) loadWebhook(ctx context.Context, p *principal, id int64) (storage.Webhook, error) {
	w, err := s.opts.Store.GetWebhook(ctx, id)
	if err != nil {
		return storage.Webhook{}, storeError(err)
	}
	if err := s.reach(ctx, p, w.AccountID); err != nil {
		return storage.Webhook{}, err
	}
	return w, nil
}

// GetWebhook returns webhook id, for an admin of its account's subtree.
func (s *Service) GetWebhook(ctx context.Context, act Actor, id int64) (storage.Webhook, error) {
	return s.loadWebhook(ctx, act.p, id)
}

// ListWebhooks lists the webhooks of account accountID's subtree (0: the
// actor's account), for an admin of it.
func (s *Service) ListWebhooks(ctx context.Context, act Actor, accountID int64, pg storage.Page) ([]storage.Webhook, error) {
	if accountID == 0 {
		accountID = act.p.accountID
	}
	if err := s.reach(ctx, act.p, accountID); err != nil {
		return nil, err
	}
	out, err := s.opts.Store.ListWebhooks(ctx, storage.WebhookFilter{AccountID: accountID, Subtree: true}, pg)
	if err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// changeWebhook runs fn on webhook id in a transaction with its audit
// event, when its version is want (0: any).
func (s *Service) changeWebhook(ctx context.Context, p *principal, id, want int64, action string, fn func(w *storage.Webhook) error) (storage.Webhook, error) {
	if _, err := s.loadWebhook(ctx, p, id); err != nil {
		return storage.Webhook{}, err
	}
	var out storage.Webhook
	err := s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		w, err := tx.UpdateWebhook(ctx, id, func(w *storage.Webhook) error {
			if want != 0 && w.Version != want {
				return errPrecondition()
			}
			return fn(w)
		})
		if err != nil {
			return err
		}
		out = w
		_, err = tx.AppendAudit(ctx, p.audit("webhook."+action, "webhook", w.ID, w.AccountID, webhookText(w)))
		return err
	})
	if err != nil {
		return storage.Webhook{}, storeError(err)
	}
	return out, nil
}

// UpdateWebhook changes the fields in set of webhook id, all or none.
func (s *Service) UpdateWebhook(ctx context.Context, act Actor, id, want int64, in WebhookInput) (storage.Webhook, error) {
	if in.AccountID != nil {
		return storage.Webhook{}, invalid([]FieldError{{Field: "account_id", Detail: "cannot be changed: create a webhook in the other account"}})
	}
	return s.changeWebhook(ctx, act.p, id, want, "update", func(w *storage.Webhook) error {
		if errs := s.checkWebhook(in, w, false); errs != nil {
			return invalid(errs)
		}
		return nil
	})
}

// RotateWebhookSecret gives webhook id a new signing secret, returned
// once; the old one stops signing at once.
func (s *Service) RotateWebhookSecret(ctx context.Context, act Actor, id, want int64) (storage.Webhook, string, error) {
	sealer, err := s.webhookSecrets()
	if err != nil {
		return storage.Webhook{}, "", err
	}
	secret, err := webhooks.NewSecret()
	if err != nil {
		return storage.Webhook{}, "", internal(err)
	}
	w, err := s.changeWebhook(ctx, act.p, id, want, "rotate_secret", func(w *storage.Webhook) error {
		sealed, err := sealer.Seal(w.ID, secret)
		if err != nil {
			return internal(err)
		}
		w.SecretSealed = sealed
		return nil
	})
	if err != nil {
		return storage.Webhook{}, "", err
	}
	return w, secret, nil
}

// DeleteWebhook removes webhook id and its delivery log.
func (s *Service) DeleteWebhook(ctx context.Context, act Actor, id, want int64) error {
	p := act.p
	w, err := s.loadWebhook(ctx, p, id)
	if err != nil {
		return err
	}
	if want != 0 && w.Version != want {
		return errPrecondition()
	}
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		if err := tx.DeleteWebhook(ctx, id); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, p.audit("webhook.delete", "webhook", w.ID, w.AccountID, webhookText(w)))
		return err
	})
	if err != nil {
		return storeError(err)
	}
	return nil
}

// TestWebhook queues a webhook.test event for webhook id (delivered like
// any other, within a second or so) and returns its delivery.
func (s *Service) TestWebhook(ctx context.Context, act Actor, id int64) (storage.WebhookDelivery, error) {
	p := act.p
	w, err := s.loadWebhook(ctx, p, id)
	if err != nil {
		return storage.WebhookDelivery{}, err
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return storage.WebhookDelivery{}, internal(err)
	}
	d, err := webhooks.TestDelivery(w, "msg_test_"+hex.EncodeToString(b), s.opts.Now())
	if err != nil {
		return storage.WebhookDelivery{}, internal(err)
	}
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		if err := tx.EnqueueDeliveries(ctx, []storage.WebhookDelivery{d}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, p.audit("webhook.test", "webhook", w.ID, w.AccountID, "event "+d.EventID))
		return err
	})
	if err != nil {
		return storage.WebhookDelivery{}, storeError(err)
	}
	d.Status, d.NextAttemptAt, d.CreatedAt = storage.DeliveryPending, s.opts.Now(), s.opts.Now()
	return d, nil
}

// ListWebhookDeliveries lists the delivery log of webhook id, newest
// first (pg.After is a delivery id to continue below).
func (s *Service) ListWebhookDeliveries(ctx context.Context, act Actor, id int64, pg storage.Page) ([]storage.WebhookDelivery, error) {
	if _, err := s.loadWebhook(ctx, act.p, id); err != nil {
		return nil, err
	}
	out, err := s.opts.Store.ListDeliveries(ctx, id, pg)
	if err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}
