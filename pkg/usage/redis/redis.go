// Package redis keeps the per-minute usage counts in Redis, in the layout
// the check's decision script writes (usage.CountKey, usage.CountField):
// HINCRBY and EXPIRE pipelined to count, HGETALL pipelined to read.
package redis

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/pkg/usage"
)

var (
	_ usage.Counter      = (*Counts)(nil)
	_ usage.MinuteReader = (*Counts)(nil)
	_ usage.BatchCounter = (*Counts)(nil)
	_ usage.BatchReader  = (*Counts)(nil)
	_ usage.RangeReader  = (*Counts)(nil)
)

// Options configure Counts.
type Options struct {
	// KeyPrefix is the installation's Redis key prefix (redis.key_prefix,
	// DefaultKeyPrefix when empty): the keys are <KeyPrefix>u:{a<root>}:<unix
	// minute>, exactly usage.CountKey under the default prefix.
	KeyPrefix string
}

// DefaultKeyPrefix is the prefix usage.CountKey is written under.
const DefaultKeyPrefix = "tg:"

// Counts are the usage counts in Redis.
type Counts struct {
	client goredis.UniversalClient
	prefix string
}

// New returns the counts in client.
func New(client goredis.UniversalClient, opts Options) *Counts {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	return &Counts{client: client, prefix: opts.KeyPrefix}
}

func (r *Counts) key(root int64, minute time.Time) string {
	return r.prefix + strings.TrimPrefix(usage.CountKey(root, minute), DefaultKeyPrefix)
}

// Add adds c under root.
func (r *Counts) Add(ctx context.Context, root int64, c usage.Count) error {
	return r.AddBatch(ctx, []usage.RootCount{{Root: root, Count: c}})
}

// AddBatch adds every count in one pipeline (on Redis Cluster, one per
// slot: go-redis splits it).
func (r *Counts) AddBatch(ctx context.Context, counts []usage.RootCount) error {
	if len(counts) == 0 {
		return nil
	}
	pipe := r.client.Pipeline()
	seen := map[string]bool{}
	for _, c := range counts {
		k := r.key(c.Root, c.Minute)
		pipe.HIncrBy(ctx, k, usage.CountField(c.CredentialID, c.Class, c.Outcome), c.N)
		if !seen[k] {
			seen[k] = true
			pipe.Expire(ctx, k, usage.CountTTL)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("add usage counts: %w", err)
	}
	return nil
}

// ReadMinute returns root's counts of minute.
func (r *Counts) ReadMinute(ctx context.Context, root int64, minute time.Time) ([]usage.Count, error) {
	got, err := r.ReadMinutes(ctx, []int64{root}, minute)
	if err != nil {
		return nil, err
	}
	return got[root], nil
}

// ReadMinutes returns the counts of minute of every root of roots that has
// some, reading them in one pipeline.
func (r *Counts) ReadMinutes(ctx context.Context, roots []int64, minute time.Time) (map[int64][]usage.Count, error) {
	out := map[int64][]usage.Count{}
	if len(roots) == 0 {
		return out, nil
	}
	minute = minute.UTC().Truncate(time.Minute)
	pipe := r.client.Pipeline()
	cmds := make([]*goredis.MapStringStringCmd, len(roots))
	for i, root := range roots {
		cmds[i] = pipe.HGetAll(ctx, r.key(root, minute))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read usage counts: %w", err)
	}
	for i, root := range roots {
		out[root] = parseCounts(out[root], minute, cmds[i].Val())
	}
	return out, nil
}

// ReadRange returns root's counts of every minute in [from, to), oldest
// first, in one pipeline: every key of a root shares its hash tag, so one
// Cluster slot serves it.
func (r *Counts) ReadRange(ctx context.Context, root int64, from, to time.Time) ([]usage.Count, error) {
	from = from.UTC().Truncate(time.Minute)
	if !from.Before(to) {
		return nil, nil
	}
	pipe := r.client.Pipeline()
	var cmds []*goredis.MapStringStringCmd
	for t := from; t.Before(to); t = t.Add(time.Minute) {
		cmds = append(cmds, pipe.HGetAll(ctx, r.key(root, t)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read usage counts: %w", err)
	}
	var out []usage.Count
	for i, cmd := range cmds {
		out = parseCounts(out, from.Add(time.Duration(i)*time.Minute), cmd.Val())
	}
	return out, nil
}

// parseCounts appends the counts of minute's hash to out, in a fixed order
// (credential, class, outcome). Fields that are not counts (another
// layout, a bad number) are skipped.
func parseCounts(out []usage.Count, minute time.Time, hash map[string]string) []usage.Count {
	start := len(out)
	for field, v := range hash {
		id, class, outcome, ok := usage.ParseField(field)
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n <= 0 {
			continue
		}
		out = append(out, usage.Count{Minute: minute, CredentialID: id, Class: class, Outcome: outcome, N: n})
	}
	slices.SortFunc(out[start:], func(a, b usage.Count) int {
		return cmp.Or(cmp.Compare(a.CredentialID, b.CredentialID), cmp.Compare(a.Class, b.Class), cmp.Compare(a.Outcome, b.Outcome))
	})
	return out
}
