// Package redis is Tollgate's production token store: issued tokens in Redis,
// shared by every instance, each living exactly as long as the token.
//
// It owns the key layout, the compact record a token is stored as (see
// record.go), the Lua scripts that keep a token and its request index
// consistent, and the translation of go-redis errors: a missing key is
// storage.ErrNotFound, everything else (a refused connection, a timeout) is
// wrapped and must be answered as an outage, never as an unknown token.
//
// Keys, under Options.KeyPrefix:
//
//	<prefix>t:<signature>  the token record, PX = ExpiresAt - now
//	<prefix>r:<request id> the signatures of the request's live tokens, each
//	                       behind a 1- or 2-byte length, with the TTL of the
//	                       longest-lived of them
//
// Every key carries a TTL. The scripts touch token keys they compute from
// the index, so the store runs on a single Redis (with replicas or Sentinel),
// not on Redis Cluster.
//
// NewClient builds a go-redis client whose timeouts and retries are bounded,
// so that a Redis outage answers within about a second.
package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage"
)

var (
	_ storage.Tokens = (*Store)(nil)
	_ storage.Pinger = (*Store)(nil)
)

// DefaultKeyPrefix is the key prefix when Options.KeyPrefix is empty.
const DefaultKeyPrefix = "tg:"

// maxSignatureLen is the longest signature the index's 2-byte length can
// hold. A fosite HMAC-SHA256 signature has 43 bytes.
const maxSignatureLen = 1<<15 - 1

// Options configures a Store.
type Options struct {
	// KeyPrefix is put before every key; empty means DefaultKeyPrefix.
	KeyPrefix string
	// Now is the clock TTLs are computed with; nil means time.Now.
	Now func() time.Time
}

// Store is a storage.Tokens on Redis. It is safe for concurrent use.
type Store struct {
	client      goredis.UniversalClient
	tokenPrefix string
	indexPrefix string
	now         func() time.Time
}

// New answers a Store on client. The caller owns client and closes it.
func New(client goredis.UniversalClient, opts Options) *Store {
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		client:      client,
		tokenPrefix: prefix + "t:",
		indexPrefix: prefix + "r:",
		now:         now,
	}
}

// createToken stores a token and adds it to its request's index in one
// round trip. It answers 0, touching nothing, when the signature is taken.
// Index entries of tokens that are gone are dropped on the way, so the index
// of a long-lived request (refresh tokens keep the request id) stays short,
// and the index lives as long as its longest-lived token.
//
// KEYS[1] token key, KEYS[2] index key; ARGV[1] record, ARGV[2] TTL in ms,
// ARGV[3] index entry of the signature, ARGV[4] token key prefix.
var createToken = goredis.NewScript(luaIndexEntries + `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return 0
end
local ttl = tonumber(ARGV[2])
local kept = {ARGV[3]}
local index = redis.call('GET', KEYS[2])
if index then
	local signatures, entries = index_entries(index)
	for i, signature in ipairs(signatures) do
		local left = redis.call('PTTL', ARGV[4] .. signature)
		if left > 0 then
			kept[#kept + 1] = entries[i]
			if left > ttl then
				ttl = left
			end
		end
	end
end
redis.call('SET', KEYS[2], table.concat(kept), 'PX', ttl)
return 1
`)

// revokeRequest deletes the tokens of a request and its index, and answers
// how many keys it deleted.
//
// KEYS[1] index key; ARGV[1] token key prefix.
var revokeRequest = goredis.NewScript(luaIndexEntries + `
local index = redis.call('GET', KEYS[1])
if not index then
	return 0
end
local deleted = redis.call('DEL', KEYS[1])
local signatures = index_entries(index)
for _, signature in ipairs(signatures) do
	deleted = deleted + redis.call('DEL', ARGV[1] .. signature)
end
return deleted
`)

// luaIndexEntries splits an index into its signatures and raw entries. An
// entry is the signature behind its length: one byte below 128, else two
// bytes, 0x80|high and low. A damaged tail is ignored.
const luaIndexEntries = `
local function index_entries(index)
	local signatures, entries = {}, {}
	local pos, size = 1, #index
	while pos <= size do
		local start = pos
		local len = string.byte(index, pos)
		pos = pos + 1
		if len >= 128 then
			if pos > size then
				break
			end
			len = (len - 128) * 256 + string.byte(index, pos)
			pos = pos + 1
		end
		if pos + len - 1 > size then
			break
		end
		signatures[#signatures + 1] = string.sub(index, pos, pos + len - 1)
		entries[#entries + 1] = string.sub(index, start, pos + len - 1)
		pos = pos + len
	end
	return signatures, entries
end
`

// indexEntry answers the index entry of signature (see luaIndexEntries).
func indexEntry(signature string) []byte {
	n := len(signature)
	if n < 128 {
		return append([]byte{byte(n)}, signature...)
	}
	return append([]byte{0x80 | byte(n>>8), byte(n)}, signature...)
}

// CreateToken stores t until t.ExpiresAt, times truncated to the
// millisecond. A token without a signature or request id, or expiring less
// than a millisecond from now, is rejected with an error.
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	ttl := t.ExpiresAt.Truncate(time.Millisecond).Sub(s.now())
	switch {
	case t.Signature == "":
		return errors.New("redis: token has no signature")
	case len(t.Signature) > maxSignatureLen:
		return fmt.Errorf("redis: token signature longer than %d bytes", maxSignatureLen)
	case t.RequestID == "":
		return errors.New("redis: token has no request id")
	case ttl < time.Millisecond:
		return fmt.Errorf("redis: token expires at %s, not after now", t.ExpiresAt.UTC())
	}
	record, err := encodeRecord(t)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	keys := []string{s.tokenPrefix + t.Signature, s.indexPrefix + t.RequestID}
	created, err := createToken.Run(ctx, s.client, keys,
		record, ttl.Milliseconds(), indexEntry(t.Signature), s.tokenPrefix).Int()
	if err != nil {
		return storeError("create token", err)
	}
	if created == 0 {
		return storage.ErrAlreadyExists
	}
	return nil
}

// GetToken answers the token stored under signature, or ErrNotFound when it
// is unknown, expired or revoked.
func (s *Store) GetToken(ctx context.Context, signature string) (storage.Token, error) {
	if signature == "" {
		return storage.Token{}, storage.ErrNotFound
	}
	record, err := s.client.Get(ctx, s.tokenPrefix+signature).Bytes()
	if err != nil {
		return storage.Token{}, storeError("get token", err)
	}
	t, err := decodeRecord(record)
	if err != nil {
		return storage.Token{}, fmt.Errorf("redis: get token: %w", err)
	}
	// Redis expires the key on its own clock; this keeps the answer right
	// on ours too.
	if !s.now().Before(t.ExpiresAt) {
		return storage.Token{}, storage.ErrNotFound
	}
	t.Signature = signature
	return t, nil
}

// DeleteToken removes the token; an unknown signature is no error. Its
// entry in the request index stays until the index expires or the request
// gets another token.
func (s *Store) DeleteToken(ctx context.Context, signature string) error {
	if err := s.client.Del(ctx, s.tokenPrefix+signature).Err(); err != nil {
		return storeError("delete token", err)
	}
	return nil
}

// RevokeRequest removes every token of requestID in one script; an unknown
// request id is no error.
func (s *Store) RevokeRequest(ctx context.Context, requestID string) error {
	if requestID == "" {
		return nil
	}
	keys := []string{s.indexPrefix + requestID}
	if err := revokeRequest.Run(ctx, s.client, keys, s.tokenPrefix).Err(); err != nil {
		return storeError("revoke request", err)
	}
	return nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return storeError("ping", err)
	}
	return nil
}

// storeError is the one place go-redis errors are translated: a missing key
// (redis.Nil) is storage.ErrNotFound; anything else is an outage, wrapped.
func storeError(op string, err error) error {
	if errors.Is(err, goredis.Nil) {
		return storage.ErrNotFound
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}
