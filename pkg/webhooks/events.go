package webhooks

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Event types.
const (
	CredentialCreated      = "credential.created"       // #nosec G101 -- an event type name, not a credential
	CredentialRotated      = "credential.rotated"       // #nosec G101 -- an event type name, not a credential
	CredentialDisabled     = "credential.disabled"      // #nosec G101 -- an event type name, not a credential
	CredentialEnabled      = "credential.enabled"       // #nosec G101 -- an event type name, not a credential
	CredentialDeleted      = "credential.deleted"       // #nosec G101 -- an event type name, not a credential
	CredentialExpiring     = "credential.expiring"      // #nosec G101 -- an event type name, not a credential
	CredentialAutoDisabled = "credential.auto_disabled" // #nosec G101 -- an event type name, not a credential
	CredentialLeaked       = "credential.leaked"        // #nosec G101 -- an event type name, not a credential
	QuotaThreshold         = "quota.threshold"
	// Test is sent only on request, to one webhook; no subscription names it.
	Test = "webhook.test"
)

// EventTypes are the event types a webhook may subscribe to.
var EventTypes = []string{
	CredentialCreated, CredentialRotated, CredentialDisabled, CredentialEnabled, CredentialDeleted,
	CredentialExpiring, CredentialAutoDisabled, CredentialLeaked, QuotaThreshold,
}

// KnownEvent reports whether t is a type a webhook may subscribe to.
func KnownEvent(t string) bool { return slices.Contains(EventTypes, t) }

// Envelope is the JSON body of every delivery (Standard Webhooks).
type Envelope struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// Credential is the data of the credential.* events: never a secret, nor
// its hash or hint.
type Credential struct {
	ID             int64      `json:"id"`
	Kind           string     `json:"kind"`
	AccountID      int64      `json:"account_id"`
	Name           string     `json:"name,omitempty"`
	Status         string     `json:"status,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
}

// CredentialData returns the event data of c.
func CredentialData(c storage.Client) Credential {
	d := Credential{ID: c.ID, Kind: string(c.Kind), AccountID: c.AccountID, Name: c.Name, Status: string(c.Status), DisabledReason: string(c.DisabledReason)}
	if !c.ExpiresAt.IsZero() {
		t := c.ExpiresAt.UTC()
		d.ExpiresAt = &t
	}
	return d
}

// Quota is the data of quota.threshold.
type Quota struct {
	AccountID    int64     `json:"account_id"`
	CredentialID int64     `json:"credential_id,omitempty"`
	Percent      int       `json:"percent"`
	Limit        int64     `json:"limit"`
	Used         int64     `json:"used"`
	Period       string    `json:"period"`
	PeriodStart  time.Time `json:"period_start"`
}

// payload encodes an envelope.
func payload(eventType string, at time.Time, data any) ([]byte, error) {
	return json.Marshal(Envelope{Type: eventType, Timestamp: at.UTC().Truncate(time.Second), Data: data})
}

// auditEvent returns the event type an audit event of a credential tells
// of, given the credential before the change (when the transaction changed
// or deleted it) and after: "" for none.
func auditEvent(e storage.AuditEvent, before *storage.Client, after *storage.Client) string {
	if e.Outcome != "success" || (e.TargetType != string(storage.KindClient) && e.TargetType != string(storage.KindKey)) {
		return ""
	}
	switch strings.TrimPrefix(e.Action, e.TargetType+".") {
	case "create", "create_default":
		return CredentialCreated
	case "rotate_secret":
		return CredentialRotated
	case "delete":
		return CredentialDeleted
	case "disable":
		return CredentialDisabled
	case "enable":
		return CredentialEnabled
	case "auto_disable":
		return CredentialAutoDisabled
	case "leaked":
		return CredentialLeaked
	case "update":
		if before == nil || after == nil {
			return ""
		}
		switch {
		case before.Status == storage.StatusActive && after.Status == storage.StatusDisabled:
			return CredentialDisabled
		case before.Status == storage.StatusDisabled && after.Status == storage.StatusActive:
			return CredentialEnabled
		}
	}
	return ""
}

// auditEventID is the message id of the event an audit event tells of:
// one per audit event, so a retried delivery carries the same id.
func auditEventID(auditID int64) string { return "msg_audit_" + strconv.FormatInt(auditID, 10) }

// expiringEventID is the message id of the expiry warning of credential
// id for the expiry at: one per credential and expiry date.
func expiringEventID(id int64, at time.Time) string {
	return "msg_expiring_" + strconv.FormatInt(id, 10) + "_" + strconv.FormatInt(at.Unix(), 10)
}

// quotaEventID is the message id of a quota threshold: one per credential
// (or account), percent and period, whichever instance reports it.
func quotaEventID(q Quota) string {
	who := "a" + strconv.FormatInt(q.AccountID, 10)
	if q.CredentialID != 0 {
		who = "c" + strconv.FormatInt(q.CredentialID, 10)
	}
	return "msg_quota_" + who + "_" + strconv.Itoa(q.Percent) + "_" + strconv.FormatInt(q.PeriodStart.Unix(), 10)
}
