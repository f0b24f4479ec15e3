package sql

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/storage"
)

type accountRow struct {
	ID       int64 `gorm:"primaryKey"`
	ParentID sql.NullInt64
	Name     string
	Status   string
	// TokensValidAfter: see storage.Account.
	TokensValidAfter sql.NullTime
	// Policies: see storage.AccountPolicies; NULL inherits.
	RequirePasswordForNewKeys sql.NullBool
	KeysManagedBy             sql.NullString
	LeakedKeyAction           sql.NullString
	// Budget: see storage.Budget.
	BudgetRateLimits  string // as clients.rate_limits
	BudgetQuotaLimit  sql.NullInt64
	BudgetQuotaPeriod sql.NullString
	Version           int64
	CreatedAt         time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt         time.Time `gorm:"autoUpdateTime:false"`
}

func (accountRow) TableName() string { return "accounts" }

func toAccountRow(a storage.Account) (accountRow, error) {
	var budget storage.Budget
	if a.Budget != nil {
		budget = *a.Budget
	}
	rateLimits, err := encodeRateLimits(budget.RateLimits)
	if err != nil {
		return accountRow{}, err
	}
	quotaLimit, quotaPeriod, err := encodeQuota(budget.Quota)
	if err != nil {
		return accountRow{}, err
	}
	if !a.Policies.LeakedKeyAction.Valid() {
		return accountRow{}, fmt.Errorf("unknown leaked key action %q", a.Policies.LeakedKeyAction)
	}
	return accountRow{
		ID:       a.ID,
		ParentID: nullID(a.ParentID),
		Name:     a.Name,
		Status:   string(a.Status),
		// Issue times are whole seconds: so is the cut-off.
		TokensValidAfter:          nullTime(a.TokensValidAfter),
		RequirePasswordForNewKeys: nullBool(a.Policies.RequirePasswordForNewKeys),
		KeysManagedBy:             sql.NullString{String: string(a.Policies.KeysManagedBy), Valid: a.Policies.KeysManagedBy != storage.KeysManagedByInherit},
		LeakedKeyAction:           sql.NullString{String: string(a.Policies.LeakedKeyAction), Valid: a.Policies.LeakedKeyAction != storage.LeakedKeyInherit},
		BudgetRateLimits:          rateLimits,
		BudgetQuotaLimit:          quotaLimit,
		BudgetQuotaPeriod:         quotaPeriod,
		Version:                   a.Version,
		CreatedAt:                 dbTime(a.CreatedAt),
		UpdatedAt:                 dbTime(a.UpdatedAt),
	}, nil
}

func nullBool(b *bool) sql.NullBool {
	if b == nil {
		return sql.NullBool{}
	}
	return sql.NullBool{Bool: *b, Valid: true}
}

// policies converts the policy columns; NULL is unset.
func policies(requirePassword sql.NullBool, managedBy, leaked sql.NullString) storage.AccountPolicies {
	var p storage.AccountPolicies
	if requirePassword.Valid {
		v := requirePassword.Bool
		p.RequirePasswordForNewKeys = &v
	}
	if managedBy.Valid {
		p.KeysManagedBy = storage.KeysManagedBy(managedBy.String)
	}
	if leaked.Valid {
		p.LeakedKeyAction = storage.LeakedKeyAction(leaked.String)
	}
	return p
}

func (r accountRow) account() storage.Account {
	return storage.Account{
		ID:               r.ID,
		ParentID:         fromNullID(r.ParentID),
		Name:             r.Name,
		Status:           storage.Status(r.Status),
		TokensValidAfter: fromNullTime(r.TokensValidAfter),
		Policies:         policies(r.RequirePasswordForNewKeys, r.KeysManagedBy, r.LeakedKeyAction),
		Budget:           r.budget(),
		Version:          r.Version,
		CreatedAt:        r.CreatedAt.UTC(),
		UpdatedAt:        r.UpdatedAt.UTC(),
	}
}

// budget reads the budget columns; nil when they limit nothing.
func (r accountRow) budget() *storage.Budget {
	b := storage.Budget{RateLimits: decodeRateLimits(r.BudgetRateLimits), Quota: decodeQuota(r.BudgetQuotaLimit, r.BudgetQuotaPeriod)}
	if b.Empty() {
		return nil
	}
	return &b
}

// CreateAccount stores a and returns it with its new ID, Version 1 and
// timestamps; the ID, Version, CreatedAt and UpdatedAt of a are ignored. A
// ParentID that does not exist answers storage.ErrConflict.
func (s *Store) CreateAccount(ctx context.Context, a storage.Account) (storage.Account, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	now := dbTime(time.Now())
	a.ID, a.Version, a.CreatedAt, a.UpdatedAt = 0, 1, now, now
	row, err := toAccountRow(a)
	if err != nil {
		return storage.Account{}, fmt.Errorf("create account: %w", err)
	}
	err = s.write(ctx, func(db *gorm.DB) error { return db.Create(&row).Error })
	if err != nil {
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

// mutableAccountColumns are the columns UpdateAccount writes.
var mutableAccountColumns = []string{"name", "status", "tokens_valid_after",
	"require_password_for_new_keys", "keys_managed_by", "leaked_key_action",
	"budget_rate_limits", "budget_quota_limit", "budget_quota_period", "version", "updated_at"}

// UpdateAccount loads account id, applies update and stores the result in
// one transaction, the row locked as in UpdateClient. ID, ParentID and
// CreatedAt keep their stored values; Version becomes the stored one plus
// one and UpdatedAt moves forward, whatever update does to them. An unknown
// id answers storage.ErrNotFound; an error from update is returned
// unchanged and nothing is written.
func (s *Store) UpdateAccount(ctx context.Context, id int64, update func(*storage.Account) error) (storage.Account, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	var (
		updated   storage.Account
		updateErr error
	)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row accountRow
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
			Where("id = ?", id).Take(&row).Error
		if err != nil {
			return err
		}
		stored := row.account()
		a := row.account()
		if err := update(&a); err != nil {
			updateErr = err
			return err
		}
		a.ID, a.ParentID, a.CreatedAt = stored.ID, stored.ParentID, stored.CreatedAt
		a.Version = stored.Version + 1
		a.UpdatedAt = laterThan(stored.UpdatedAt, time.Now())
		newRow, err := toAccountRow(a)
		if err != nil {
			updateErr = fmt.Errorf("update account: %w", err)
			return updateErr
		}
		if err := updateRow(tx, mutableAccountColumns, &newRow); err != nil {
			return err
		}
		updated = newRow.account()
		return nil
	})
	if updateErr != nil {
		return storage.Account{}, updateErr
	}
	if err != nil {
		return storage.Account{}, mapError("update account", err)
	}
	return updated, nil
}

// updateRow writes columns of row, found by its primary key, and checks
// that exactly one row changed.
func updateRow(tx *gorm.DB, columns []string, row any) error {
	res := tx.Select(columns).Updates(row)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return fmt.Errorf("%d rows updated, want 1", res.RowsAffected)
	}
	return nil
}

// ListChildren lists the direct children of account parentID in id order;
// parentID 0 lists the root accounts. An unknown parent has no children.
// See MaxPageLimit for page.Limit.
func (s *Store) ListChildren(ctx context.Context, parentID int64, page storage.Page) ([]storage.Account, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	db := s.db.WithContext(ctx)
	if parentID == 0 {
		db = db.Where("parent_id IS NULL")
	} else {
		db = db.Where("parent_id = ?", parentID)
	}
	var rows []accountRow
	if err := pageAfter(db, page).Find(&rows).Error; err != nil {
		return nil, mapError("list child accounts", err)
	}
	accounts := make([]storage.Account, len(rows))
	for i, r := range rows {
		accounts[i] = r.account()
	}
	return accounts, nil
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

// ancestorStatusQuery walks up from account id to the root, like
// ancestorsQuery, and counts the accounts on the way and those of them not
// active.
const ancestorStatusQuery = `
WITH RECURSIVE ancestors (id, parent_id, status) AS (
	SELECT id, parent_id, status FROM accounts WHERE id = ?
	UNION
	SELECT a.id, a.parent_id, a.status FROM accounts a JOIN ancestors s ON a.id = s.parent_id
)
SELECT COUNT(*) AS total,
	COALESCE(SUM(CASE WHEN status = 'active' THEN 0 ELSE 1 END), 0) AS inactive
FROM ancestors`

// AccountActive reports whether account id and all its ancestors are
// active, in one query. An unknown id answers storage.ErrNotFound.
func (s *Store) AccountActive(ctx context.Context, id int64) (bool, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	var counts struct {
		Total    int64
		Inactive int64
	}
	if err := s.db.WithContext(ctx).Raw(ancestorStatusQuery, id).Scan(&counts).Error; err != nil {
		return false, mapError("account active", err)
	}
	if counts.Total == 0 {
		return false, fmt.Errorf("account active: %w", storage.ErrNotFound)
	}
	return counts.Inactive == 0, nil
}

// ancestorStandingQuery reads the status and cut-off of account id and of
// every ancestor, walking up as ancestorsQuery does. The columns are read
// from the table itself, not from the recursive part, so that each driver
// still knows them as timestamps.
const ancestorStandingQuery = `
WITH RECURSIVE ancestors (id, parent_id) AS (
	SELECT id, parent_id FROM accounts WHERE id = ?
	UNION
	SELECT a.id, a.parent_id FROM accounts a JOIN ancestors s ON a.id = s.parent_id
)
SELECT status, tokens_valid_after FROM accounts WHERE id IN (SELECT id FROM ancestors)`

// AccountStanding answers whether account id and all its ancestors are
// active and their latest TokensValidAfter, in one query. An unknown id
// answers storage.ErrNotFound.
func (s *Store) AccountStanding(ctx context.Context, id int64) (storage.Standing, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var rows []struct {
		Status           string
		TokensValidAfter sql.NullTime
	}
	if err := s.db.WithContext(ctx).Raw(ancestorStandingQuery, id).Scan(&rows).Error; err != nil {
		return storage.Standing{}, mapError("account standing", err)
	}
	if len(rows) == 0 {
		return storage.Standing{}, fmt.Errorf("account standing: %w", storage.ErrNotFound)
	}
	st := storage.Standing{Active: true}
	for _, r := range rows {
		st.Active = st.Active && r.Status == string(storage.StatusActive)
		if t := fromNullTime(r.TokensValidAfter); t.After(st.TokensValidAfter) {
			st.TokensValidAfter = t
		}
	}
	return st, nil
}

// ancestorPoliciesQuery reads the policy columns of account id and of every
// ancestor, walking up as ancestorsQuery does, with each one's distance
// from id so that the nearest setting wins.
const ancestorPoliciesQuery = `
WITH RECURSIVE ancestors (id, parent_id, depth) AS (
	SELECT id, parent_id, 0 FROM accounts WHERE id = ?
	UNION
	SELECT a.id, a.parent_id, s.depth + 1 FROM accounts a JOIN ancestors s ON a.id = s.parent_id
)
SELECT a.require_password_for_new_keys, a.keys_managed_by, a.leaked_key_action
FROM accounts a JOIN ancestors s ON a.id = s.id
ORDER BY s.depth`

// EffectivePolicies answers the policies in force for account id, resolved
// over it and its ancestors in one query. An unknown id answers
// storage.ErrNotFound.
func (s *Store) EffectivePolicies(ctx context.Context, id int64) (storage.EffectivePolicies, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var rows []struct {
		RequirePasswordForNewKeys sql.NullBool
		KeysManagedBy             sql.NullString
		LeakedKeyAction           sql.NullString
	}
	if err := s.db.WithContext(ctx).Raw(ancestorPoliciesQuery, id).Scan(&rows).Error; err != nil {
		return storage.EffectivePolicies{}, mapError("effective policies", err)
	}
	if len(rows) == 0 {
		return storage.EffectivePolicies{}, fmt.Errorf("effective policies: %w", storage.ErrNotFound)
	}
	path := make([]storage.AccountPolicies, len(rows))
	for i, r := range rows {
		path[i] = policies(r.RequirePasswordForNewKeys, r.KeysManagedBy, r.LeakedKeyAction)
	}
	return storage.ResolvePolicies(path), nil
}

// ancestorBudgetsQuery reads the budget columns of account id and of every
// ancestor, walking up as ancestorsQuery does, the nearest first; the last
// row is the root.
const ancestorBudgetsQuery = `
WITH RECURSIVE ancestors (id, parent_id, depth) AS (
	SELECT id, parent_id, 0 FROM accounts WHERE id = ?
	UNION
	SELECT a.id, a.parent_id, s.depth + 1 FROM accounts a JOIN ancestors s ON a.id = s.parent_id
)
SELECT a.id, a.parent_id, a.budget_rate_limits, a.budget_quota_limit, a.budget_quota_period
FROM accounts a JOIN ancestors s ON a.id = s.id
ORDER BY s.depth`

// AccountBudgets answers the root of account id's tree and the budgets on
// the way to it, in one query. An unknown id answers storage.ErrNotFound.
func (s *Store) AccountBudgets(ctx context.Context, id int64) (storage.BudgetChain, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var rows []struct {
		ID                int64
		ParentID          sql.NullInt64
		BudgetRateLimits  sql.NullString
		BudgetQuotaLimit  sql.NullInt64
		BudgetQuotaPeriod sql.NullString
	}
	if err := s.db.WithContext(ctx).Raw(ancestorBudgetsQuery, id).Scan(&rows).Error; err != nil {
		return storage.BudgetChain{}, mapError("account budgets", err)
	}
	if len(rows) == 0 {
		return storage.BudgetChain{}, fmt.Errorf("account budgets: %w", storage.ErrNotFound)
	}
	chain := storage.BudgetChain{Root: rows[len(rows)-1].ID}
	for _, r := range rows {
		row := accountRow{BudgetRateLimits: r.BudgetRateLimits.String, BudgetQuotaLimit: r.BudgetQuotaLimit, BudgetQuotaPeriod: r.BudgetQuotaPeriod}
		if b := row.budget(); b != nil {
			chain.Budgets = append(chain.Budgets, storage.AccountBudget{AccountID: r.ID, Budget: *b})
		}
	}
	return chain, nil
}
