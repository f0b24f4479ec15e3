// Package redis is the session.Store shared by every Tollgate instance: one
// Redis string per session (its JSON) under Options.KeyPrefix, expiring by
// itself. A browser signed in on one instance is signed in on all of them.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/console/session"
)

// DefaultKeyPrefix prefixes every key unless Options says otherwise.
const DefaultKeyPrefix = "tg:console:"

var _ session.Store = (*Store)(nil)

// Options configure a Store.
type Options struct {
	// KeyPrefix is put before every key (DefaultKeyPrefix when empty).
	KeyPrefix string
}

// Store is a session.Store in Redis, safe for concurrent use.
type Store struct {
	client goredis.UniversalClient
	prefix string
}

// New answers a Store on client. Closing the client is the caller's
// business.
func New(client goredis.UniversalClient, opts Options) *Store {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	return &Store{client: client, prefix: opts.KeyPrefix}
}

// ttl rounds d to what Redis stores: whole milliseconds, at least one.
func ttl(d time.Duration) time.Duration { return max(d.Round(time.Millisecond), time.Millisecond) }

// Create implements session.Store.
func (s *Store) Create(ctx context.Context, key string, sess session.Session, d time.Duration) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	if err := s.client.Set(ctx, s.prefix+key, b, ttl(d)).Err(); err != nil {
		return fmt.Errorf("create console session: %w", err)
	}
	return nil
}

// Get implements session.Store.
func (s *Store) Get(ctx context.Context, key string) (session.Session, error) {
	b, err := s.client.Get(ctx, s.prefix+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return session.Session{}, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, fmt.Errorf("get console session: %w", err)
	}
	var sess session.Session
	if err := json.Unmarshal(b, &sess); err != nil {
		return session.Session{}, fmt.Errorf("decode console session: %w", err)
	}
	return sess, nil
}

// Update implements session.Store: SET XX writes only an existing key.
func (s *Store) Update(ctx context.Context, key string, sess session.Session, d time.Duration) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	err = s.client.SetArgs(ctx, s.prefix+key, b, goredis.SetArgs{Mode: "XX", TTL: ttl(d)}).Err()
	if errors.Is(err, goredis.Nil) {
		return session.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update console session: %w", err)
	}
	return nil
}

// Delete implements session.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.prefix+key).Err(); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}
