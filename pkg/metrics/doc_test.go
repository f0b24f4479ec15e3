package metrics_test

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/metrics"
)

// documentedMetric is a row of the metrics table of docs/operations.md.
var documentedMetric = regexp.MustCompile("(?m)^\\| `(tollgate_[a-z_]+)` \\|")

// TestOperationsDocListsEveryMetric keeps docs/operations.md in step with
// the registry: every tollgate_ metric is documented, and every documented
// one exists.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatalf("read docs/operations.md: %v", err)
	}
	var documented []string
	for _, m := range documentedMetric.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	registered := metrics.New("test").OwnNames()
	slices.Sort(documented)
	slices.Sort(registered)
	if len(registered) == 0 {
		t.Fatal("the registry has no tollgate_ metric")
	}
	for _, name := range registered {
		if !slices.Contains(documented, name) {
			t.Errorf("metric %s is registered but not in docs/operations.md's table", name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(registered, name) {
			t.Errorf("docs/operations.md lists %s, which is not registered", name)
		}
	}
}

// TestScrapePassesPromtool runs Prometheus's own linter on a scrape with
// every tollgate_ metric recorded. promtool comes with Debian's prometheus
// package; CI installs it, so under CI=true its absence fails the test.
func TestScrapePassesPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found (CI=true, not skipping): %v", err)
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	p := metrics.New("test")
	p.ObserveRequest("check", "", "rate_limited", time.Millisecond)
	p.RateLimited("default", false)
	p.BruteForceBlocked("client", "id")
	p.WebhookDelivery("delivered", "", time.Millisecond)
	watchAll(p)
	body := scrape(t, p)
	for _, name := range p.OwnNames() {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("scrape has no sample of %s", name)
		}
	}
	cmd := exec.CommandContext(t.Context(), promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}
