package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
	sqlstore "github.com/tollgate/tollgate/storage/sql"
)

// seedUsage writes 30 days of a credential's usage into the database at
// dbURL, as the roll-up would have: every hour of the last day, every six
// hours before, a daily wave of allowed calls with some refused ones.
func seedUsage(t *testing.T, dbURL string, account, credential int64, now time.Time) {
	t.Helper()
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	last := now.UTC().Truncate(time.Hour).Add(-time.Hour)
	for h := 30 * 24; h >= 0; h-- {
		hour := last.Add(-time.Duration(h) * time.Hour)
		if h > 24 && hour.Hour()%6 != 0 {
			continue
		}
		wave := int64(40 + 30*((hour.Hour()+hour.Day())%7))
		row := func(outcome string, n int64) storage.UsageRow {
			return storage.UsageRow{RootID: account, AccountID: account, CredentialID: credential, Class: "default", Outcome: outcome, Count: n}
		}
		rows := []storage.UsageRow{row(usage.OutcomeAllowed, wave)}
		if hour.Hour()%3 == 0 {
			rows = append(rows, row(usage.OutcomeRateLimited, wave/4))
		}
		if hour.Hour()%8 == 1 {
			rows = append(rows, row(usage.OutcomeUnauthorized, 6))
		}
		if hour.Hour()%11 == 2 {
			rows = append(rows, row(usage.OutcomeForbidden, 9))
		}
		if err := db.WriteUsageMinute(ctx, hour.Add(7*time.Minute), rows); err != nil {
			t.Fatal(err)
		}
	}
}

// A credential's usage page in the real browser: the SVG has its bars,
// the table its 24 rows, the range links switch to days, and on a phone
// the page is no wider than the screen. The embedded run's screenshots are
// the documentation's.
func TestConsoleUsageInBrowser(t *testing.T) {
	chromiumPath(t)
	shots := os.Getenv("TOLLGATE_SCREENSHOTS")
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := t.TempDir()
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":         dataDir,
		"TOLLGATE_HTTP_ADDR":        "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":         "127.0.0.1:0",
		"TOLLGATE_LOG_LEVEL":        "warn",
		config.BootstrapPasswordEnv: e2ePassword,
		"TOLLGATE_CONSOLE_ENABLED":  "true",
	}
	out, err := runCommand(t, vars, "bootstrap", "--migrate")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	var boot bootstrapResult
	if err := json.Unmarshal([]byte(out), &boot); err != nil {
		t.Fatalf("bootstrap printed %q: %v", out, err)
	}
	seedUsage(t, filepath.Join(dataDir, "tollgate.db"), boot.AccountID, boot.ClientID, time.Now())
	addr, _, _ := runServe(t, vars)
	c := newChrome(t, "http://"+addr, shots)
	c.open("/console", "#username")
	c.do(chromedp.SendKeys(chromedp.ID("username"), boot.Username), chromedp.SendKeys(chromedp.ID("password"), e2ePassword),
		chromedp.SendKeys(chromedp.ID("password"), kb.Enter), chromedp.WaitVisible(chromedp.ID("add")))

	page := "/console/clients/" + strconv.FormatInt(boot.ClientID, 10)
	c.do(chromedp.EmulateViewport(1280, 900))
	c.open(page, "#usage-link")
	c.do(chromedp.Click(chromedp.ID("usage-link")), chromedp.WaitVisible(chromedp.ID("usage-chart")))
	c.arrive(page + "/usage")
	if n := runIn(c, chromedp.Evaluate[int](`document.querySelectorAll('#usage-chart .bars rect').length`)); n < 24 {
		t.Errorf("24 hours drawn with %d rects, want at least one per hour", n)
	}
	if n := runIn(c, chromedp.Evaluate[int](`document.querySelectorAll('#usage-table tbody tr').length`)); n != 24 {
		t.Errorf("the table has %d rows, want 24", n)
	}
	// The bars have the stylesheet's colours: the CSP let it apply.
	if fill := runIn(c, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#usage-chart rect.o-allowed')).fill`)); fill != "rgb(46, 125, 50)" {
		t.Errorf("an allowed bar's fill = %q, want the stylesheet's green", fill)
	}
	// Every bar's count is in the table's row of its hour.
	if bad := runIn(c, chromedp.Evaluate[string](`(() => {
		const rows = [...document.querySelectorAll('#usage-table tbody tr')];
		const bars = [...document.querySelectorAll('#usage-chart .bars .bar')];
		for (let i = 0; i < bars.length; i++) {
			const total = rows[i].lastElementChild.textContent;
			if (bars[i].dataset.total !== total) return 'bar ' + i + ': ' + bars[i].dataset.total + ' vs ' + total;
		}
		return '';
	})()`)); bad != "" {
		t.Error(bad)
	}
	c.shot("console-usage")
	c.do(chromedp.Click(chromedp.CSS(`.ranges a[href$="range=30d"]`)), chromedp.WaitVisible(chromedp.ID("usage-chart")))
	if n := runIn(c, chromedp.Evaluate[int](`document.querySelectorAll('#usage-table tbody tr').length`)); n != 30 {
		t.Errorf("30 days: the table has %d rows, want 30", n)
	}
	c.shot("console-usage-30d")

	c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	c.open(page+"/usage?range=7d", "#usage-chart")
	if w := runIn(c, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 400 {
		t.Errorf("the usage page is %dpx wide on a 390px phone", w)
	}
	if w := runIn(c, chromedp.Evaluate[float64](`document.getElementById('usage-chart').getBoundingClientRect().width`)); w > 390 || w < 250 {
		t.Errorf("the chart is %vpx wide on a 390px phone", w)
	}
	c.shot("console-usage-phone")
}
