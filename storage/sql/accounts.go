package sql

import (
	"context"
	"database/sql"
	"time"

	"github.com/tollgate/tollgate/storage"
)

type accountRow struct {
	ID        int64 `gorm:"primaryKey"`
	ParentID  sql.NullInt64
	Name      string
	Status    string
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"autoUpdateTime:false"`
}

func (accountRow) TableName() string { return "accounts" }

func toAccountRow(a storage.Account) accountRow {
	return accountRow{
		ID:        a.ID,
		ParentID:  nullID(a.ParentID),
		Name:      a.Name,
		Status:    string(a.Status),
		CreatedAt: dbTime(a.CreatedAt),
		UpdatedAt: dbTime(a.UpdatedAt),
	}
}

func (r accountRow) account() storage.Account {
	return storage.Account{
		ID:        r.ID,
		ParentID:  fromNullID(r.ParentID),
		Name:      r.Name,
		Status:    storage.Status(r.Status),
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// CreateAccount stores a and returns it with its new ID and timestamps; the
// ID, CreatedAt and UpdatedAt of a are ignored. A ParentID that does not
// exist answers storage.ErrConflict.
func (s *Store) CreateAccount(ctx context.Context, a storage.Account) (storage.Account, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	now := dbTime(time.Now())
	a.ID, a.CreatedAt, a.UpdatedAt = 0, now, now
	row := toAccountRow(a)
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return storage.Account{}, mapError("create account", err)
	}
	return row.account(), nil
}

// GetAccount answers storage.ErrNotFound for an unknown id.
func (s *Store) GetAccount(ctx context.Context, id int64) (storage.Account, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	var row accountRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return storage.Account{}, mapError("get account", err)
	}
	return row.account(), nil
}

// ancestorsQuery walks up from account id to the root (a path, so at most
// the depth of the tree) and counts the rows that are rootID. UNION, not
// UNION ALL, ends the walk should the tree ever hold a cycle.
const ancestorsQuery = `
WITH RECURSIVE ancestors (id, parent_id) AS (
	SELECT id, parent_id FROM accounts WHERE id = ?
	UNION
	SELECT a.id, a.parent_id FROM accounts a JOIN ancestors s ON a.id = s.parent_id
)
SELECT COUNT(*) FROM ancestors WHERE id = ?`

// AccountInSubtree reports whether account id is rootID or one of its
// descendants. Unknown ids answer false.
func (s *Store) AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	var n int64
	if err := s.db.WithContext(ctx).Raw(ancestorsQuery, id, rootID).Scan(&n).Error; err != nil {
		return false, mapError("account in subtree", err)
	}
	return n > 0, nil
}
