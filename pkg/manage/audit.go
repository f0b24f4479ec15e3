package manage

import (
	"context"

	"github.com/tollgate/tollgate/storage"
)

// ListAudit lists one page of the events of account accountID's subtree,
// newest first (pg.After is an event id to continue below), for an admin
// of that subtree.
func (s *Service) ListAudit(ctx context.Context, act Actor, accountID int64, pg storage.Page) ([]storage.AuditEvent, error) {
	if err := s.reach(ctx, act.p, accountID); err != nil {
		return nil, err
	}
	events, err := s.opts.Store.ListAudit(ctx, storage.AuditFilter{AccountID: accountID, Subtree: true}, pg)
	if err != nil {
		return nil, storeError(err)
	}
	return events, nil
}
