package sql

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/storage"
)

var _ storage.SigningKeys = (*Store)(nil)

type signingKeyRow struct {
	ID        string `gorm:"primaryKey"`
	Algorithm string
	Sealed    []byte
	CreatedAt time.Time
	ActiveAt  time.Time
}

func (signingKeyRow) TableName() string { return "signing_keys" }

func (r signingKeyRow) key() storage.SigningKey {
	return storage.SigningKey{
		ID:        r.ID,
		Algorithm: r.Algorithm,
		Sealed:    r.Sealed,
		CreatedAt: r.CreatedAt.UTC(),
		ActiveAt:  r.ActiveAt.UTC(),
	}
}

// CreateSigningKey implements storage.SigningKeys.
func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	row := signingKeyRow{
		ID:        k.ID,
		Algorithm: k.Algorithm,
		Sealed:    k.Sealed,
		CreatedAt: dbTime(k.CreatedAt),
		ActiveAt:  dbTime(k.ActiveAt),
	}
	err := s.write(ctx, func(db *gorm.DB) error { return db.Create(&row).Error })
	return mapError("create signing key", err)
}

// ListSigningKeys implements storage.SigningKeys.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var rows []signingKeyRow
	if err := s.db.WithContext(ctx).Order("active_at").Find(&rows).Error; err != nil {
		return nil, mapError("list signing keys", err)
	}
	out := make([]storage.SigningKey, len(rows))
	for i, r := range rows {
		out[i] = r.key()
	}
	return out, nil
}

// DeleteSigningKey implements storage.SigningKeys.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var n int64
	err := s.write(ctx, func(db *gorm.DB) error {
		res := db.Where("id = ?", id).Delete(&signingKeyRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return mapError("delete signing key", err)
	}
	if n == 0 {
		return mapError("delete signing key", gorm.ErrRecordNotFound)
	}
	return nil
}
