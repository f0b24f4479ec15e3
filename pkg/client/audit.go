package client

import (
	"context"
	"time"
)

// AuditEvent is one entry of the audit trail. It never holds a secret.
type AuditEvent struct {
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	// AccountID is the account the target belongs to.
	AccountID int64 `json:"account_id"`
	// ActorUserID is 0 when the actor did not act as a user;
	// ActorClientID the credential the actor used, 0 for the system.
	ActorUserID   int64  `json:"actor_user_id"`
	ActorClientID int64  `json:"actor_client_id"`
	Action        string `json:"action"`      // e.g. client.create, key.rotate_secret
	TargetType    string `json:"target_type"` // account, user, client or key
	TargetID      int64  `json:"target_id"`
	RemoteAddr    string `json:"remote_addr,omitempty"`
	Outcome       string `json:"outcome"` // success or failure
	Detail        string `json:"detail,omitempty"`
}

// AuditFilter selects audit events: those of AccountID (default the
// caller's account) and its subtree.
type AuditFilter struct {
	AccountID int64
	Page
}

// ListAudit reads a page of the audit trail, newest first (admins only).
func (c *Client) ListAudit(ctx context.Context, f AuditFilter) (*List[AuditEvent], error) {
	q := f.query()
	setInt(q, "account_id", f.AccountID)
	return list[AuditEvent](ctx, c, "/audit", q)
}
