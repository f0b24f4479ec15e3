package app

import (
	"context"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// redisQuotaSpent reads the quota counters the check's decision script
// keeps in Redis, for the remaining quota the management surfaces show:
//
//	credential  <prefix>q:{a<root>}:c:<credential id>:<period start, unix seconds>
//	account     <prefix>q:{a<root>}:a:<account id>:<period start, unix seconds>
//
// (tg:q:… with the default prefix), each an integer: the cost spent in
// that period. A key that does not exist is nothing spent.
type redisQuotaSpent struct {
	client goredis.UniversalClient
	prefix string
}

var _ manage.QuotaSpent = redisQuotaSpent{}

// QuotaKey returns the Redis key of a quota counter: kind "c" for a
// credential, "a" for an account's budget.
func QuotaKey(prefix string, root int64, kind string, id int64, start time.Time) string {
	return prefix + "q:" + usage.HashTag(root) + ":" + kind + ":" + strconv.FormatInt(id, 10) + ":" + strconv.FormatInt(start.Unix(), 10)
}

func (q redisQuotaSpent) get(ctx context.Context, key string) (int64, error) {
	n, err := q.client.Get(ctx, key).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	return n, err
}

// CredentialSpent implements manage.QuotaSpent.
func (q redisQuotaSpent) CredentialSpent(ctx context.Context, root, id int64, start time.Time) (int64, error) {
	return q.get(ctx, QuotaKey(q.prefix, root, "c", id, start))
}

// AccountSpent implements manage.QuotaSpent.
func (q redisQuotaSpent) AccountSpent(ctx context.Context, root, id int64, start time.Time) (int64, error) {
	return q.get(ctx, QuotaKey(q.prefix, root, "a", id, start))
}

// meterQuotaSpent reads the quota counters through the check's meter: the
// in-process one of the embedded default, or Redis.
type meterQuotaSpent struct{ d meter.Decider }

var _ manage.QuotaSpent = meterQuotaSpent{}

// spentSince reads what h spent in the period beginning at start: a period
// of either length beginning at start holds start, and the counter's key
// names only the period's beginning.
func (q meterQuotaSpent) spentSince(ctx context.Context, root int64, h meter.Holder, start time.Time) (int64, error) {
	return q.d.Spent(ctx, root, h, storage.Quota{Limit: 1, Period: storage.QuotaDay}, start)
}

// CredentialSpent implements manage.QuotaSpent.
func (q meterQuotaSpent) CredentialSpent(ctx context.Context, root, id int64, start time.Time) (int64, error) {
	return q.spentSince(ctx, root, meter.Holder{CredentialID: id}, start)
}

// AccountSpent implements manage.QuotaSpent.
func (q meterQuotaSpent) AccountSpent(ctx context.Context, root, id int64, start time.Time) (int64, error) {
	return q.spentSince(ctx, root, meter.Holder{AccountID: id}, start)
}
