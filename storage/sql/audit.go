package sql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/storage"
)

// Limits on the free-text fields of an audit event, in characters. Longer
// values are cut rather than refused: losing the end of a note is better
// than losing the event.
const (
	MaxAuditDetail     = 500
	MaxAuditRemoteAddr = 100
)

type auditRow struct {
	ID            int64 `gorm:"primaryKey"`
	OccurredAt    time.Time
	AccountID     int64
	ActorUserID   int64
	ActorClientID int64
	Action        string
	TargetType    string
	TargetID      int64
	RemoteAddr    string
	Outcome       string
	Detail        string
}

func (auditRow) TableName() string { return "audit_events" }

func (r auditRow) event() storage.AuditEvent {
	return storage.AuditEvent{
		ID:            r.ID,
		Time:          r.OccurredAt.UTC(),
		AccountID:     r.AccountID,
		ActorUserID:   r.ActorUserID,
		ActorClientID: r.ActorClientID,
		Action:        r.Action,
		TargetType:    r.TargetType,
		TargetID:      r.TargetID,
		RemoteAddr:    r.RemoteAddr,
		Outcome:       r.Outcome,
		Detail:        r.Detail,
	}
}

// AppendAudit stores e and returns it as stored: with its new ID, Time set
// to now when zero, and Detail and RemoteAddr cut to MaxAuditDetail and
// MaxAuditRemoteAddr characters (invalid UTF-8 replaced). The ID of e is
// ignored; Action must be set and Outcome be "success" or "failure". Inside
// InTx the event is rolled back with everything else: record a failure
// outside the transaction that failed.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) (storage.AuditEvent, error) {
	if e.Action == "" {
		return storage.AuditEvent{}, errors.New("append audit event: empty action")
	}
	if e.Outcome != "success" && e.Outcome != "failure" {
		return storage.AuditEvent{}, fmt.Errorf("append audit event: outcome %q is not success or failure", e.Outcome)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	row := auditRow{
		OccurredAt:    dbTime(e.Time),
		AccountID:     e.AccountID,
		ActorUserID:   e.ActorUserID,
		ActorClientID: e.ActorClientID,
		Action:        e.Action,
		TargetType:    e.TargetType,
		TargetID:      e.TargetID,
		RemoteAddr:    cut(e.RemoteAddr, MaxAuditRemoteAddr),
		Outcome:       e.Outcome,
		Detail:        cut(e.Detail, MaxAuditDetail),
	}
	err := s.write(ctx, func(db *gorm.DB) error { return db.Create(&row).Error })
	if err != nil {
		return storage.AuditEvent{}, mapError("append audit event", err)
	}
	return row.event(), nil
}

// cut returns s as valid UTF-8 of at most n characters.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// ListAudit lists the events of account f.AccountID, or of its subtree, in
// the order they were appended, newest first; page.After, when positive, is
// the id to continue below. AccountID 0 stands for the whole installation.
// See MaxPageLimit for page.Limit.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter, page storage.Page) ([]storage.AuditEvent, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	db := whereAccount(s.db.WithContext(ctx), "account_id", f.AccountID, f.Subtree)
	if page.After > 0 {
		db = db.Where("id < ?", page.After)
	}
	var rows []auditRow
	if err := db.Order("id DESC").Limit(pageLimit(page)).Find(&rows).Error; err != nil {
		return nil, mapError("list audit events", err)
	}
	events := make([]storage.AuditEvent, len(rows))
	for i, r := range rows {
		events[i] = r.event()
	}
	return events, nil
}
