package sql

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tollgate/tollgate/storage"
)

var _ storage.Webhooks = (*Store)(nil)

type webhookRow struct {
	ID             int64 `gorm:"primaryKey"`
	AccountID      int64
	URL            string `gorm:"column:url"`
	Events         string
	Description    string
	IncludeSubtree bool
	Enabled        bool
	SecretSealed   []byte
	CreatedBy      sql.NullInt64
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (webhookRow) TableName() string { return "webhooks" }

var mutableWebhookColumns = []string{"url", "events", "description", "include_subtree", "enabled", "secret_sealed", "version", "updated_at"}

func toWebhookRow(w storage.Webhook) webhookRow {
	r := webhookRow{
		ID:             w.ID,
		AccountID:      w.AccountID,
		URL:            w.URL,
		Events:         strings.Join(w.Events, " "),
		Description:    w.Description,
		IncludeSubtree: w.IncludeSubtree,
		Enabled:        w.Enabled,
		SecretSealed:   w.SecretSealed,
		Version:        w.Version,
		CreatedAt:      dbTime(w.CreatedAt),
		UpdatedAt:      dbTime(w.UpdatedAt),
	}
	if w.CreatedBy != 0 {
		r.CreatedBy = sql.NullInt64{Int64: w.CreatedBy, Valid: true}
	}
	return r
}

func (r webhookRow) webhook() storage.Webhook {
	return storage.Webhook{
		ID:             r.ID,
		AccountID:      r.AccountID,
		URL:            r.URL,
		Events:         strings.Fields(r.Events),
		Description:    r.Description,
		IncludeSubtree: r.IncludeSubtree,
		Enabled:        r.Enabled,
		SecretSealed:   r.SecretSealed,
		CreatedBy:      r.CreatedBy.Int64,
		Version:        r.Version,
		CreatedAt:      r.CreatedAt.UTC(),
		UpdatedAt:      r.UpdatedAt.UTC(),
	}
}

// CreateWebhook implements storage.Webhooks.
func (s *Store) CreateWebhook(ctx context.Context, w storage.Webhook) (storage.Webhook, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	now := time.Now()
	w.ID, w.Version, w.CreatedAt, w.UpdatedAt = 0, 1, now, now
	row := toWebhookRow(w)
	err := s.write(ctx, func(db *gorm.DB) error { return db.Create(&row).Error })
	if err != nil {
		return storage.Webhook{}, mapError("create webhook", err)
	}
	return row.webhook(), nil
}

// GetWebhook implements storage.Webhooks.
func (s *Store) GetWebhook(ctx context.Context, id int64) (storage.Webhook, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var row webhookRow
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return storage.Webhook{}, mapError("get webhook", err)
	}
	return row.webhook(), nil
}

// ListWebhooks implements storage.Webhooks.
func (s *Store) ListWebhooks(ctx context.Context, f storage.WebhookFilter, page storage.Page) ([]storage.Webhook, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	db := whereAccount(s.db.WithContext(ctx), "account_id", f.AccountID, f.Subtree)
	if page.After > 0 {
		db = db.Where("id > ?", page.After)
	}
	var rows []webhookRow
	if err := db.Order("id").Limit(pageLimit(page)).Find(&rows).Error; err != nil {
		return nil, mapError("list webhooks", err)
	}
	out := make([]storage.Webhook, len(rows))
	for i, r := range rows {
		out[i] = r.webhook()
	}
	return out, nil
}

// UpdateWebhook implements storage.Webhooks.
func (s *Store) UpdateWebhook(ctx context.Context, id int64, update func(*storage.Webhook) error) (storage.Webhook, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var (
		updated   storage.Webhook
		updateErr error
	)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row webhookRow
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Where("id = ?", id).Take(&row).Error
		if err != nil {
			return err
		}
		stored := row.webhook()
		w := row.webhook()
		if err := update(&w); err != nil {
			updateErr = err
			return err
		}
		w.ID, w.AccountID, w.CreatedAt, w.CreatedBy = stored.ID, stored.AccountID, stored.CreatedAt, stored.CreatedBy
		w.Version = stored.Version + 1
		w.UpdatedAt = laterThan(stored.UpdatedAt, time.Now())
		newRow := toWebhookRow(w)
		if err := updateRow(tx, mutableWebhookColumns, &newRow); err != nil {
			return err
		}
		updated = newRow.webhook()
		return nil
	})
	if updateErr != nil {
		return storage.Webhook{}, updateErr
	}
	if err != nil {
		return storage.Webhook{}, mapError("update webhook", err)
	}
	return updated, nil
}

// DeleteWebhook implements storage.Webhooks. Its deliveries go with it
// (explicitly, as SQLite enforces no foreign keys without the pragma).
func (s *Store) DeleteWebhook(ctx context.Context, id int64) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("webhook_id = ?", id).Delete(&deliveryRow{}).Error; err != nil {
			return err
		}
		res := tx.Where("id = ?", id).Delete(&webhookRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return nil
	})
	return mapError("delete webhook", err)
}

// webhooksForQuery walks up from the account to the root: the account's
// own webhooks, and its ancestors' that include their subtree.
const webhooksForQuery = `
WITH RECURSIVE ancestors (id, parent_id, depth) AS (
	SELECT id, parent_id, 0 FROM accounts WHERE id = ?
	UNION
	SELECT a.id, a.parent_id, s.depth + 1 FROM accounts a JOIN ancestors s ON a.id = s.parent_id
)
SELECT w.* FROM webhooks w JOIN ancestors s ON w.account_id = s.id
WHERE w.enabled AND (s.depth = 0 OR w.include_subtree)
ORDER BY w.id`

// WebhooksFor implements storage.Webhooks.
func (s *Store) WebhooksFor(ctx context.Context, accountID int64, eventType string) ([]storage.Webhook, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var rows []webhookRow
	if err := s.db.WithContext(ctx).Raw(webhooksForQuery, accountID).Scan(&rows).Error; err != nil {
		return nil, mapError("webhooks for account", err)
	}
	var out []storage.Webhook
	for _, r := range rows {
		w := r.webhook()
		for _, e := range w.Events {
			if e == eventType {
				out = append(out, w)
				break
			}
		}
	}
	return out, nil
}

type deliveryRow struct {
	ID            int64 `gorm:"primaryKey"`
	WebhookID     int64
	EventID       string
	EventType     string
	Payload       string
	Status        string
	Attempts      int
	NextAttemptAt sql.NullTime
	LastStatus    int
	LastError     string
	DeliveredAt   sql.NullTime
	CreatedAt     time.Time
}

func (deliveryRow) TableName() string { return "webhook_deliveries" }

func (r deliveryRow) delivery() storage.WebhookDelivery {
	return storage.WebhookDelivery{
		ID:            r.ID,
		WebhookID:     r.WebhookID,
		EventID:       r.EventID,
		EventType:     r.EventType,
		Payload:       []byte(r.Payload),
		Status:        r.Status,
		Attempts:      r.Attempts,
		NextAttemptAt: fromNullTime(r.NextAttemptAt),
		LastStatus:    r.LastStatus,
		LastError:     r.LastError,
		DeliveredAt:   fromNullTime(r.DeliveredAt),
		CreatedAt:     r.CreatedAt.UTC(),
	}
}

// EnqueueDeliveries implements storage.Webhooks.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []storage.WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	now := time.Now()
	rows := make([]deliveryRow, len(ds))
	for i, d := range ds {
		next, created := d.NextAttemptAt, d.CreatedAt
		if next.IsZero() {
			next = now
		}
		if created.IsZero() {
			created = now
		}
		rows[i] = deliveryRow{
			WebhookID:     d.WebhookID,
			EventID:       d.EventID,
			EventType:     d.EventType,
			Payload:       string(d.Payload),
			Status:        storage.DeliveryPending,
			NextAttemptAt: nullTime(next),
			CreatedAt:     dbTime(created),
		}
	}
	err := s.write(ctx, func(db *gorm.DB) error {
		return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "webhook_id"}, {Name: "event_id"}}, DoNothing: true}).Create(&rows).Error
	})
	return mapError("enqueue webhook deliveries", err)
}

// pruneDeliveriesBatch selects one batch of finished deliveries, oldest
// first, through the partial index webhook_deliveries_finished (migration
// 0017), whose predicate it repeats word for word so that PostgreSQL uses
// it.
const pruneDeliveriesBatch = `
	SELECT id FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?
	ORDER BY created_at LIMIT ?`

// PruneDeliveries implements storage.Webhooks.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	// On PostgreSQL the ids are an array the delete looks up by primary
	// key (IN would hash-join a scan of the whole table), and instances
	// pruning at once skip each other's rows instead of waiting.
	q := `DELETE FROM webhook_deliveries WHERE id IN (` + pruneDeliveriesBatch + `)`
	if s.dialect == dialectPostgres {
		q = `DELETE FROM webhook_deliveries WHERE id = ANY(ARRAY(` + pruneDeliveriesBatch + ` FOR UPDATE SKIP LOCKED))`
	}
	var n int64
	err := s.write(ctx, func(db *gorm.DB) error {
		res := db.Exec(q, dbTime(before), limit)
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, mapError("prune webhook deliveries", err)
	}
	return n, nil
}

// ClaimDeliveries implements storage.Webhooks: on PostgreSQL the due rows
// are locked with FOR UPDATE SKIP LOCKED, so that instances claiming at
// once take different rows; SQLite has one writer.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.WebhookDelivery, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	lock := ""
	if s.dialect == dialectPostgres {
		lock = " FOR UPDATE OF d SKIP LOCKED"
	}
	q := `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id IN (
	SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
	WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.enabled
	ORDER BY d.next_attempt_at LIMIT ?` + lock + `) RETURNING *`
	var rows []deliveryRow
	err := s.write(ctx, func(db *gorm.DB) error {
		return db.Raw(q, dbTime(now.Add(lease)), dbTime(now), limit).Scan(&rows).Error
	})
	if err != nil {
		return nil, mapError("claim webhook deliveries", err)
	}
	out := make([]storage.WebhookDelivery, len(rows))
	for i, r := range rows {
		out[i] = r.delivery()
	}
	return out, nil
}

// FinishAttempt implements storage.Webhooks.
func (s *Store) FinishAttempt(ctx context.Context, d storage.WebhookDelivery) error {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	err := s.write(ctx, func(db *gorm.DB) error {
		return db.Model(&deliveryRow{}).Where("id = ?", d.ID).Updates(map[string]any{
			"status":          d.Status,
			"attempts":        d.Attempts,
			"next_attempt_at": nullTime(d.NextAttemptAt),
			"last_status":     d.LastStatus,
			"last_error":      d.LastError,
			"delivered_at":    nullTime(d.DeliveredAt),
		}).Error
	})
	return mapError("finish webhook delivery", err)
}

// ListDeliveries implements storage.Webhooks.
func (s *Store) ListDeliveries(ctx context.Context, webhookID int64, page storage.Page) ([]storage.WebhookDelivery, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	db := s.db.WithContext(ctx).Where("webhook_id = ?", webhookID)
	if page.After > 0 {
		db = db.Where("id < ?", page.After)
	}
	var rows []deliveryRow
	if err := db.Order("id DESC").Limit(pageLimit(page)).Find(&rows).Error; err != nil {
		return nil, mapError("list webhook deliveries", err)
	}
	out := make([]storage.WebhookDelivery, len(rows))
	for i, r := range rows {
		out[i] = r.delivery()
	}
	return out, nil
}

// ClientsExpiringBetween implements storage.Webhooks.
func (s *Store) ClientsExpiringBetween(ctx context.Context, from, to time.Time) ([]storage.Client, error) {
	ctx, cancel := s.queryContext(ctx)
	defer cancel()
	var rows []clientRow
	err := s.db.WithContext(ctx).Where("status = ? AND expires_at IS NOT NULL AND expires_at >= ? AND expires_at < ?",
		string(storage.StatusActive), dbTime(from), dbTime(to)).Order("id").Limit(MaxPageLimit).Find(&rows).Error
	if err != nil {
		return nil, mapError("clients expiring", err)
	}
	out := make([]storage.Client, len(rows))
	for i, r := range rows {
		out[i] = r.client()
	}
	return out, nil
}
