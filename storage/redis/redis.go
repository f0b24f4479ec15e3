// Package redis is Tollgate's production token store: issued tokens in Redis,
// shared by every instance, each living exactly as long as the token.
//
// It owns the key layout, the compact record a token is stored as (see
// record.go), the Lua scripts that read and write tokens and revocations in
// one round trip each, and the translation of go-redis errors: a missing key
// is storage.ErrNotFound, everything else (a refused connection, a timeout)
// is wrapped and must be answered as an outage, never as an unknown token.
//
// # Keys
//
// Keys are spread over Options.Shards shards, each under a hash tag of its
// own, so that every script touches the keys of one Redis Cluster hash slot
// (see Shards below). Under Options.KeyPrefix ("tg:" by default) and a
// shard's tag, for example tg:{0}:
//
//	<prefix>{<tag>}t:<32 bytes>   a token whose signature is canonical
//	                              unpadded base64url (fosite's HMAC-SHA256:
//	                              43 characters), keyed by the decoded
//	                              bytes; PX = ExpiresAt - now
//	<prefix>{<tag>}s:<signature>  a token with any other signature, keyed by
//	                              its text
//	<prefix>{<tag>}x:<request id> the revocation marker of a request in the
//	                              shard: a small hash, see below; the request
//	                              id as its record stores it
//	<prefix>{<tag>}h              the shard's horizon: an empty string whose
//	                              TTL is at least that of every live token of
//	                              the shard living at most Options.LongLived
//	                              (a day by default)
//	<prefix>{<tag>}e:<request id> the same for one request that has a token
//	                              in the shard living longer than that
//
// A token's shard is FNV-1a of its signature modulo the number of shards.
//
// A rooted signature (storage.Rooted: a<root>.<signature>, the tokens whose
// value names their root account, ADR 0013) is not sharded: its token, its
// request's marker (the request id is rooted too, and stored without its
// root) and the horizons live under the root account's tag, the tag of the
// check's meter keys (layout v4):
//
//	<prefix>{a<root>}T<32 bytes>   <prefix>{a<root>}S<signature>
//	<prefix>{a<root>}X<request id> <prefix>{a<root>}H   <prefix>{a<root>}E<request id>
//
// so that one script (Gated) can read the record and take the check's
// decision. RevokeRequest of a rooted request id writes the root's marker
// and the shards'.
//
// A live token costs one key and nothing else: its record (70 bytes for a
// typical client_credentials token) under a 40-byte key. There is no
// per-request index. RevokeRequest instead writes the request's marker, and
// a token whose request has a marker is revoked: GetToken answers
// ErrNotFound, and CreateToken may take its signature again. The scripts cut
// the request id field out of the record (it follows the version byte) to
// find the marker, so GetToken still makes one round trip (EVALSHA_RO of a
// read-only script: GET, and HMGET of the marker, which is mostly absent);
// a pipelined GET and EXISTS cannot do it, as only the record names the
// marker. The script costs Redis about 3.4 µs a call against 0.7 µs for a
// bare GET (INFO commandstats), while CreateToken's script fell from about
// 10 µs to 5 µs without the index to maintain.
//
// A marker must outlive every token it revokes, and the store does not know
// which tokens a request has, so it lives until its shard's horizon
// expires: every CreateToken stretches the horizon, when needed, to the
// token's TTL plus a minute of slack, so it is stretched about once a
// minute, not on every write. A marker therefore lives as long as the longest-lived token in the
// store: an hour when tokens live an hour, a day when some live a day. A
// token living longer than Options.LongLived (client tokens from the
// management API live a year) does not stretch the horizon, or every marker
// would live a year; it stretches its request's own horizon, an extra key of
// about 100 bytes, and RevokeRequest takes the longer of the two. A marker
// takes about 140 bytes (104 by MEMORY USAGE, and its TTL), so a revocation
// a second holds about 12 MB when markers live a day (on a Cluster, a
// marker per shard: 16 times that). A revoked token's own key stays until
// its TTL.
//
// A request may get tokens after it was revoked (the contract allows it):
// CreateToken adds such a token's key as a field of the marker, exempting
// it, and RevokeRequest resets the marker to its "" field alone, revoking
// them again.
//
// # Memory
//
// Measured by TestBytesPerToken on Redis 7.0 with jemalloc (used_memory
// growth, typical token): 227 bytes per live token at 100,000 tokens and
// 225 at 1,000,000, against about 470 with the first layout (a base64
// text key, and a request index key, per token); MEMORY USAGE of a token
// key went from 184 + 136 to 168 bytes. The hash tags of version 3 did not
// change it: the key grew by 3 bytes within its allocation class. On a
// Redis Cluster (TestBytesPerTokenCluster, three masters) a token costs
// 258 bytes at 1,000,000: cluster mode also links every key into its
// slot's list. Per token: the main and expires
// dictionary entries (32 bytes each), the key (48), the value object (16)
// and its 70-byte record (80), and the slots of both hash tables (8 bytes
// each, at a load factor between 0.5 and 1). Binary signatures save a
// 16-byte allocation step on every key; the compact request ids keep the
// record within the 80-byte step.
//
// Rejected: packing tokens into small hashes (listpack encoding) would save
// much of the per-key overhead, but a token then has no TTL of its own
// before Redis 7.4 (HPEXPIRE), and expired tokens would need sweeping;
// squeezing the typical record to 44 bytes (an embedded string, 64 bytes
// instead of 96) would mean dropping data the introspection answer carries.
//
// # Shards
//
// On Redis Cluster a script may only touch keys of one hash slot. A token
// is found by its signature alone, and revoked by its request id alone, so
// the token, the marker its script reads and the horizon it stretches must
// share a slot that both can name: the shard's. Each shard's tag is chosen
// (shardTags) so that the shards' slots are spread evenly over the 16384
// slots, and with them the tokens over the masters. The price is paid by
// revocation, which is rare: as the store keeps no index of a request's
// tokens, RevokeRequest writes the request's marker in every shard that has
// a live horizon, one short script each, pipelined; a revocation then holds
// one marker per shard.
//
// A single Redis, or one behind Sentinel, needs no spreading: New takes one
// shard there, and ClusterShards (16) on a *redis.ClusterClient, which
// spreads tokens over up to 16 masters. The shards are part of the layout:
// changing their number, or moving tokens between a single Redis and a
// Cluster, leaves the stored tokens unread (answered as not found).
//
// # Deployment
//
// Redis 7.0 or later (script flags, EVALSHA_RO): a single server, a master
// with replicas behind Sentinel, or a Redis Cluster. The scripts compute
// the marker key from a record, a key they do not declare; Redis Cluster
// allows it as it falls in the slot of the declared ones. Redis must not
// evict keys (maxmemory-policy noeviction): an evicted marker or horizon
// would bring revoked tokens back.
//
// NewClient (a URL) and NewUniversalClient (Sentinel or Cluster addresses)
// build go-redis clients whose timeouts and retries are bounded, so that a
// Redis outage answers within about a second.
package redis

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
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

// horizonSlack is how much longer than the longest-lived token the horizon
// is stretched to, so that a steady stream of tokens of one lifetime
// stretches it about once per slack, not on every CreateToken.
const horizonSlack = time.Minute

// DefaultLongLived is Options.LongLived when it is zero: a day, the longest
// lifetime of Tollgate's grants by default (eskimi_dsp, key sessions).
const DefaultLongLived = 24 * time.Hour

// Options configures a Store.
type Options struct {
	// KeyPrefix is put before every key; empty means DefaultKeyPrefix. It
	// should hold no '{' or '}', which would change the keys' hash tags.
	KeyPrefix string
	// Now is the clock TTLs are computed with; nil means time.Now.
	Now func() time.Time
	// LongLived is the lifetime beyond which a token stretches its
	// request's horizon rather than the store's, so that revocation markers
	// need not live as long as the longest-lived token (see the package
	// doc); zero means DefaultLongLived.
	LongLived time.Duration
	// Shards is the number of hash slots the keys are spread across, at
	// most MaxShards; zero means ClusterShards on a *redis.ClusterClient
	// and 1 on any other client. It is part of the key layout: every
	// instance sharing a Redis must use the same, and changing it loses
	// the stored tokens (see the package doc).
	Shards int
}

// Store is a storage.Tokens on Redis. It is safe for concurrent use.
type Store struct {
	client    goredis.UniversalClient
	prefix    string
	shards    []shard
	longLived time.Duration
	now       func() time.Time
}

// shard holds the key prefixes of one shard, all under its hash tag:
// <prefix>{<tag>}.
type shard struct {
	binaryPrefix string // <prefix>{<tag>}t:, before a decoded signature
	textPrefix   string // <prefix>{<tag>}s:, before any other signature
	markerPrefix string // <prefix>{<tag>}x:, before a request id field
	horizon      string // <prefix>{<tag>}h
	expiryPrefix string // <prefix>{<tag>}e:, before a request id field
	getArgs      []any  // ARGV of getToken, the same on every call
}

// New answers a Store on client. The caller owns client and closes it.
// Shards out of range are clamped to 1 and MaxShards.
func New(client goredis.UniversalClient, opts Options) *Store {
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	longLived := opts.LongLived
	if longLived <= 0 {
		longLived = DefaultLongLived
	}
	n := opts.Shards
	if n == 0 {
		n = 1
		if _, ok := client.(*goredis.ClusterClient); ok {
			n = ClusterShards
		}
	}
	n = min(max(n, 1), MaxShards)
	s := &Store{client: client, prefix: prefix, shards: make([]shard, n), longLived: longLived, now: now}
	for i, tag := range shardTags(n) {
		s.shards[i] = newShard(prefix + "{" + tag + "}")
	}
	return s
}

// newShard returns the key prefixes of a shard under p, its
// <prefix>{<tag>}.
func newShard(p string) shard {
	return shard{
		binaryPrefix: p + "t:",
		textPrefix:   p + "s:",
		markerPrefix: p + "x:",
		horizon:      p + "h",
		expiryPrefix: p + "e:",
		getArgs:      []any{p + "x:"},
	}
}

// rootShard returns the keys of root's tokens in the rooted layout, under
// the hash tag the meter's keys of root carry ({a<root>}), each kind named
// by one upper-case letter so that no shard's key (<prefix>{<tag>}t:…, a
// lower-case one) can look the same, and the typical key stays within the
// allocation class of a shard's (44 bytes up to roots of 5 digits).
func (s *Store) rootShard(root int64) shard {
	p := s.prefix + "{a" + strconv.FormatInt(root, 10) + "}"
	return shard{
		binaryPrefix: p + "T",
		textPrefix:   p + "S",
		markerPrefix: p + "X",
		horizon:      p + "H",
		expiryPrefix: p + "E",
		getArgs:      []any{p + "X"},
	}
}

// place returns where the token of signature lives and the part of the
// signature its key holds: its root's keys for a rooted signature
// (storage.Rooted), its shard's for any other.
func (s *Store) place(signature string) (shard, string, int64) {
	if root, sig, ok := storage.SplitRooted(signature); ok {
		return s.rootShard(root), sig, root
	}
	return *s.shardOf(signature), signature, 0
}

// luaRevoked answers whether the token stored under key with record is
// revoked: its request has a marker (markers is the marker key prefix), and
// the marker does not exempt key. A record of a version it does not know
// counts as not revoked, so that Go reports it as corrupt.
//
// The request id field follows the version byte: a uvarint tag n<<2|form
// and n bytes (see appendRequestID). The marker key is the prefix and that
// field, tag included.
const luaRevoked = `
local function revoked(record, key, markers)
	if string.byte(record, 1) ~= 3 then
		return false
	end
	local tag, shift, pos = 0, 1, 2
	while true do
		local b = string.byte(record, pos)
		if not b or pos > 6 then
			return false
		end
		tag = tag + (b % 128) * shift
		pos = pos + 1
		if b < 128 then
			break
		end
		shift = shift * 128
	end
	local marker = markers .. string.sub(record, 2, pos - 1 + math.floor(tag / 4))
	local fields = redis.call('HMGET', marker, '', key)
	return fields[1] ~= false and fields[2] == false
end
`

// getToken answers the record under KEYS[1], or nil when there is none or
// its request was revoked. It writes nothing, so it runs as EVALSHA_RO.
//
// KEYS[1] token key; ARGV[1] marker key prefix.
var getToken = goredis.NewScript("#!lua flags=no-writes\n" + luaRevoked + `
local record = redis.call('GET', KEYS[1])
if record and revoked(record, KEYS[1], ARGV[1]) then
	return false
end
return record
`)

// createToken stores a token unless its key holds a token that is not
// revoked, and answers 1, or 0 touching nothing. A token of a revoked
// request is exempted from its marker; the horizon is stretched to cover
// the token.
//
// KEYS[1] token key, KEYS[2] marker of its request, KEYS[3] the horizon,
// or its request's horizon for a long-lived token; ARGV[1] record, ARGV[2]
// TTL in ms, ARGV[3] marker key prefix, ARGV[4] horizon slack in ms,
// ARGV[5] "1" to store only if the key holds no token at all, not even a
// revoked one (CreateTokenOnce).
var createToken = goredis.NewScript(luaRevoked + `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	if ARGV[5] == '1' or not revoked(redis.call('GET', KEYS[1]), KEYS[1], ARGV[3]) then
		return 0
	end
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if redis.call('EXISTS', KEYS[2]) == 1 then
	redis.call('HSET', KEYS[2], KEYS[1], '')
end
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[3]) < ttl then
	redis.call('SET', KEYS[3], '', 'PX', ttl + tonumber(ARGV[4]))
end
return 1
`)

// revokeRequest writes the marker of a request: a hash whose field "" says
// the request is revoked and whose other fields, added by createToken, are
// the keys of tokens created since. It lives as long as the longer of the
// horizon and the request's own; with neither there is no live token to
// revoke.
//
// KEYS[1] marker, KEYS[2] horizon, KEYS[3] the request's horizon.
var revokeRequest = goredis.NewScript(`
local ttl = math.max(redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[3]))
if ttl <= 0 then
	return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '', '')
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`)

// shardOf answers the shard of signature.
func (s *Store) shardOf(signature string) *shard {
	return &s.shards[shardOf(signature, len(s.shards))]
}

// tokenKey answers the key of signature in its shard: the binary prefix
// and the decoded bytes when signature is canonical unpadded base64url, as
// fosite's are (43 characters, 32 bytes: the key is 11 bytes shorter, which
// puts it in a smaller allocation class), else the text prefix and
// signature itself. Canonical means it decodes strictly and nothing else
// encodes to the same bytes, so the mapping is one to one.
func (sh *shard) tokenKey(signature string) string {
	if !isBase64URL(signature) {
		return sh.textPrefix + signature
	}
	var buf [128]byte
	b := append(buf[:0], sh.binaryPrefix...)
	b, err := base64.RawURLEncoding.Strict().AppendDecode(b, []byte(signature))
	if err != nil { // unused trailing bits set: not canonical
		return sh.textPrefix + signature
	}
	return string(b)
}

// isBase64URL reports whether s is non-empty, of a length unpadded base64
// can have, and holds only base64url characters (the decoder would skip
// CR and LF).
func isBase64URL(s string) bool {
	if len(s) == 0 || len(s)%4 == 1 {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// markerKey answers the revocation marker key of requestID in the shard.
func (sh *shard) markerKey(requestID string) string {
	return string(appendRequestID([]byte(sh.markerPrefix), requestID))
}

// expiryKey answers the key of requestID's own horizon in the shard.
func (sh *shard) expiryKey(requestID string) string {
	return string(appendRequestID([]byte(sh.expiryPrefix), requestID))
}

// CreateToken stores t until t.ExpiresAt, times truncated to the
// millisecond. A token without a signature or request id, or expiring less
// than a millisecond from now, is rejected with an error.
func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	return s.create(ctx, t, "0")
}

// CreateTokenOnce stores t like CreateToken, unless its key holds a token,
// revoked or not (a revoked token's key stays until its TTL; DeleteToken
// removes it, and with it this guarantee).
func (s *Store) CreateTokenOnce(ctx context.Context, t storage.Token) error {
	return s.create(ctx, t, "1")
}

func (s *Store) create(ctx context.Context, t storage.Token, once string) error {
	ttl := t.ExpiresAt.Truncate(time.Millisecond).Sub(s.now())
	switch {
	case t.Signature == "":
		return errors.New("redis: token has no signature")
	case t.RequestID == "":
		return errors.New("redis: token has no request id")
	case ttl < time.Millisecond:
		return fmt.Errorf("redis: token expires at %s, not after now", t.ExpiresAt.UTC())
	}
	sh, sig, root := s.place(t.Signature)
	if root != 0 {
		// The record and the marker live under the root's tag, which
		// names the root: the request id is stored without it.
		r, rest, ok := storage.SplitRooted(t.RequestID)
		if !ok || r != root {
			return errors.New("redis: a rooted token's request id must name the same root")
		}
		t.RequestID = rest
	}
	record, err := encodeRecord(t)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	horizon := sh.horizon
	if ttl > s.longLived {
		horizon = sh.expiryKey(t.RequestID)
	}
	keys := []string{sh.tokenKey(sig), sh.markerKey(t.RequestID), horizon}
	created, err := createToken.Run(ctx, s.client, keys,
		record, ttl.Milliseconds(), sh.markerPrefix, horizonSlack.Milliseconds(), once).Int()
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
	sh, sig, _ := s.place(signature)
	record, err := getToken.RunRO(ctx, s.client, []string{sh.tokenKey(sig)}, sh.getArgs...).Text()
	if err != nil {
		return storage.Token{}, storeError("get token", err)
	}
	return s.token(signature, record)
}

// token returns the token of signature from the record stored under it:
// ErrNotFound when it expired on our clock.
func (s *Store) token(signature, record string) (storage.Token, error) {
	t, err := decodeRecord(record)
	if err != nil {
		return storage.Token{}, fmt.Errorf("redis: get token: %w", err)
	}
	// Redis expires the key on its own clock; this keeps the answer right
	// on ours too.
	if !s.now().Before(t.ExpiresAt) {
		return storage.Token{}, storage.ErrNotFound
	}
	if root, _, ok := storage.SplitRooted(signature); ok {
		t.RequestID = storage.Rooted(root, t.RequestID)
	}
	t.Signature = signature
	return t, nil
}

// DeleteToken removes the token; an unknown signature is no error. If its
// request was revoked after it was created again, its key stays a field of
// the request's marker until the marker expires.
func (s *Store) DeleteToken(ctx context.Context, signature string) error {
	if signature == "" {
		return nil
	}
	sh, sig, _ := s.place(signature)
	if err := s.client.Del(ctx, sh.tokenKey(sig)).Err(); err != nil {
		return storeError("delete token", err)
	}
	return nil
}

// RevokeRequest revokes every token of requestID: it writes the request's
// marker in every shard, as the store does not know which shards hold the
// request's tokens, with one script per shard, pipelined (one round trip
// per Redis node). A request id that names its root (storage.Rooted) gets
// the marker under the root's tag too, where its tokens are (ADR 0013); the
// shards' markers still cover a token stored there with such an id (only a
// caller of the store itself can make one). An unknown request id is no
// error. The tokens' keys stay until their TTLs, answered as not found.
func (s *Store) RevokeRequest(ctx context.Context, requestID string) error {
	if requestID == "" {
		return nil
	}
	root, rest, rooted := storage.SplitRooted(requestID)
	if !rooted && len(s.shards) == 1 {
		sh := &s.shards[0]
		keys := []string{sh.markerKey(requestID), sh.horizon, sh.expiryKey(requestID)}
		if err := revokeRequest.Run(ctx, s.client, keys).Err(); err != nil {
			return storeError("revoke request", err)
		}
		return nil
	}
	// EVALSHA's fallback to EVAL does not fit a pipeline; the script is
	// short, and Redis caches it by its digest all the same.
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		if rooted {
			rs := s.rootShard(root)
			revokeRequest.Eval(ctx, p, []string{rs.markerKey(rest), rs.horizon, rs.expiryKey(rest)})
		}
		for i := range s.shards {
			sh := &s.shards[i]
			revokeRequest.Eval(ctx, p, []string{sh.markerKey(requestID), sh.horizon, sh.expiryKey(requestID)})
		}
		return nil
	})
	if err != nil {
		return storeError("revoke request", err)
	}
	return nil
}

// Ping reports whether Redis answers: on a Cluster, every master, as each
// holds some of the shards.
func (s *Store) Ping(ctx context.Context) error {
	var err error
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = s.client.Ping(ctx).Err()
	}
	if err != nil {
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
