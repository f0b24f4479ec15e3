package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/app"
	"github.com/tollgate/tollgate/storage/redis/redistest"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

const (
	dashboardFile  = "../deploy/grafana/tollgate.json"
	alertsFile     = "../deploy/prometheus/alerts.yml"
	alertTestsFile = "../deploy/prometheus/alerts_test.yml"
)

// served opens Tollgate as `tollgate serve` does on PostgreSQL and Redis,
// uses it (a token request of an unknown client, twice, and /readyz), and
// returns a scrape of its /metrics and the secrets it was given.
func served(t *testing.T) (scrape string, secrets []string) {
	t.Helper()
	_, prefix := redistest.New(t) // deletes the prefix's keys at the end
	cfg := config.Default()
	cfg.Issuer = "https://auth.example.test"
	cfg.Database.URL = sqltest.Postgres(t)
	cfg.Redis.URL = redistest.URL()
	cfg.Redis.KeyPrefix = prefix
	cfg.RateLimits.Classes = config.DefaultRateClasses() // as config.Load fills them in
	keys := config.Keys{
		TokenSecret:      []byte("observability-token-secret-0123456789abcdef"),
		PepperID:         "1",
		Pepper:           []byte("observability-pepper-0123456789abcdef012345"),
		KeyEncryptionKey: []byte("observability-key-encryption-key"),
	}
	a, err := app.Open(t.Context(), cfg, app.Options{Keys: keys, Migrate: true, Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	public, ops := httptest.NewServer(a.Public()), httptest.NewServer(a.Ops())
	t.Cleanup(public.Close)
	t.Cleanup(ops.Close)

	const clientSecret = "observability-client-secret"
	for range 2 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, public.URL+"/oauth/token",
			strings.NewReader("grant_type=client_credentials"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic(987654321, clientSecret))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST /oauth/token: %v", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST /oauth/token of an unknown client: status %d, want 401", res.StatusCode)
		}
	}
	get := func(path string) string {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ops.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, want 200: %s", path, res.StatusCode, body)
		}
		return string(body)
	}
	get("/readyz")
	return get("/metrics"), []string{string(keys.TokenSecret), string(keys.Pepper), string(keys.KeyEncryptionKey), clientSecret, cfg.Database.URL, cfg.Redis.URL}
}

// sample is one line of a scrape: the series (name and labels) and value.
type sample struct {
	series string
	value  float64
}

// parseScrape returns the families of a scrape by name with their type, and
// its samples.
func parseScrape(t *testing.T, body string) (types map[string]string, samples []sample) {
	t.Helper()
	types = map[string]string{}
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			types[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape line %q: %v", line, err)
		}
		samples = append(samples, sample{series: line[:i], value: v})
	}
	return types, samples
}

// TestPoolCacheAndReadinessMetricsAfterUse: after a few requests, a
// Tollgate opened as `tollgate serve` opens it exports its PostgreSQL and
// Redis pools, its cache and its readiness with the values of that use, and
// no secret it knows anywhere in the scrape.
func TestPoolCacheAndReadinessMetricsAfterUse(t *testing.T) {
	body, secrets := served(t)
	_, samples := parseScrape(t, body)
	value := func(series string) (float64, bool) {
		for _, s := range samples {
			if s.series == series {
				return s.value, true
			}
		}
		return 0, false
	}
	sum := func(series ...string) float64 {
		var total float64
		for _, s := range series {
			v, ok := value(s)
			if !ok {
				t.Errorf("/metrics has no %s", s)
			}
			total += v
		}
		return total
	}
	for _, c := range []struct {
		what   string
		series []string
	}{
		{"PostgreSQL pool connections", []string{`tollgate_db_pool_connections{state="in_use"}`, `tollgate_db_pool_connections{state="idle"}`}},
		{"Redis pool connections", []string{`tollgate_redis_pool_connections{state="in_use"}`, `tollgate_redis_pool_connections{state="idle"}`}},
		{"Redis pool gets", []string{`tollgate_redis_pool_hits_total`, `tollgate_redis_pool_misses_total`}},
		// The unknown client: read from the database once, then from the
		// cache (a not-found answer is cached too).
		{"cache misses", []string{`tollgate_cache_lookups_total{result="miss"}`}},
		{"cache hits", []string{`tollgate_cache_lookups_total{result="hit"}`}},
		{"cache entries", []string{`tollgate_cache_entries`}},
		{"readiness", []string{`tollgate_ready`}},
		{"database up", []string{`tollgate_dependency_up{dependency="database"}`}},
		{"tokens up", []string{`tollgate_dependency_up{dependency="tokens"}`}},
	} {
		if got := sum(c.series...); got <= 0 {
			t.Errorf("%s: %v = %v, want > 0 after use", c.what, c.series, got)
		}
	}
	if v, _ := value(`tollgate_ready`); v != 1 {
		t.Errorf("tollgate_ready = %v, want 1", v)
	}
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("/metrics carries a secret or URL it was given (%d bytes)", len(s))
		}
	}
}

// grafanaDashboard is the part of a Grafana dashboard these tests read.
type grafanaDashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // of a collapsed row
}

func readDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("parse %s: %v", dashboardFile, err)
	}
	return d
}

// graphs returns the panels of d that draw queries, rows' panels included.
func (d grafanaDashboard) graphs() []grafanaPanel {
	var out []grafanaPanel
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// alertRules is the part of a Prometheus rule file these tests read.
type alertRules struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

var (
	promqlString     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers   = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	promqlGrouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlIdentifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	// Operators, modifiers and aggregations (which may be followed by a
	// grouping clause rather than their parenthesis).
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2",
		"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group", "limitk"}
	labelValuesQuery = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// metricNames returns the metric names a PromQL expression reads: what is
// left once strings, label matchers, ranges, grouping clauses, function
// names, keywords and numbers are taken out.
func metricNames(expr string) []string {
	expr = promqlString.ReplaceAllString(expr, `""`)
	expr = promqlMatchers.ReplaceAllString(expr, " ")
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, m := range promqlIdentifier.FindAllStringSubmatchIndex(expr, -1) {
		if m[2] >= 0 { // a function call
			continue
		}
		// An identifier glued to a digit before it is a number's tail
		// (1e3) or a duration's unit.
		if m[0] > 0 && strings.ContainsAny(expr[m[0]-1:m[0]], "0123456789.") {
			continue
		}
		name := expr[m[0]:m[1]]
		if slices.Contains(promqlKeywords, strings.ToLower(name)) {
			continue
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ expr, want string }{
		{`rate(a_total{x="y", z=~"$instance"}[5m])`, "a_total"},
		{`sum by (instance, le) (rate(b_bucket{j="a b"}[$__rate_interval])) / ignoring (state) c > 0.5`, "b_bucket c"},
		{`histogram_quantile(0.99, sum without (x) (d)) and on (instance) e offset 5m > bool 1e3`, "d e"},
		{`max by (instance) (f) / count(g)`, "f g"},
		{`changes(up[15m]) >= 4`, "up"},
	} {
		if got := strings.Join(metricNames(c.expr), " "); got != c.want {
			t.Errorf("metricNames(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}

// dashboardAndAlertQueries returns every PromQL expression of the dashboard
// and of the alert rules, by where it is, and the metrics the dashboard's
// template variables read.
func dashboardAndAlertQueries(t *testing.T) (exprs map[string]string, variableMetrics map[string]string) {
	t.Helper()
	exprs, variableMetrics = map[string]string{}, map[string]string{}
	d := readDashboard(t)
	for _, p := range d.graphs() {
		for i, target := range p.Targets {
			exprs[fmt.Sprintf("dashboard panel %q, query %d", p.Title, i)] = target.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// A query is a string, or an object with a query string.
		query, _ := v.Query.(string)
		if q, ok := v.Query.(map[string]any); ok {
			query, _ = q["query"].(string)
		}
		m := labelValuesQuery.FindStringSubmatch(query)
		if m == nil {
			t.Errorf("dashboard variable %s: query %q is not label_values(metric…, label)", v.Name, query)
			continue
		}
		variableMetrics["dashboard variable "+v.Name] = m[1]
	}
	var rules alertRules
	readYAML(t, alertsFile, &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	return exprs, variableMetrics
}

// TestDashboardAndAlertsReadExportedMetrics: every metric the dashboard and
// the alert rules read is one a running Tollgate (on PostgreSQL and Redis)
// exports, so that a renamed metric cannot leave a panel or an alert
// silently empty.
func TestDashboardAndAlertsReadExportedMetrics(t *testing.T) {
	body, _ := served(t)
	types, _ := parseScrape(t, body)
	exported := func(name string) bool {
		if _, ok := types[name]; ok {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && (types[base] == "histogram" || types[base] == "summary") {
				return true
			}
		}
		return false
	}
	exprs, variables := dashboardAndAlertQueries(t)
	if len(exprs) < 20 {
		t.Fatalf("found %d queries in the dashboard and the alert rules, want at least 20", len(exprs))
	}
	read := map[string]bool{}
	for _, where := range slices.Sorted(maps.Keys(exprs)) {
		names := metricNames(exprs[where])
		if len(names) == 0 {
			t.Errorf("%s reads no metric: %q", where, exprs[where])
		}
		for _, name := range names {
			read[name] = true
			if !exported(name) {
				t.Errorf("%s reads %s, which a running Tollgate does not export", where, name)
			}
		}
	}
	for where, name := range variables {
		if !exported(name) {
			t.Errorf("%s reads %s, which a running Tollgate does not export", where, name)
		}
	}
	// The metrics the dashboard needs: one panel at least reads each.
	for _, name := range []string{
		"tollgate_http_requests_total", "tollgate_http_request_duration_seconds_bucket",
		"tollgate_ratelimit_decisions_total", "tollgate_bruteforce_blocks_total",
		"tollgate_db_pool_connections", "tollgate_db_pool_max_connections", "tollgate_redis_pool_connections",
		"tollgate_redis_pool_timeouts_total", "tollgate_cache_lookups_total", "tollgate_dependency_up", "tollgate_ready",
	} {
		if !read[name] {
			t.Errorf("neither the dashboard nor the alert rules read %s", name)
		}
	}
}

var selector = regexp.MustCompile(`\{[^{}]*\}`)

// TestDashboardIsPerInstance: every panel queries the data source of the
// dashboard's variable, and every series it selects is filtered by the job
// and instance variables.
func TestDashboardIsPerInstance(t *testing.T) {
	t.Parallel()
	d := readDashboard(t)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for name, typ := range map[string]string{"datasource": "datasource", "job": "query", "instance": "query"} {
		if vars[name] != typ {
			t.Errorf("dashboard variable %s is of type %q, want %q", name, vars[name], typ)
		}
	}
	graphs := d.graphs()
	if len(graphs) < 12 {
		t.Fatalf("dashboard has %d panels, want at least 12", len(graphs))
	}
	for _, p := range graphs {
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			selectors := selector.FindAllString(target.Expr, -1)
			if len(selectors) == 0 {
				t.Errorf("panel %q: query %q selects no series by label", p.Title, target.Expr)
			}
			for _, sel := range selectors {
				if !strings.Contains(sel, `job=~"$job", instance=~"$instance"`) {
					t.Errorf("panel %q: selector %s does not filter by $job and $instance", p.Title, sel)
				}
			}
		}
	}
}

// TestDashboardQueriesParse gives every dashboard query, Grafana's
// variables replaced, to Prometheus's own parser (promtool check rules, as
// recording rules).
func TestDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	promtool := needPromtool(t)
	exprs, _ := dashboardAndAlertQueries(t)
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$job", ".+", "$instance", ".+")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, where := range slices.Sorted(maps.Keys(exprs)) {
		if strings.HasPrefix(where, "dashboard ") {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: grafana.Replace(exprs[where])})
		}
	}
	file := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	data, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(t.Context(), promtool, "check", "rules", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out.String())
	}
}

func needPromtool(t *testing.T) string {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found (CI=true, not skipping): %v", err)
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	return promtool
}

// markdownAnchor is GitHub's anchor of a heading.
func markdownAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestAlertRulesAreComplete: every alert has a severity, a summary, a
// description and a runbook that is a section of docs/operations.md, and a
// unit test in alerts_test.yml that expects it to fire and one that
// expects it quiet.
func TestAlertRulesAreComplete(t *testing.T) {
	t.Parallel()
	var rules alertRules
	readYAML(t, alertsFile, &rules)
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for line := range strings.Lines(string(doc)) {
		if strings.HasPrefix(line, "#") {
			anchors[markdownAnchor(strings.TrimLeft(line, "#"))] = true
		}
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, alertTestsFile, &tests)
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	const runbookPrefix = "https://github.com/tollgate/tollgate/blob/main/docs/operations.md#"
	var n int
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s has no %s", r.Alert, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookPrefix)
			if !ok || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q is not a section of docs/operations.md", r.Alert, r.Annotations["runbook_url"])
			}
			if !firing[r.Alert] {
				t.Errorf("alert %s: no test in alerts_test.yml expects it to fire", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("alert %s: no test in alerts_test.yml expects it quiet", r.Alert)
			}
		}
	}
	if n < 6 {
		t.Errorf("alerts.yml has %d rules, want at least 6", n)
	}
}
