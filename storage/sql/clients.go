package sql

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	ID                      int64 `gorm:"primaryKey"`
	AccountID               int64
	OwnerID                 sql.NullInt64
	Kind                    string
	IsDefault               bool
	Name                    string
	Description             string
	SecretHash              string
	SecretHint              string
	AccessRights            string
	RateLimits              string // space-separated class=rate:burst, see encodeRateLimits
	GrantTypes              string // space-separated, see encodeList
	Scopes                  string // space-separated, see encodeList
	MayIntrospect           bool
	TokenLifetimeSeconds    int64
	ReuseTokens             bool
	AccessTokenStrategy     string
	TokenEndpointAuthMethod string
	JWKS                    string `gorm:"column:jwks"`
	JWKSURI                 string `gorm:"column:jwks_uri"`
	DPoPBoundAccessTokens   bool   `gorm:"column:dpop_bound_access_tokens"`
	QuotaLimit              sql.NullInt64
	QuotaPeriod             sql.NullString
	AllowedCIDRs            string `gorm:"column:allowed_cidrs"` // space-separated, see encodeList
	Status                  string
	DisabledReason          string
	Generation              int64
	PreviousSecretHash      string
	PreviousGeneration      int64
	PreviousRetireAt        sql.NullTime
	ExpiresAt               sql.NullTime
	LastUsedAt              sql.NullTime
	EnabledAt               sql.NullTime
	CreatedBy               sql.NullInt64
	Version                 int64
	CreatedAt               time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt               time.Time `gorm:"autoUpdateTime:false"`
}

func (clientRow) TableName() string { return "clients" }

// mutableClientColumns are the columns UpdateClient writes: all but id,
// account_id and created_at.
var mutableClientColumns = []string{
	"owner_id", "kind", "is_default", "name", "description", "secret_hash",
	"secret_hint", "access_rights", "rate_limits", "grant_types", "scopes", "may_introspect",
	"token_lifetime_seconds", "reuse_tokens", "access_token_strategy", "token_endpoint_auth_method", "jwks", "jwks_uri",
	"dpop_bound_access_tokens", "quota_limit", "quota_period", "allowed_cidrs", "status", "disabled_reason", "generation", "previous_secret_hash",
	"previous_generation", "previous_retire_at", "expires_at", "last_used_at",
	"enabled_at", "created_by", "version", "updated_at",
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
	rateLimits, err := encodeRateLimits(c.RateLimits)
	if err != nil {
		return clientRow{}, err
	}
	cidrs, err := encodeList("allowed CIDR", c.AllowedCIDRs)
	if err != nil {
		return clientRow{}, err
	}
	quotaLimit, quotaPeriod, err := encodeQuota(c.Quota)
	if err != nil {
		return clientRow{}, err
	}
	if c.TokenLifetime < 0 || c.TokenLifetime%time.Second != 0 {
		return clientRow{}, fmt.Errorf("token lifetime %s is not a whole, non-negative number of seconds", c.TokenLifetime)
	}
	if c.Kind == "" {
		c.Kind = storage.KindClient
	}
	if !c.Kind.Valid() {
		return clientRow{}, fmt.Errorf("unknown kind %q", c.Kind)
	}
	if !c.DisabledReason.Valid() {
		return clientRow{}, fmt.Errorf("unknown disabled reason %q", c.DisabledReason)
	}
	if c.Status == storage.StatusActive {
		c.DisabledReason = ""
	}
	return clientRow{
		ID:                      c.ID,
		AccountID:               c.AccountID,
		OwnerID:                 nullID(c.OwnerID),
		Kind:                    string(c.Kind),
		IsDefault:               c.IsDefault,
		Name:                    c.Name,
		Description:             c.Description,
		SecretHash:              c.SecretHash,
		SecretHint:              c.SecretHint,
		AccessRights:            c.AccessRights,
		RateLimits:              rateLimits,
		GrantTypes:              grantTypes,
		Scopes:                  scopes,
		MayIntrospect:           c.MayIntrospect,
		TokenLifetimeSeconds:    int64(c.TokenLifetime / time.Second),
		ReuseTokens:             c.ReuseTokens,
		AccessTokenStrategy:     strategyOrOpaque(c.AccessTokenStrategy),
		TokenEndpointAuthMethod: authMethodOrBasic(c.TokenEndpointAuthMethod),
		JWKS:                    c.JWKS,
		JWKSURI:                 c.JWKSURI,
		DPoPBoundAccessTokens:   c.DPoPBoundAccessTokens,
		QuotaLimit:              quotaLimit,
		QuotaPeriod:             quotaPeriod,
		AllowedCIDRs:            cidrs,
		Status:                  string(c.Status),
		DisabledReason:          string(c.DisabledReason),
		Generation:              c.Generation,
		PreviousSecretHash:      c.PreviousSecretHash,
		PreviousGeneration:      c.PreviousGeneration,
		PreviousRetireAt:        nullTime(c.PreviousRetireAt),
		ExpiresAt:               nullTime(c.ExpiresAt),
		LastUsedAt:              nullTime(c.LastUsedAt),
		EnabledAt:               nullTime(c.EnabledAt),
		CreatedBy:               nullID(c.CreatedBy),
		Version:                 c.Version,
		CreatedAt:               dbTime(c.CreatedAt),
		UpdatedAt:               dbTime(c.UpdatedAt),
	}, nil
}

func (r clientRow) client() storage.Client {
	return storage.Client{
		ID:                      r.ID,
		AccountID:               r.AccountID,
		OwnerID:                 fromNullID(r.OwnerID),
		Kind:                    storage.Kind(r.Kind),
		IsDefault:               r.IsDefault,
		Name:                    r.Name,
		Description:             r.Description,
		SecretHash:              r.SecretHash,
		SecretHint:              r.SecretHint,
		AccessRights:            r.AccessRights,
		RateLimits:              decodeRateLimits(r.RateLimits),
		GrantTypes:              strings.Fields(r.GrantTypes),
		Scopes:                  strings.Fields(r.Scopes),
		MayIntrospect:           r.MayIntrospect,
		TokenLifetime:           time.Duration(r.TokenLifetimeSeconds) * time.Second,
		ReuseTokens:             r.ReuseTokens,
		AccessTokenStrategy:     r.AccessTokenStrategy,
		TokenEndpointAuthMethod: r.TokenEndpointAuthMethod,
		JWKS:                    r.JWKS,
		JWKSURI:                 r.JWKSURI,
		DPoPBoundAccessTokens:   r.DPoPBoundAccessTokens,
		Quota:                   decodeQuota(r.QuotaLimit, r.QuotaPeriod),
		AllowedCIDRs:            strings.Fields(r.AllowedCIDRs),
		Status:                  storage.Status(r.Status),
		DisabledReason:          storage.DisabledReason(r.DisabledReason),
		Generation:              r.Generation,
		PreviousSecretHash:      r.PreviousSecretHash,
		PreviousGeneration:      r.PreviousGeneration,
		PreviousRetireAt:        fromNullTime(r.PreviousRetireAt),
		ExpiresAt:               fromNullTime(r.ExpiresAt),
		LastUsedAt:              fromNullTime(r.LastUsedAt),
		EnabledAt:               fromNullTime(r.EnabledAt),
		CreatedBy:               fromNullID(r.CreatedBy),
		Version:                 r.Version,
		CreatedAt:               r.CreatedAt.UTC(),
		UpdatedAt:               r.UpdatedAt.UTC(),
	}
}

// encodeQuota stores a quota as two columns, both NULL for none.
func encodeQuota(q *storage.Quota) (sql.NullInt64, sql.NullString, error) {
	if q == nil {
		return sql.NullInt64{}, sql.NullString{}, nil
	}
	if !q.Valid() {
		return sql.NullInt64{}, sql.NullString{}, fmt.Errorf("invalid quota %d per %q", q.Limit, q.Period)
	}
	return sql.NullInt64{Int64: q.Limit, Valid: true}, sql.NullString{String: string(q.Period), Valid: true}, nil
}

// decodeQuota reads what encodeQuota wrote.
func decodeQuota(limit sql.NullInt64, period sql.NullString) *storage.Quota {
	if !limit.Valid || !period.Valid {
		return nil
	}
	return &storage.Quota{Limit: limit.Int64, Period: storage.QuotaPeriod(period.String)}
}

// encodeRateLimits stores rate overrides like lists: "class=rate:burst"
// items, sorted, space-separated.
func encodeRateLimits(limits map[string]storage.RateLimit) (string, error) {
	items := make([]string, 0, len(limits))
	for class, l := range limits {
		if class == "" || strings.ContainsAny(class, "=: \t\n") {
			return "", fmt.Errorf("rate class %q is empty or contains '=', ':' or white space", class)
		}
		if l.Rate < 1 || l.Burst < 1 {
			return "", fmt.Errorf("rate class %q: rate and burst must be positive", class)
		}
		items = append(items, fmt.Sprintf("%s=%d:%d", class, l.Rate, l.Burst))
	}
	slices.Sort(items)
	return strings.Join(items, " "), nil
}

func decodeRateLimits(s string) map[string]storage.RateLimit {
	var out map[string]storage.RateLimit
	for _, item := range strings.Fields(s) {
		class, rb, _ := strings.Cut(item, "=")
		r, b, _ := strings.Cut(rb, ":")
		rate, err1 := strconv.Atoi(r)
		burst, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil {
			continue // written by encodeRateLimits only
		}
		if out == nil {
			out = map[string]storage.RateLimit{}
		}
		out[class] = storage.RateLimit{Rate: rate, Burst: burst}
	}
	return out
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

// CreateClient stores c and returns it with its new ID, Version 1 and
// timestamps; the ID, Version, CreatedAt and UpdatedAt of c are ignored, and
// an empty Kind is stored as storage.KindClient. An unknown account, owner
// or creator answers storage.ErrConflict, a second default key of one owner
// storage.ErrAlreadyExists.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) (storage.Client, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	now := dbTime(time.Now())
	c.ID, c.Version, c.CreatedAt, c.UpdatedAt = 0, 1, now, now
	row, err := toClientRow(c)
	if err != nil {
		return storage.Client{}, fmt.Errorf("create client: %w", err)
	}
	err = s.write(ctx, func(db *gorm.DB) error { return db.Create(&row).Error })
	if err != nil {
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
// keep their stored values whatever update does to them; Version becomes the
// stored one plus one, and UpdatedAt is set by the store and always moves
// forward. An error from update is returned as is; a second default key of
// one owner answers storage.ErrAlreadyExists. update must not call s: on
// SQLite it would wait for the connection the transaction holds. Inside
// InTx, update may call the Store InTx handed to fn.
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
		c.Version = stored.Version + 1
		c.UpdatedAt = laterThan(stored.UpdatedAt, time.Now())

		newRow, err := toClientRow(c)
		if err != nil {
			return err
		}
		if err := updateRow(tx, mutableClientColumns, &newRow); err != nil {
			return err
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
// never moves backwards. Version and UpdatedAt do not change: a use is not
// an edit. An unknown id is no error; it cannot be told apart
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

// touchBatch is the most uses one statement of TouchClients writes: two
// parameters each, well below the limits of both dialects (65535 in
// PostgreSQL, 32766 in SQLite).
const touchBatch = 1000

// TouchClients records many uses with one UPDATE … FROM (VALUES …) per
// touchBatch uses; a stored time is only ever moved forward, unknown ids are
// ignored, and Version and UpdatedAt do not change. A zero time is refused
// before anything is written. Batches are not one transaction: a failure
// may leave the earlier ones written, which is harmless for a high-water
// mark.
func (s *Store) TouchClients(ctx context.Context, uses map[int64]time.Time) error {
	for id, t := range uses {
		if t.IsZero() {
			return fmt.Errorf("touch clients: zero time for client %d", id)
		}
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	// Sorted, so that concurrent callers meet the rows in one order.
	ids := slices.Sorted(maps.Keys(uses))
	for batch := range slices.Chunk(ids, touchBatch) {
		args := make([]any, 0, 2*len(batch))
		for _, id := range batch {
			args = append(args, id, dbTime(uses[id]))
		}
		if err := s.db.WithContext(ctx).Exec(s.touchClientsQuery(len(batch)), args...).Error; err != nil {
			return mapError("touch clients", err)
		}
	}
	return nil
}

// touchClientsQuery is the UPDATE of TouchClients for n uses. PostgreSQL
// needs the types of the values spelt out; SQLite names the columns of a
// VALUES list column1, column2.
func (s *Store) touchClientsQuery(n int) string {
	if s.dialect == dialectPostgres {
		values := strings.Repeat("(CAST(? AS bigint), CAST(? AS timestamptz)), ", n)
		return `UPDATE clients AS c SET last_used_at = v.t
FROM (VALUES ` + strings.TrimSuffix(values, ", ") + `) AS v (id, t)
WHERE c.id = v.id AND (c.last_used_at IS NULL OR c.last_used_at < v.t)`
	}
	values := strings.Repeat("(?, ?), ", n)
	return `UPDATE clients AS c SET last_used_at = v.column2
FROM (VALUES ` + strings.TrimSuffix(values, ", ") + `) AS v
WHERE c.id = v.column1 AND (c.last_used_at IS NULL OR c.last_used_at < v.column2)`
}

// ListClients lists the clients f selects in id order. AccountID 0 selects
// every account, whatever Subtree says; the other zero fields do not filter
// either. See MaxPageLimit for page.Limit.
func (s *Store) ListClients(ctx context.Context, f storage.ClientFilter, page storage.Page) ([]storage.Client, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	db := whereAccount(s.db.WithContext(ctx), "account_id", f.AccountID, f.Subtree)
	if f.OwnerID != 0 {
		db = db.Where("owner_id = ?", f.OwnerID)
	}
	if f.Status != "" {
		db = db.Where("status = ?", string(f.Status))
	}
	if f.Kind != "" {
		db = db.Where("kind = ?", string(f.Kind))
	}
	db = whereNameContains(db, "name", f.Name)
	var rows []clientRow
	if err := pageAfter(db, page).Find(&rows).Error; err != nil {
		return nil, mapError("list clients", err)
	}
	return clientsOf(rows), nil
}

func clientsOf(rows []clientRow) []storage.Client {
	clients := make([]storage.Client, len(rows))
	for i, r := range rows {
		clients[i] = r.client()
	}
	return clients
}

// disableStaleQuery disables and revokes, as storage.Client.Revoke does,
// every active client unused (last used, or enabled again after that, or
// created when neither) since ? or expired at ?, saying which of the
// two (expired first). UpdatedAt never moves backwards. greatest is
// GREATEST in PostgreSQL and max in SQLite.
const disableStaleQuery = `UPDATE clients SET
	status = 'disabled',
	disabled_reason = CASE WHEN expires_at IS NOT NULL AND expires_at <= ? THEN 'expired' ELSE 'unused' END,
	generation = greatest(generation, previous_generation) + 1,
	previous_secret_hash = '',
	previous_generation = 0,
	previous_retire_at = NULL,
	version = version + 1,
	updated_at = greatest(updated_at, ?)
WHERE status = 'active'
	AND (CASE WHEN enabled_at IS NOT NULL AND (last_used_at IS NULL OR enabled_at > last_used_at)
		THEN enabled_at ELSE COALESCE(last_used_at, created_at) END < ? OR (expires_at IS NOT NULL AND expires_at <= ?))
RETURNING *`

// DisableStale disables, with one UPDATE … RETURNING, every active client
// neither used nor enabled again (or, neither, created) since unusedSince and every active
// client whose ExpiresAt is at or before now, and revokes their tokens as
// storage.Client.Revoke does; DisabledReason says which of the two
// (storage.DisabledExpired when both), Version goes up by one and
// UpdatedAt is set to the wall clock. It returns them in id order as stored after the
// change. On PostgreSQL a concurrent caller waits for the rows this one
// locked and then finds them no longer active, so no client is ever
// reported twice; SQLite has a single writer.
func (s *Store) DisableStale(ctx context.Context, unusedSince, now time.Time) ([]storage.Client, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()

	greatest := "GREATEST"
	if s.dialect == dialectSQLite {
		greatest = "max"
	}
	query := strings.ReplaceAll(disableStaleQuery, "greatest(", greatest+"(")
	var rows []clientRow
	err := s.write(ctx, func(db *gorm.DB) error {
		return db.Raw(query, dbTime(now), dbTime(time.Now()), dbTime(unusedSince), dbTime(now)).Scan(&rows).Error
	})
	if err != nil {
		return nil, mapError("disable stale clients", err)
	}
	slices.SortFunc(rows, func(a, b clientRow) int { return cmp.Compare(a.ID, b.ID) })
	return clientsOf(rows), nil
}

// strategyOrOpaque stores an unset access token strategy as the default.
func strategyOrOpaque(s string) string {
	if s == "" {
		return storage.StrategyOpaque
	}
	return s
}

// authMethodOrBasic stores an unset authentication method as the default.
func authMethodOrBasic(s string) string {
	if s == "" {
		return storage.AuthSecretBasic
	}
	return s
}
