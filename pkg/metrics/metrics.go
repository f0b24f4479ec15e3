// Package metrics owns Tollgate's Prometheus metrics. Collectors live on a
// private registry, never the global one, and every label value comes from a
// small fixed set chosen by the caller (endpoint names, enabled grant types,
// outcomes) — never from request input.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Prometheus records request metrics on a private registry.
type Prometheus struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	limits   *prometheus.CounterVec
	blocks   *prometheus.CounterVec
	webhooks *prometheus.CounterVec
	whTime   prometheus.Histogram
	// Read from their sources at scrape time, once a Watch… method has
	// named them.
	dbPool    *dbPool
	redisPool *redisPool
	cache     *cacheStats
	readiness *readiness
	// own are the collectors of tollgate_ metrics, for the test that keeps
	// docs/operations.md in step with them.
	own []prometheus.Collector
}

// New returns a Prometheus with Go runtime and process collectors and the
// build version as tollgate_build_info.
func New(version string) *Prometheus {
	reg := prometheus.NewRegistry()
	p := &Prometheus{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_http_requests_total",
			Help: "Requests answered, by endpoint, grant type and outcome (ok or an OAuth error code).",
		}, []string{"endpoint", "grant_type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_http_request_duration_seconds",
			Help:    "Time to answer a request, by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint"}),
	}
	p.limits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_ratelimit_decisions_total",
		Help: "Rate-limit decisions of the check endpoint, by configured rate class and decision (allowed or limited).",
	}, []string{"class", "decision"})
	p.blocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_bruteforce_blocks_total",
		Help: "Authentication attempts refused by the brute-force protection, by kind (client or user) and by the dimension that was held back (id or source).",
	}, []string{"kind", "dimension"})
	p.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_webhook_deliveries_total",
		Help: "Webhook delivery attempts, by outcome (delivered, retry, failed) and error class (none, refused, timeout, connection, status, secret).",
	}, []string{"outcome", "error"})
	p.whTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tollgate_webhook_delivery_duration_seconds",
		Help:    "Time of a webhook delivery attempt, answer included.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tollgate_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	p.dbPool, p.redisPool, p.cache, p.readiness = newDBPool(), newRedisPool(), newCacheStats(), newReadiness()
	p.own = []prometheus.Collector{p.requests, p.duration, p.limits, p.blocks, p.webhooks, p.whTime, build,
		p.dbPool, p.redisPool, p.cache, p.readiness}
	reg.MustRegister(p.own...)
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return p
}

// WebhookDelivery implements webhooks.Metrics.
func (p *Prometheus) WebhookDelivery(outcome, errorClass string, d time.Duration) {
	if errorClass == "" {
		errorClass = "none"
	}
	p.webhooks.WithLabelValues(outcome, errorClass).Inc()
	p.whTime.Observe(d.Seconds())
}

// ObserveRequest implements server.Metrics.
func (p *Prometheus) ObserveRequest(endpoint, grantType, outcome string, d time.Duration) {
	if grantType == "" {
		grantType = "none"
	}
	p.requests.WithLabelValues(endpoint, grantType, outcome).Inc()
	p.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// Registry returns the private registry, for other collectors of the process.
func (p *Prometheus) Registry() *prometheus.Registry { return p.registry }

// Handler serves the registry in the Prometheus exposition format.
func (p *Prometheus) Handler() http.Handler {
	return promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{Registry: p.registry})
}

// RateLimited implements gateway.Metrics. class must come from the
// configured set.
func (p *Prometheus) RateLimited(class string, allowed bool) {
	decision := "limited"
	if allowed {
		decision = "allowed"
	}
	p.limits.WithLabelValues(class, decision).Inc()
}

// BruteForceBlocked implements bruteforce.Metrics. kind and dimension come
// from the package's fixed sets.
func (p *Prometheus) BruteForceBlocked(kind, dimension string) {
	p.blocks.WithLabelValues(kind, dimension).Inc()
}

// KnownRateClasses creates the rate-limit series of the configured classes
// at 0, and KnownBruteForce those of a kind and dimension of blocks: a
// series that appears only at its first event hides that event from rate()
// and increase(), and from the alerts and panels that read them.
func (p *Prometheus) KnownRateClasses(classes ...string) {
	for _, class := range classes {
		p.limits.WithLabelValues(class, "allowed")
		p.limits.WithLabelValues(class, "limited")
	}
}

// KnownBruteForce creates the series of kind and dimension at 0 (see
// KnownRateClasses).
func (p *Prometheus) KnownBruteForce(kind, dimension string) {
	p.blocks.WithLabelValues(kind, dimension)
}
