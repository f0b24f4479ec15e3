package sql

import (
	"context"
	"database/sql"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/storage"
)

type userRow struct {
	ID               int64 `gorm:"primaryKey"`
	AccountID        int64
	Username         string
	PasswordHash     string
	Role             string
	Status           string
	TokensValidAfter sql.NullTime
	Version          int64
	CreatedAt        time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt        time.Time `gorm:"autoUpdateTime:false"`
}

func (userRow) TableName() string { return "users" }

func toUserRow(u storage.User) userRow {
	return userRow{
		ID:               u.ID,
		AccountID:        u.AccountID,
		Username:         u.Username,
		PasswordHash:     u.PasswordHash,
		Role:             string(u.Role),
		Status:           string(u.Status),
		TokensValidAfter: nullTime(u.TokensValidAfter),
		Version:          u.Version,
		CreatedAt:        dbTime(u.CreatedAt),
		UpdatedAt:        dbTime(u.UpdatedAt),
	}
}

func (r userRow) user() storage.User {
	return storage.User{
		ID:               r.ID,
		AccountID:        r.AccountID,
		Username:         r.Username,
		PasswordHash:     r.PasswordHash,
		Role:             storage.Role(r.Role),
		Status:           storage.Status(r.Status),
		TokensValidAfter: fromNullTime(r.TokensValidAfter),
		Version:          r.Version,
		CreatedAt:        r.CreatedAt.UTC(),
		UpdatedAt:        r.UpdatedAt.UTC(),
	}
}

// CreateUser stores u and returns it with its new ID, Version 1 and
// timestamps; the ID, Version, CreatedAt and UpdatedAt of u are ignored. A taken username answers
// storage.ErrAlreadyExists, an unknown account storage.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u storage.User) (storage.User, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	now := dbTime(time.Now())
	u.ID, u.Version, u.CreatedAt, u.UpdatedAt = 0, 1, now, now
	row := toUserRow(u)
	err := s.write(ctx, func(db *gorm.DB) error { return db.Create(&row).Error })
	if err != nil {
		return storage.User{}, mapError("create user", err)
	}
	return row.user(), nil
}

// GetUser answers storage.ErrNotFound for an unknown id.
func (s *Store) GetUser(ctx context.Context, id int64) (storage.User, error) {
	return s.getUser(ctx, "get user", "id = ?", id)
}

// GetUserByUsername answers storage.ErrNotFound for an unknown username.
// Usernames are compared without regard to ASCII letter case, through the
// unique index on lower(username) (migration 0007); usernames are ASCII,
// so both databases' lower() fold them the same.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	return s.getUser(ctx, "get user by username", "lower(username) = lower(?)", username)
}

func (s *Store) getUser(ctx context.Context, op, where string, arg any) (storage.User, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	var row userRow
	if err := s.db.WithContext(ctx).Where(where, arg).Take(&row).Error; err != nil {
		return storage.User{}, mapError(op, err)
	}
	return row.user(), nil
}

// mutableUserColumns are the columns UpdateUser writes.
var mutableUserColumns = []string{"username", "password_hash", "role", "status", "tokens_valid_after", "version", "updated_at"}

// UpdateUser answers storage.ErrNotFound for an unknown id and
// storage.ErrAlreadyExists for a taken username; an error from update is
// returned unchanged and nothing is written. Version becomes the stored one
// plus one, whatever update does to it.
func (s *Store) UpdateUser(ctx context.Context, id int64, update func(*storage.User) error) (storage.User, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	var (
		updated   storage.User
		updateErr error
	)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row userRow
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
			Where("id = ?", id).Take(&row).Error
		if err != nil {
			return err
		}
		stored := row.user()
		u := row.user()
		if err := update(&u); err != nil {
			updateErr = err
			return err
		}
		u.ID, u.AccountID, u.CreatedAt = stored.ID, stored.AccountID, stored.CreatedAt
		u.Version = stored.Version + 1
		u.UpdatedAt = laterThan(stored.UpdatedAt, time.Now())
		newRow := toUserRow(u)
		if err := updateRow(tx, mutableUserColumns, &newRow); err != nil {
			return err
		}
		updated = newRow.user()
		return nil
	})
	if updateErr != nil {
		return storage.User{}, updateErr
	}
	if err != nil {
		return storage.User{}, mapError("update user", err)
	}
	return updated, nil
}

// DeleteUser removes user id and the clients they own in one transaction.
// Clients the user created for someone else stay, their CreatedBy cleared
// (an edit: Version goes up by one); the audit trail keeps who created them. The user row is locked first, so
// a client created for the user concurrently either is deleted too or fails
// with storage.ErrConflict. An unknown id answers storage.ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row userRow
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
			Select("id").Where("id = ?", id).Take(&row).Error
		if err != nil {
			return err
		}
		if err := tx.Where("owner_id = ?", id).Delete(&clientRow{}).Error; err != nil {
			return err
		}
		err = tx.Model(&clientRow{}).Where("created_by = ?", id).Updates(map[string]any{
			"created_by": nil,
			"version":    gorm.Expr("version + 1"),
			"updated_at": dbTime(time.Now()),
		}).Error
		if err != nil {
			return err
		}
		return tx.Where("id = ?", id).Delete(&userRow{}).Error
	})
	return mapError("delete user", err)
}

// ListUsers lists the users of account f.AccountID, or of its subtree, in id
// order; AccountID 0 stands for the whole installation. See MaxPageLimit for
// page.Limit.
func (s *Store) ListUsers(ctx context.Context, f storage.UserFilter, page storage.Page) ([]storage.User, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	db := whereAccount(s.db.WithContext(ctx), "account_id", f.AccountID, f.Subtree)
	db = whereNameContains(db, "username", f.Name)
	var rows []userRow
	if err := pageAfter(db, page).Find(&rows).Error; err != nil {
		return nil, mapError("list users", err)
	}
	users := make([]storage.User, len(rows))
	for i, r := range rows {
		users[i] = r.user()
	}
	return users, nil
}
