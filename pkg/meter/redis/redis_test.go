package redis_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/meter"
	"github.com/tollgate/tollgate/pkg/meter/conformance"
	"github.com/tollgate/tollgate/pkg/meter/redis"
	"github.com/tollgate/tollgate/pkg/ratelimit"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/redis/redistest"
)

// counts reads the minute's hash the script writes.
func counts(client goredis.UniversalClient, prefix string) conformance.Counts {
	return func(t *testing.T, root int64, minute time.Time) map[string]int64 {
		key := prefix + "u:" + usage.HashTag(root) + ":" + itoa(minute.Unix()/60)
		m, err := client.HGetAll(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for k, v := range m {
			n, err := parseInt(v)
			if err != nil {
				t.Fatal(err)
			}
			out[k] = n
		}
		return out
	}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (meter.Decider, conformance.Counts) {
		client, prefix := redistest.New(t)
		return redis.New(client, redis.Options{KeyPrefix: prefix}), counts(client, prefix)
	})
}

// The whole suite on a Redis Cluster of three masters: the script touches
// several keys at once, which Cluster allows only in one slot, so this
// fails unless every key carries the root account's hash tag.
func TestClusterConformance(t *testing.T) {
	client, _ := redistest.NewCluster(t)
	conformance.Run(t, func(t *testing.T) (meter.Decider, conformance.Counts) {
		prefix := redistest.Prefix()
		t.Cleanup(func() { _ = redistest.DeleteKeys(t.Context(), client, prefix) })
		return redis.New(client, redis.Options{KeyPrefix: prefix}), counts(client, prefix)
	})
}

// With the production prefix the keys are pkg/usage's and the documented
// layout, and each has its TTL.
func TestKeyLayout(t *testing.T) {
	client, prefix := redistest.New(t)
	d := redis.New(client, redis.Options{KeyPrefix: prefix})
	now := time.Now().UTC()
	root := int64(424242)
	q := storage.Quota{Limit: 10, Period: storage.QuotaDay}
	bq := storage.Quota{Limit: 10, Period: storage.QuotaMonth}
	br := ratelimit.Limit{Rate: 5, Burst: 5}
	_, err := d.Decide(t.Context(), meter.Request{Root: root, CredentialID: 7, AccountID: 8, Class: "default", Cost: 2,
		Rate: ratelimit.Limit{Rate: 1, Burst: 2}, Quota: &q, Now: now, Budgets: []meter.Budget{{AccountID: 8, Rate: &br, Quota: &bq}}})
	if err != nil {
		t.Fatal(err)
	}
	start, next := q.Start(now)
	mstart, mnext := bq.Start(now)
	tag := usage.HashTag(root)
	if want := usage.CountKey(root, now); "tg:"+(want[len("tg:"):]) != want {
		t.Fatalf("usage.CountKey %q is not under tg:", want)
	}
	for key, ttl := range map[string][2]time.Duration{
		prefix + "u:" + tag + ":" + itoa(now.Unix()/60):     {usage.CountTTL - time.Minute, usage.CountTTL},
		prefix + "r:" + tag + ":c:7:default":                {time.Millisecond, time.Second},
		prefix + "r:" + tag + ":a:8:default":                {time.Millisecond, time.Second},
		prefix + "q:" + tag + ":c:7:" + itoa(start.Unix()):  {time.Until(next.Add(meter.QuotaKeyGrace)) - time.Minute, time.Until(next.Add(meter.QuotaKeyGrace)) + time.Second},
		prefix + "q:" + tag + ":a:8:" + itoa(mstart.Unix()): {time.Until(mnext.Add(meter.QuotaKeyGrace)) - time.Minute, time.Until(mnext.Add(meter.QuotaKeyGrace)) + time.Second},
	} {
		got, err := client.PTTL(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got < ttl[0] || got > ttl[1] {
			t.Errorf("%s: TTL %v, want within [%v, %v]", key, got, ttl[0], ttl[1])
		}
	}
	if got, _ := client.Get(t.Context(), prefix+"q:"+tag+":c:7:"+itoa(start.Unix())).Int64(); got != 2 {
		t.Errorf("credential quota counter %d, want 2 (the cost)", got)
	}
	if got := client.HGet(t.Context(), prefix+"u:"+tag+":"+itoa(now.Unix()/60), usage.CountField(7, "default", usage.OutcomeAllowed)).Val(); got != "1" {
		t.Errorf("count %q, want 1", got)
	}
	keys, err := redistest.Keys(t.Context(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Errorf("keys %q, want the 5 above", keys)
	}
}

// The default prefix writes the counts exactly where usage.CountKey says.
func TestDefaultPrefixIsUsageLayout(t *testing.T) {
	client, _ := redistest.New(t)
	d := redis.New(client, redis.Options{})
	now := time.Now().UTC()
	root := 9_000_000_000 + time.Now().UnixNano()%1_000_000
	t.Cleanup(func() {
		q := storage.Quota{Limit: 1, Period: storage.QuotaDay}
		start, _ := q.Start(now)
		client.Del(t.Context(), usage.CountKey(root, now), "tg:r:"+usage.HashTag(root)+":c:1:default", "tg:q:"+usage.HashTag(root)+":c:1:"+itoa(start.Unix()))
	})
	q := storage.Quota{Limit: 1, Period: storage.QuotaDay}
	if _, err := d.Decide(t.Context(), meter.Request{Root: root, CredentialID: 1, AccountID: root, Class: "default", Cost: 1,
		Rate: ratelimit.Limit{Rate: 1, Burst: 1}, Quota: &q, Now: now}); err != nil {
		t.Fatal(err)
	}
	if got := client.HGet(t.Context(), usage.CountKey(root, now), usage.CountField(1, "default", usage.OutcomeAllowed)).Val(); got != "1" {
		t.Errorf("count at usage.CountKey: %q, want 1", got)
	}
	if got, err := d.Spent(t.Context(), root, meter.Holder{CredentialID: 1}, q, now); err != nil || got != 1 {
		t.Errorf("Spent = %d, %v; want 1", got, err)
	}
	if err := d.Add(t.Context(), root, usage.Count{Minute: now, CredentialID: 1, Class: "default", Outcome: usage.OutcomeUnauthorized, N: 2}); err != nil {
		t.Fatal(err)
	}
	if got := client.HGet(t.Context(), usage.CountKey(root, now), usage.CountField(1, "default", usage.OutcomeUnauthorized)).Val(); got != "2" {
		t.Errorf("Add's count: %q, want 2", got)
	}
}

// Redis down: an error, no decision.
func TestUnavailable(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = client.Close() })
	d := redis.New(client, redis.Options{})
	dec, err := d.Decide(t.Context(), meter.Request{Root: 1, CredentialID: 1, AccountID: 1, Class: "default", Cost: 1, Rate: ratelimit.Limit{Rate: 1, Burst: 1}, Now: time.Now()})
	if err == nil || dec.Allowed {
		t.Fatalf("Decide with Redis down: %+v, %v; want an error and no decision", dec, err)
	}
	open := meter.FailOpen(d, nil)
	dec, err = open.Decide(t.Context(), meter.Request{Root: 1, CredentialID: 1, AccountID: 1, Class: "default", Cost: 1, Rate: ratelimit.Limit{Rate: 1, Burst: 1}, Now: time.Now()})
	if err != nil || !dec.Allowed || !dec.FailedOpen {
		t.Fatalf("FailOpen: %+v, %v; want allowed, failed open", dec, err)
	}
	if _, err := open.Decide(t.Context(), meter.Request{Root: 1, CredentialID: 1, Class: "default", Cost: 0, Rate: ratelimit.Limit{Rate: 1, Burst: 1}}); err == nil {
		t.Error("FailOpen let an invalid request through")
	}
}
