package sql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tollgate/tollgate/storage"
)

var _ storage.FederatedCredentials = (*Store)(nil)

type federatedCredentialRow struct {
	ID        int64 `gorm:"primaryKey"`
	ClientID  int64
	Name      string
	Issuer    string
	Subject   string
	Audiences string // a JSON array of strings
	Claims    string // a JSON object of strings
	CreatedBy sql.NullInt64
	CreatedAt time.Time
}

func (federatedCredentialRow) TableName() string { return "federated_credentials" }

func (r federatedCredentialRow) credential() (storage.FederatedCredential, error) {
	fc := storage.FederatedCredential{
		ID:        r.ID,
		ClientID:  r.ClientID,
		Name:      r.Name,
		Issuer:    r.Issuer,
		Subject:   r.Subject,
		CreatedBy: fromNullID(r.CreatedBy),
		CreatedAt: r.CreatedAt.UTC(),
	}
	if err := json.Unmarshal([]byte(r.Audiences), &fc.Audiences); err != nil {
		return fc, fmt.Errorf("federated credential %d: audiences: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Claims), &fc.Claims); err != nil {
		return fc, fmt.Errorf("federated credential %d: claims: %w", r.ID, err)
	}
	return fc, nil
}

// CreateFederatedCredential implements storage.FederatedCredentials. The
// client's row is checked by the foreign key: an unknown client is
// ErrNotFound, not the ErrConflict of a missing reference elsewhere.
func (s *Store) CreateFederatedCredential(ctx context.Context, fc storage.FederatedCredential) (storage.FederatedCredential, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	audiences, err := json.Marshal(fc.Audiences)
	if err != nil {
		return storage.FederatedCredential{}, fmt.Errorf("create federated credential: %w", err)
	}
	claims := fc.Claims
	if claims == nil {
		claims = map[string]string{}
	}
	claimsJSON, err := json.Marshal(claims)
	if err != nil {
		return storage.FederatedCredential{}, fmt.Errorf("create federated credential: %w", err)
	}
	row := federatedCredentialRow{
		ClientID:  fc.ClientID,
		Name:      fc.Name,
		Issuer:    fc.Issuer,
		Subject:   fc.Subject,
		Audiences: string(audiences),
		Claims:    string(claimsJSON),
		CreatedBy: nullID(fc.CreatedBy),
		CreatedAt: dbTime(fc.CreatedAt),
	}
	err = s.write(ctx, func(db *gorm.DB) error { return db.Create(&row).Error })
	if isForeignKeyViolation(err) {
		return storage.FederatedCredential{}, fmt.Errorf("create federated credential: no client %d: %w", fc.ClientID, storage.ErrNotFound)
	}
	if err != nil {
		return storage.FederatedCredential{}, mapError("create federated credential", err)
	}
	return row.credential()
}

// ListFederatedCredentials implements storage.FederatedCredentials.
func (s *Store) ListFederatedCredentials(ctx context.Context, clientID int64) ([]storage.FederatedCredential, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var rows []federatedCredentialRow
	if err := s.db.WithContext(ctx).Where("client_id = ?", clientID).Order("id").Find(&rows).Error; err != nil {
		return nil, mapError("list federated credentials", err)
	}
	out := make([]storage.FederatedCredential, 0, len(rows))
	for _, r := range rows {
		fc, err := r.credential()
		if err != nil {
			return nil, err
		}
		out = append(out, fc)
	}
	return out, nil
}

// DeleteFederatedCredential implements storage.FederatedCredentials.
func (s *Store) DeleteFederatedCredential(ctx context.Context, clientID, id int64) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var n int64
	err := s.write(ctx, func(db *gorm.DB) error {
		res := db.Where("id = ? AND client_id = ?", id, clientID).Delete(&federatedCredentialRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return mapError("delete federated credential", err)
	}
	if n == 0 {
		return mapError("delete federated credential", gorm.ErrRecordNotFound)
	}
	return nil
}
