package redis

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/storage"
)

// ErrTermsRefused is returned by GetTokenThen, with the token, when its
// record did not hold the terms: the gated body did not run.
var ErrTermsRefused = errors.New("redis: the token's record does not hold the terms")

// Gated is a script that runs behind a token's record: only when the
// record of a rooted token is live (stored, not expired, its request not
// revoked) and holds the call's terms (storage.TokenTerms), in the same
// script that reads it. The check endpoint's decision runs so
// (pkg/meter/redis), making a Bearer check one round trip.
type Gated struct{ script *goredis.Script }

// luaTerms answers whether a version 3 record holds the terms in ARGV[2]
// onwards: client id, account id, the raw JKT ("" for none), the issue
// cut-off (Unix milliseconds), the subject, the number of generations and
// each, the number of scopes and each. It also answers the index of the last of
// them. It reads the record as decodeRecord does; a record it cannot read
// holds nothing (Go then reports it as corrupt).
const luaTerms = `
local function uvarint(s, pos)
	local v, mul = 0, 1
	for i = 0, 9 do
		local b = string.byte(s, pos + i)
		if not b then
			return nil, pos
		end
		v = v + (b % 128) * mul
		if b < 128 then
			return v, pos + i + 1
		end
		mul = mul * 128
	end
	return nil, pos
end
local function varint(s, pos)
	local u, p = uvarint(s, pos)
	if not u then
		return nil, p
	end
	if u % 2 == 1 then
		return -(u + 1) / 2, p
	end
	return u / 2, p
end
local function terms(record)
	local ng = tonumber(ARGV[7])
	local ns = tonumber(ARGV[8 + ng])
	local last = 8 + ng + ns
	if string.byte(record, 1) ~= 3 then
		return false, last
	end
	local n, pos = uvarint(record, 2)
	if not n then return false, last end
	pos = pos + math.floor(n / 4)
	local client, account, gen
	client, pos = varint(record, pos)
	gen, pos = varint(record, pos)
	account, pos = varint(record, pos)
	if not account or client ~= tonumber(ARGV[2]) or account ~= tonumber(ARGV[3]) then
		return false, last
	end
	local gen_ok = false
	for i = 1, ng do
		if gen == tonumber(ARGV[7 + i]) then
			gen_ok = true
		end
	end
	if not gen_ok then return false, last end
	n, pos = uvarint(record, pos) -- subject
	if not n or string.sub(record, pos, pos + n - 1) ~= ARGV[6] then
		return false, last
	end
	pos = pos + n
	n, pos = uvarint(record, pos) -- username
	if not n then return false, last end
	pos = pos + n
	n, pos = uvarint(record, pos) -- grant type
	if not n then return false, last end
	if n % 2 == 0 then
		pos = pos + n / 2
	end
	local scopes = {}
	n, pos = uvarint(record, pos)
	if not n then return false, last end
	for _ = 1, n do
		local l
		l, pos = uvarint(record, pos)
		if not l then return false, last end
		scopes[string.sub(record, pos, pos + l - 1)] = true
		pos = pos + l
	end
	n, pos = uvarint(record, pos) -- audience
	if not n then return false, last end
	for _ = 1, n do
		local l
		l, pos = uvarint(record, pos)
		if not l then return false, last end
		pos = pos + l
	end
	local expires, lifetime
	expires, pos = varint(record, pos)
	lifetime, pos = varint(record, pos)
	if not lifetime or expires - lifetime <= tonumber(ARGV[5]) then
		return false, last
	end
	local rest = string.sub(record, pos)
	local jkt = ""
	if #rest == 33 and string.byte(rest, 1) == 1 then
		jkt = string.sub(rest, 2)
	elseif #rest ~= 0 then
		return false, last
	end
	if jkt ~= ARGV[4] then
		return false, last
	end
	for i = 1, ns do
		if not scopes[ARGV[8 + ng + i]] then
			return false, last
		end
	end
	return true, last
end
`

// NewGated returns body run behind the gate. Body is Lua: it reads its own
// keys as KEYS[kb + 1], KEYS[kb + 2], … and its arguments as ARGV[ab + 1],
// … (kb and ab are locals the gate sets, as the gate's own come first),
// and returns a table.
func NewGated(body string) *Gated {
	return &Gated{script: goredis.NewScript(luaRevoked + luaTerms + `
local kb, ab = 1, 0
local function body()
` + body + `
end
local record = redis.call('GET', KEYS[1])
if not record or revoked(record, KEYS[1], ARGV[1]) then
	return false
end
local held, last = terms(record)
if not held then
	return {record, 0}
end
ab = last
return {record, body()}
`)}
}

// GetTokenThen reads the record of the rooted token signature and, only
// when it is live and holds terms, runs g with keys and args, in one
// script: one round trip. A token that is not live answers
// storage.ErrNotFound; one that does not hold terms answers the token and
// ErrTermsRefused; neither runs g's body, so neither spends anything. On
// success it returns the token and what g's body returned. keys must all
// carry the root's hash tag ({a<root>}), as the record's key does: on
// Redis Cluster one script touches one slot. A signature that is not
// rooted is an error: its record lives in a shard, which no other key
// shares.
func (s *Store) GetTokenThen(ctx context.Context, signature string, terms storage.TokenTerms, g *Gated, keys []string, args ...any) (storage.Token, []any, error) {
	root, sig, ok := storage.SplitRooted(signature)
	if !ok {
		return storage.Token{}, nil, errors.New("redis: get token then: not a rooted signature")
	}
	jkt, err := base64.RawURLEncoding.DecodeString(terms.JKT)
	if err != nil {
		return storage.Token{}, nil, fmt.Errorf("redis: get token then: jkt: %w", err)
	}
	sh := s.rootShard(root)
	all := make([]string, 0, 1+len(keys))
	all = append(all, sh.tokenKey(sig))
	all = append(all, keys...)
	argv := make([]any, 0, 8+len(terms.Generations)+len(terms.Scopes)+len(args))
	argv = append(argv, sh.markerPrefix, terms.ClientID, terms.AccountID, string(jkt),
		strconv.FormatInt(terms.IssuedAfter.UnixMilli(), 10), terms.Subject, len(terms.Generations))
	for _, g := range terms.Generations {
		argv = append(argv, g)
	}
	argv = append(argv, len(terms.Scopes))
	for _, sc := range terms.Scopes {
		argv = append(argv, sc)
	}
	argv = append(argv, args...)
	vals, err := g.script.Run(ctx, s.client, all, argv...).Slice()
	if err != nil {
		return storage.Token{}, nil, storeError("get token then", err)
	}
	if len(vals) != 2 {
		return storage.Token{}, nil, fmt.Errorf("redis: get token then: %d values from the script", len(vals))
	}
	record, _ := vals[0].(string)
	// A record Redis still held but our clock finds expired (the clocks
	// disagree by a moment) is answered as not found, g having run.
	t, err := s.token(signature, record)
	if err != nil {
		return storage.Token{}, nil, err
	}
	out, ok := vals[1].([]any)
	if !ok {
		return t, nil, ErrTermsRefused
	}
	return t, out, nil
}
