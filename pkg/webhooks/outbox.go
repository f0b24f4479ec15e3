package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Store is the relational store the outbox decorates.
type Store interface {
	storage.Store
	storage.Transactor
}

// Outbox decorates a Store so that every audited change of a credential
// made in a transaction also writes, in that transaction, a delivery row
// for each webhook that hears of it (the account's own, and its
// ancestors' that include their subtree): a change that rolls back sends
// nothing, and one that commits cannot lose its event. It overrides only
// InTx and AppendAudit; everything else is the inner store's.
type Outbox struct {
	Store
	now func() time.Time
}

// NewOutbox returns the decorator of inner; now may be nil (time.Now).
func NewOutbox(inner Store, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{Store: inner, now: now}
}

// InTx runs fn on a transaction whose audit events enqueue their webhook
// deliveries.
func (o *Outbox) InTx(ctx context.Context, fn func(tx storage.Store) error) error {
	return o.Store.InTx(ctx, func(tx storage.Store) error {
		return fn(&outboxTx{Store: tx, before: map[int64]storage.Client{}, now: o.now})
	})
}

// AppendAudit outside a transaction: an event that tells of a change gets
// one of its own, so that the audit record and the deliveries land
// together.
func (o *Outbox) AppendAudit(ctx context.Context, e storage.AuditEvent) (storage.AuditEvent, error) {
	if auditEvent(e, nil, nil) == "" {
		return o.Store.AppendAudit(ctx, e)
	}
	var out storage.AuditEvent
	err := o.InTx(ctx, func(tx storage.Store) error {
		var err error
		out, err = tx.AppendAudit(ctx, e)
		return err
	})
	return out, err
}

// outboxTx is a transaction that remembers each credential as it was
// before the transaction changed or deleted it (to tell a disable from
// another update, and to describe a deleted credential).
type outboxTx struct {
	storage.Store
	before map[int64]storage.Client
	now    func() time.Time
}

func (t *outboxTx) UpdateClient(ctx context.Context, id int64, update func(*storage.Client) error) (storage.Client, error) {
	var old storage.Client
	c, err := t.Store.UpdateClient(ctx, id, func(c *storage.Client) error {
		old = *c
		return update(c)
	})
	if err == nil {
		if _, seen := t.before[id]; !seen {
			t.before[id] = old
		}
	}
	return c, err
}

func (t *outboxTx) DeleteClient(ctx context.Context, id int64) error {
	if _, seen := t.before[id]; !seen {
		if c, err := t.GetClient(ctx, id); err == nil {
			t.before[id] = c
		}
	}
	return t.Store.DeleteClient(ctx, id)
}

func (t *outboxTx) AppendAudit(ctx context.Context, e storage.AuditEvent) (storage.AuditEvent, error) {
	stored, err := t.Store.AppendAudit(ctx, e)
	if err != nil {
		return stored, err
	}
	if err := enqueueAudit(ctx, t.Store, stored, t.before, t.now()); err != nil {
		return storage.AuditEvent{}, fmt.Errorf("webhook outbox: %w", err)
	}
	return stored, nil
}

// enqueueAudit writes the deliveries of the event audit event e tells of,
// if any, through tx.
func enqueueAudit(ctx context.Context, tx storage.Store, e storage.AuditEvent, before map[int64]storage.Client, now time.Time) error {
	if auditEvent(e, nil, nil) == "" && e.Action != e.TargetType+".update" {
		return nil
	}
	var old, cur *storage.Client
	if c, ok := before[e.TargetID]; ok {
		old = &c
	}
	c, err := tx.GetClient(ctx, e.TargetID)
	switch {
	case err == nil:
		cur = &c
	case old != nil:
		cur = old // deleted in this transaction
	default:
		cur = &storage.Client{ID: e.TargetID, AccountID: e.AccountID, Kind: storage.Kind(e.TargetType)}
	}
	eventType := auditEvent(e, old, cur)
	if eventType == "" {
		return nil
	}
	body, err := payload(eventType, e.Time, CredentialData(*cur))
	if err != nil {
		return err
	}
	return enqueue(ctx, tx, cur.AccountID, eventType, auditEventID(e.ID), body, now)
}

// enqueue writes a delivery of one event, due and created at now, to
// every webhook of accountID hearing of eventType.
func enqueue(ctx context.Context, tx storage.Webhooks, accountID int64, eventType, eventID string, body []byte, now time.Time) error {
	hooks, err := tx.WebhooksFor(ctx, accountID, eventType)
	if err != nil || len(hooks) == 0 {
		return err
	}
	ds := make([]storage.WebhookDelivery, len(hooks))
	for i, h := range hooks {
		ds[i] = storage.WebhookDelivery{WebhookID: h.ID, EventID: eventID, EventType: eventType, Payload: body, NextAttemptAt: now, CreatedAt: now}
	}
	return tx.EnqueueDeliveries(ctx, ds)
}
