package sql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/storage"
)

// touchInterval is the least time between two writes of a client's
// last_used_at: TouchClient runs on every token request, the column is only
// read by people.
const touchInterval = time.Minute

type clientRow struct {
	ID                   int64 `gorm:"primaryKey"`
	AccountID            int64
	OwnerID              sql.NullInt64
	Name                 string
	Description          string
	SecretHash           string
	GrantTypes           string // space-separated, see encodeList
	Scopes               string // space-separated, see encodeList
	MayIntrospect        bool
	TokenLifetimeSeconds int64
	Status               string
	Generation           int64
	ExpiresAt            sql.NullTime
	LastUsedAt           sql.NullTime
	CreatedBy            sql.NullInt64
	CreatedAt            time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt            time.Time `gorm:"autoUpdateTime:false"`
}

func (clientRow) TableName() string { return "clients" }

// mutableClientColumns are the columns UpdateClient writes: all but id,
// account_id and created_at.
var mutableClientColumns = []string{
	"owner_id", "name", "description", "secret_hash", "grant_types", "scopes",
	"may_introspect", "token_lifetime_seconds", "status", "generation",
	"expires_at", "last_used_at", "created_by", "updated_at",
}

func toClientRow(c storage.Client) (clientRow, error) {
	grantTypes, err := encodeList("grant type", c.GrantTypes)
	if err != nil {
		return clientRow{}, err
	}
	scopes, err := encodeList("scope", c.Scopes)
	if err != nil {
		return clientRow{}, err
	}
	if c.TokenLifetime < 0 || c.TokenLifetime%time.Second != 0 {
		return clientRow{}, fmt.Errorf("token lifetime %s is not a whole, non-negative number of seconds", c.TokenLifetime)
	}
	return clientRow{
		ID:                   c.ID,
		AccountID:            c.AccountID,
		OwnerID:              nullID(c.OwnerID),
		Name:                 c.Name,
		Description:          c.Description,
		SecretHash:           c.SecretHash,
		GrantTypes:           grantTypes,
		Scopes:               scopes,
		MayIntrospect:        c.MayIntrospect,
		TokenLifetimeSeconds: int64(c.TokenLifetime / time.Second),
		Status:               string(c.Status),
		Generation:           c.Generation,
		ExpiresAt:            nullTime(c.ExpiresAt),
		LastUsedAt:           nullTime(c.LastUsedAt),
		CreatedBy:            nullID(c.CreatedBy),
		CreatedAt:            dbTime(c.CreatedAt),
		UpdatedAt:            dbTime(c.UpdatedAt),
	}, nil
}

func (r clientRow) client() storage.Client {
	return storage.Client{
		ID:            r.ID,
		AccountID:     r.AccountID,
		OwnerID:       fromNullID(r.OwnerID),
		Name:          r.Name,
		Description:   r.Description,
		SecretHash:    r.SecretHash,
		GrantTypes:    strings.Fields(r.GrantTypes),
		Scopes:        strings.Fields(r.Scopes),
		MayIntrospect: r.MayIntrospect,
		TokenLifetime: time.Duration(r.TokenLifetimeSeconds) * time.Second,
		Status:        storage.Status(r.Status),
		Generation:    r.Generation,
		ExpiresAt:     fromNullTime(r.ExpiresAt),
		LastUsedAt:    fromNullTime(r.LastUsedAt),
		CreatedBy:     fromNullID(r.CreatedBy),
		CreatedAt:     r.CreatedAt.UTC(),
		UpdatedAt:     r.UpdatedAt.UTC(),
	}
}

// encodeList stores grant types and scopes as one space-separated text
// column rather than JSON: it is the wire format of the OAuth 2.0 scope
// parameter, whose tokens never contain a space (RFC 6749 section 3.3), it
// reads the same in psql and sqlite3, and needs no JSON support of either
// dialect. Items that would not survive the round trip are refused.
func encodeList(what string, items []string) (string, error) {
	for _, item := range items {
		if item == "" || strings.ContainsFunc(item, unicode.IsSpace) {
			return "", fmt.Errorf("%s %q is empty or contains white space", what, item)
		}
	}
	return strings.Join(items, " "), nil
}

// CreateClient stores c and returns it with its new ID and timestamps; the
// ID, CreatedAt and UpdatedAt of c are ignored. An unknown account, owner or
// creator answers storage.ErrConflict.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) (storage.Client, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	now := dbTime(time.Now())
	c.ID, c.CreatedAt, c.UpdatedAt = 0, now, now
	row, err := toClientRow(c)
	if err != nil {
		return storage.Client{}, fmt.Errorf("create client: %w", err)
	}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return storage.Client{}, mapError("create client", err)
	}
	return row.client(), nil
}

// GetClient answers storage.ErrNotFound for an unknown id.
func (s *Store) GetClient(ctx context.Context, id int64) (storage.Client, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	var row clientRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return storage.Client{}, mapError("get client", err)
	}
	return row.client(), nil
}

// UpdateClient loads client id, applies update and stores the result in one
// transaction. On PostgreSQL the row is locked (SELECT … FOR UPDATE), so
// concurrent updates of one client queue instead of overwriting each other;
// SQLite gets the same from its single writer. ID, AccountID and CreatedAt
// keep their stored values whatever update does to them; UpdatedAt is set by
// the store and always moves forward. An error from update is returned as
// is. update must not call the store: on SQLite it would wait for the
// connection the transaction holds.
func (s *Store) UpdateClient(ctx context.Context, id int64, update func(*storage.Client) error) (storage.Client, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	var (
		updated   storage.Client
		updateErr error
	)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row clientRow
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
			Where("id = ?", id).Take(&row).Error
		if err != nil {
			return err
		}
		stored := row.client()
		c := row.client()
		if err := update(&c); err != nil {
			updateErr = err
			return err
		}
		c.ID, c.AccountID, c.CreatedAt = stored.ID, stored.AccountID, stored.CreatedAt
		c.UpdatedAt = laterThan(stored.UpdatedAt, time.Now())

		newRow, err := toClientRow(c)
		if err != nil {
			return err
		}
		res := tx.Select(mutableClientColumns).Updates(&newRow)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%d rows updated, want 1", res.RowsAffected)
		}
		updated = newRow.client()
		return nil
	})
	if updateErr != nil {
		return storage.Client{}, updateErr
	}
	if err != nil {
		return storage.Client{}, mapError("update client", err)
	}
	return updated, nil
}

// laterThan answers now in the stored precision, or a microsecond after prev
// should the clock not have moved past it.
func laterThan(prev, now time.Time) time.Time {
	now = dbTime(now)
	if next := prev.Add(time.Microsecond); now.Before(next) {
		return next
	}
	return now
}

// DeleteClient answers storage.ErrNotFound for an unknown id.
func (s *Store) DeleteClient(ctx context.Context, id int64) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	res := s.db.WithContext(ctx).Where("id = ?", id).Delete(&clientRow{})
	if res.Error != nil {
		return mapError("delete client", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("delete client: %w", storage.ErrNotFound)
	}
	return nil
}

// TouchClient records that client id was used at t with one conditional
// UPDATE that writes only when the stored time is at least touchInterval
// older than t: at most one write per client and minute, and last_used_at
// never moves backwards. An unknown id is no error; it cannot be told apart
// from a skipped write without a second query.
func (s *Store) TouchClient(ctx context.Context, id int64, t time.Time) error {
	if t.IsZero() {
		return errors.New("touch client: zero time")
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	t = dbTime(t)
	err := s.db.WithContext(ctx).Model(&clientRow{}).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at <= ?)", id, t.Add(-touchInterval)).
		Update("last_used_at", t).Error
	return mapError("touch client", err)
}
