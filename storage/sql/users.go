package sql

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/storage"
)

type userRow struct {
	ID           int64 `gorm:"primaryKey"`
	AccountID    int64
	Username     string
	PasswordHash string
	Role         string
	Status       string
	CreatedAt    time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt    time.Time `gorm:"autoUpdateTime:false"`
}

func (userRow) TableName() string { return "users" }

func toUserRow(u storage.User) userRow {
	return userRow{
		ID:           u.ID,
		AccountID:    u.AccountID,
		Username:     u.Username,
		PasswordHash: u.PasswordHash,
		Role:         string(u.Role),
		Status:       string(u.Status),
		CreatedAt:    dbTime(u.CreatedAt),
		UpdatedAt:    dbTime(u.UpdatedAt),
	}
}

func (r userRow) user() storage.User {
	return storage.User{
		ID:           r.ID,
		AccountID:    r.AccountID,
		Username:     r.Username,
		PasswordHash: r.PasswordHash,
		Role:         storage.Role(r.Role),
		Status:       storage.Status(r.Status),
		CreatedAt:    r.CreatedAt.UTC(),
		UpdatedAt:    r.UpdatedAt.UTC(),
	}
}

// CreateUser stores u and returns it with its new ID and timestamps; the ID,
// CreatedAt and UpdatedAt of u are ignored. A taken username answers
// storage.ErrAlreadyExists, an unknown account storage.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u storage.User) (storage.User, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	now := dbTime(time.Now())
	u.ID, u.CreatedAt, u.UpdatedAt = 0, now, now
	row := toUserRow(u)
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return storage.User{}, mapError("create user", err)
	}
	return row.user(), nil
}

// GetUser answers storage.ErrNotFound for an unknown id.
func (s *Store) GetUser(ctx context.Context, id int64) (storage.User, error) {
	return s.getUser(ctx, "get user", "id = ?", id)
}

// GetUserByUsername answers storage.ErrNotFound for an unknown username.
// Usernames are compared exactly, case included.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	return s.getUser(ctx, "get user by username", "username = ?", username)
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
var mutableUserColumns = []string{"username", "password_hash", "role", "status", "updated_at"}

// UpdateUser answers storage.ErrNotFound for an unknown id and
// storage.ErrAlreadyExists for a taken username; an error from update is
// returned unchanged and nothing is written.
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
		u.UpdatedAt = laterThan(stored.UpdatedAt, time.Now())
		newRow := toUserRow(u)
		res := tx.Select(mutableUserColumns).Updates(&newRow)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%d rows updated, want 1", res.RowsAffected)
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
