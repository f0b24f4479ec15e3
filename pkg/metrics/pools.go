package metrics

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sourced is a collector of metrics read from a source at scrape time (a
// connection pool's counters, a cache's, the dependencies' health). Its
// descriptions are registered by New, so that every tollgate_ metric is known
// (and documented) whether or not the process wires a source; until Watch…
// sets one, it collects nothing.
type sourced struct {
	descs   []*prometheus.Desc
	mu      sync.RWMutex
	collect func(ch chan<- prometheus.Metric)
}

func newSourced(descs ...*prometheus.Desc) *sourced { return &sourced{descs: descs} }

// Describe implements prometheus.Collector.
func (s *sourced) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *sourced) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	collect := s.collect
	s.mu.RUnlock()
	if collect != nil {
		collect(ch)
	}
}

func (s *sourced) set(collect func(ch chan<- prometheus.Metric)) {
	s.mu.Lock()
	s.collect = collect
	s.mu.Unlock()
}

// dbPool are the database connection pool's metrics.
type dbPool struct {
	*sourced
	conns, maxConns, waits, waitSeconds *prometheus.Desc
}

func newDBPool() *dbPool {
	p := &dbPool{
		conns: prometheus.NewDesc("tollgate_db_pool_connections",
			"Connections of the database pool, by state (in_use or idle).", []string{"state"}, nil),
		maxConns: prometheus.NewDesc("tollgate_db_pool_max_connections",
			"The database pool's bound on open connections (database.max_open_conns; 0 is no bound).", nil, nil),
		waits: prometheus.NewDesc("tollgate_db_pool_waits_total",
			"Queries that waited for a free database connection because the pool was at its bound.", nil, nil),
		waitSeconds: prometheus.NewDesc("tollgate_db_pool_wait_seconds_total",
			"Time spent waiting for a free database connection.", nil, nil),
	}
	p.sourced = newSourced(p.conns, p.maxConns, p.waits, p.waitSeconds)
	return p
}

// WatchDatabasePool exports the statistics of the database connection pool
// (database/sql's DBStats), read at every scrape.
func (p *Prometheus) WatchDatabasePool(stats func() sql.DBStats) {
	d := p.dbPool
	d.set(func(ch chan<- prometheus.Metric) {
		s := stats()
		ch <- prometheus.MustNewConstMetric(d.conns, prometheus.GaugeValue, float64(s.InUse), "in_use")
		ch <- prometheus.MustNewConstMetric(d.conns, prometheus.GaugeValue, float64(s.Idle), "idle")
		ch <- prometheus.MustNewConstMetric(d.maxConns, prometheus.GaugeValue, float64(s.MaxOpenConnections))
		ch <- prometheus.MustNewConstMetric(d.waits, prometheus.CounterValue, float64(s.WaitCount))
		ch <- prometheus.MustNewConstMetric(d.waitSeconds, prometheus.CounterValue, s.WaitDuration.Seconds())
	})
}

// RedisPoolStats are the counters of a Redis client's connection pool (the
// fields of go-redis's PoolStats the dashboard reads, summed over the nodes
// of a cluster).
type RedisPoolStats struct {
	Hits, Misses, Timeouts uint32 // connections taken from the pool, dialled anew, waited for in vain
	WaitCount              uint32 // requests that waited for a free connection
	WaitDuration           time.Duration
	TotalConns, IdleConns  uint32
	StaleConns             uint32 // stale connections removed so far
}

// redisPool are the Redis connection pool's metrics.
type redisPool struct {
	*sourced
	conns, hits, misses, timeouts, waits, waitSeconds, stale *prometheus.Desc
}

func newRedisPool() *redisPool {
	p := &redisPool{
		conns: prometheus.NewDesc("tollgate_redis_pool_connections",
			"Connections of the Redis pool, by state (in_use or idle).", []string{"state"}, nil),
		hits: prometheus.NewDesc("tollgate_redis_pool_hits_total",
			"Redis commands that found a free connection in the pool.", nil, nil),
		misses: prometheus.NewDesc("tollgate_redis_pool_misses_total",
			"Redis commands that found no free connection in the pool and dialled or waited for one.", nil, nil),
		timeouts: prometheus.NewDesc("tollgate_redis_pool_timeouts_total",
			"Redis commands that gave up waiting for a free connection (the pool is saturated).", nil, nil),
		waits: prometheus.NewDesc("tollgate_redis_pool_waits_total",
			"Redis commands that waited for a free connection.", nil, nil),
		waitSeconds: prometheus.NewDesc("tollgate_redis_pool_wait_seconds_total",
			"Time spent waiting for a free Redis connection.", nil, nil),
		stale: prometheus.NewDesc("tollgate_redis_pool_stale_connections_total",
			"Stale Redis connections removed from the pool (idle too long or broken).", nil, nil),
	}
	p.sourced = newSourced(p.conns, p.hits, p.misses, p.timeouts, p.waits, p.waitSeconds, p.stale)
	return p
}

// WatchRedisPool exports the statistics of the Redis connection pool, read
// at every scrape.
func (p *Prometheus) WatchRedisPool(stats func() RedisPoolStats) {
	r := p.redisPool
	r.set(func(ch chan<- prometheus.Metric) {
		s := stats()
		inUse := float64(s.TotalConns) - float64(s.IdleConns)
		ch <- prometheus.MustNewConstMetric(r.conns, prometheus.GaugeValue, max(inUse, 0), "in_use")
		ch <- prometheus.MustNewConstMetric(r.conns, prometheus.GaugeValue, float64(s.IdleConns), "idle")
		ch <- prometheus.MustNewConstMetric(r.hits, prometheus.CounterValue, float64(s.Hits))
		ch <- prometheus.MustNewConstMetric(r.misses, prometheus.CounterValue, float64(s.Misses))
		ch <- prometheus.MustNewConstMetric(r.timeouts, prometheus.CounterValue, float64(s.Timeouts))
		ch <- prometheus.MustNewConstMetric(r.waits, prometheus.CounterValue, float64(s.WaitCount))
		ch <- prometheus.MustNewConstMetric(r.waitSeconds, prometheus.CounterValue, s.WaitDuration.Seconds())
		ch <- prometheus.MustNewConstMetric(r.stale, prometheus.CounterValue, float64(s.StaleConns))
	})
}

// CacheStats are the counters of the in-process cache of clients, users and
// accounts.
type CacheStats struct {
	Hits   uint64 // answered from the table
	Misses uint64 // read from the database (or joined a read in flight)
	Stale  uint64 // answered past the entry's TTL because the database failed
	// Entries is the size of the table now.
	Entries int
}

// cacheStats are the cache's metrics.
type cacheStats struct {
	*sourced
	lookups, entries *prometheus.Desc
}

func newCacheStats() *cacheStats {
	c := &cacheStats{
		lookups: prometheus.NewDesc("tollgate_cache_lookups_total",
			"Reads of clients, users and accounts through the in-process cache, by result: hit (from the table), miss (from the database), stale (past its TTL, because the database failed).",
			[]string{"result"}, nil),
		entries: prometheus.NewDesc("tollgate_cache_entries",
			"Entries in the in-process cache, expired ones included.", nil, nil),
	}
	c.sourced = newSourced(c.lookups, c.entries)
	return c
}

// WatchCache exports the cache's counters, read at every scrape.
func (p *Prometheus) WatchCache(stats func() CacheStats) {
	c := p.cache
	c.set(func(ch chan<- prometheus.Metric) {
		s := stats()
		ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(s.Hits), "hit")
		ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(s.Misses), "miss")
		ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(s.Stale), "stale")
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries))
	})
}

// Probe is a dependency /readyz checks: its name and its health check.
type Probe struct {
	Name string
	Ping func(ctx context.Context) error
}

// readiness are the metrics of /readyz's verdict.
type readiness struct {
	*sourced
	ready, up *prometheus.Desc
}

func newReadiness() *readiness {
	r := &readiness{
		ready: prometheus.NewDesc("tollgate_ready",
			"1 when the instance is ready to serve (every dependency answers and it is not draining), 0 otherwise: what /readyz says.", nil, nil),
		up: prometheus.NewDesc("tollgate_dependency_up",
			"1 when the dependency answers its health check, 0 otherwise, by dependency (database: PostgreSQL or SQLite; tokens: Redis or the in-process store).",
			[]string{"dependency"}, nil),
	}
	r.sourced = newSourced(r.ready, r.up)
	return r
}

// WatchReadiness exports what /readyz would say, checked at every scrape:
// each probe is pinged (concurrently, within timeout), and the instance is
// ready when every probe answers and draining (nil: never) is false. A
// probe's error stays out of the metric: it may carry a DSN.
func (p *Prometheus) WatchReadiness(probes []Probe, timeout time.Duration, draining func() bool) {
	r := p.readiness
	r.set(func(ch chan<- prometheus.Metric) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		up := make([]bool, len(probes))
		var wg sync.WaitGroup
		for i, pr := range probes {
			wg.Go(func() { up[i] = pr.Ping(ctx) == nil })
		}
		wg.Wait()
		ready := draining == nil || !draining()
		for i, pr := range probes {
			ch <- prometheus.MustNewConstMetric(r.up, prometheus.GaugeValue, boolValue(up[i]), pr.Name)
			ready = ready && up[i]
		}
		ch <- prometheus.MustNewConstMetric(r.ready, prometheus.GaugeValue, boolValue(ready))
	})
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
