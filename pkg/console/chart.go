package console

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/usage"
	"github.com/tollgate/tollgate/storage"
)

// usageRange is one choice of the range picker.
type usageRange struct {
	Key         string // the ?range= value
	Label       string
	Granularity storage.Granularity
	Step        time.Duration
	Buckets     int
}

// usageRanges are the ranges a usage page offers; the first is the
// default.
var usageRanges = []usageRange{
	{Key: "24h", Label: "Last 24 hours", Granularity: storage.GranularityHour, Step: time.Hour, Buckets: 24},
	{Key: "7d", Label: "Last 7 days", Granularity: storage.GranularityDay, Step: 24 * time.Hour, Buckets: 7},
	{Key: "30d", Label: "Last 30 days", Granularity: storage.GranularityDay, Step: 24 * time.Hour, Buckets: 30},
}

// pickRange returns the range ?range= names, the default for anything
// else.
func pickRange(r *http.Request) usageRange {
	want := r.URL.Query().Get("range")
	for _, u := range usageRanges {
		if u.Key == want {
			return u
		}
	}
	return usageRanges[0]
}

// Chart geometry, in viewBox units: the SVG scales to its container's
// width (a phone's included) and keeps its aspect ratio.
const (
	chartWidth  = 720
	chartHeight = 260
	plotLeft    = 56 // room for the counts of the y axis
	plotRight   = 8
	plotTop     = 12
	plotBottom  = 32 // room for the time labels
)

// chartSegment is one outcome's part of a bar.
type chartSegment struct {
	Outcome string
	Count   int64
	Y, H    float64
}

// chartBar is one bucket.
type chartBar struct {
	Label    string // the bucket's time, for the tooltip and the table
	X, W     float64
	Total    int64
	Segments []chartSegment // bottom to top, in usage.Outcomes order
}

// chartTick is a labelled line of an axis.
type chartTick struct {
	Label string
	X, Y  float64
}

// chartRow is a row of the table beside the chart: the same numbers.
type chartRow struct {
	Label  string
	Counts []int64 // in usage.Outcomes order
	Total  int64
}

// usageChart is a stacked bar chart of calls per bucket and outcome,
// drawn on the server as SVG.
type usageChart struct {
	ViewBox                                  string
	Width, Height                            int
	PlotLeft, PlotTop, PlotRight, PlotBottom float64
	Bars                                     []chartBar
	YTicks                                   []chartTick
	XTicks                                   []chartTick
	Outcomes                                 []string
	Rows                                     []chartRow
	Max, Total                               int64
	Range                                    usageRange
	Ranges                                   []usageRange
	// Partial: the minutes not rolled up yet could not be read, so the
	// last bar lacks them.
	Partial bool
}

// buildChart lays out rows (of any credentials and classes) in n buckets
// of step ending with the one holding end.
func buildChart(rows []storage.UsageRow, end time.Time, rng usageRange) usageChart {
	step, n := rng.Step, rng.Buckets
	last := end.UTC().Truncate(step)
	first := last.Add(-time.Duration(n-1) * step)
	counts := make([][]int64, n)
	for i := range counts {
		counts[i] = make([]int64, len(usage.Outcomes))
	}
	outcomeIndex := map[string]int{}
	for i, o := range usage.Outcomes {
		outcomeIndex[o] = i
	}
	for _, r := range rows {
		i := int(r.Time.UTC().Sub(first) / step)
		o, ok := outcomeIndex[r.Outcome]
		if i < 0 || i >= n || !ok {
			continue
		}
		counts[i][o] += r.Count
	}
	c := usageChart{ViewBox: fmt.Sprintf("0 0 %d %d", chartWidth, chartHeight), Width: chartWidth, Height: chartHeight,
		PlotLeft: plotLeft, PlotTop: plotTop, PlotRight: chartWidth - plotRight, PlotBottom: chartHeight - plotBottom,
		Outcomes: usage.Outcomes, Range: rng, Ranges: usageRanges}
	for i := range n {
		var total int64
		for _, v := range counts[i] {
			total += v
		}
		c.Max = max(c.Max, total)
		c.Total += total
	}
	top := niceCeil(c.Max)
	plotW := float64(chartWidth - plotLeft - plotRight)
	plotH := float64(chartHeight - plotTop - plotBottom)
	slot := plotW / float64(n)
	gap := slot * 0.2
	for i := range n {
		t := first.Add(time.Duration(i) * step)
		label := bucketLabel(t, step)
		bar := chartBar{Label: label, X: plotLeft + float64(i)*slot + gap/2, W: slot - gap}
		y := float64(chartHeight - plotBottom)
		for o, v := range counts[i] {
			bar.Total += v
			if v == 0 {
				continue
			}
			h := plotH * float64(v) / float64(top)
			y -= h
			bar.Segments = append(bar.Segments, chartSegment{Outcome: usage.Outcomes[o], Count: v, Y: y, H: h})
		}
		c.Bars = append(c.Bars, bar)
		c.Rows = append(c.Rows, chartRow{Label: label, Counts: counts[i], Total: bar.Total})
		// A time label every few bars, so that they never overlap.
		if every := max(1, n/6); i%every == 0 {
			c.XTicks = append(c.XTicks, chartTick{Label: shortLabel(t, step), X: bar.X + bar.W/2, Y: float64(chartHeight - plotBottom + 18)})
		}
	}
	for k := range 5 {
		v := top * int64(k) / 4
		c.YTicks = append(c.YTicks, chartTick{Label: strconv.FormatInt(v, 10), X: plotLeft - 6, Y: float64(chartHeight-plotBottom) - plotH*float64(k)/4})
	}
	return c
}

// niceCeil returns the top of the y axis for a largest bar of v: four
// steps of 1, 2 or 5 times a power of ten, the smallest reaching v.
func niceCeil(v int64) int64 {
	need := max(1, (v+3)/4)
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= need {
				return 4 * m * p
			}
		}
	}
}

func bucketLabel(t time.Time, step time.Duration) string {
	if step < 24*time.Hour {
		return t.Format("2006-01-02 15:04 UTC")
	}
	return t.Format("2006-01-02")
}

func shortLabel(t time.Time, step time.Duration) string {
	if step < 24*time.Hour {
		return t.Format("15:04")
	}
	return t.Format("Jan 2")
}

// usagePage is a usage page: whose, the chart and the table.
type usagePage struct {
	Heading  string
	Back     string // the page it belongs to
	BackText string
	Base     string // the page's path, for the range links
	Chart    usageChart
}

// readUsage reads the usage q selects over rng ending now and lays it out.
func (c *Console) readUsage(r *http.Request, st *state, q manage.UsageQuery, rng usageRange) (usageChart, error) {
	now := c.opts.Now().UTC()
	q.Granularity = rng.Granularity
	q.To = now.Truncate(rng.Step).Add(rng.Step)
	q.From = q.To.Add(-time.Duration(rng.Buckets) * rng.Step)
	rep, err := c.opts.Service.Usage(r.Context(), st.act, q)
	if err != nil {
		return usageChart{}, err
	}
	chart := buildChart(rep.Rows, now, rng)
	chart.Partial = rep.Partial
	return chart, nil
}

// showCredentialUsage serves a credential's usage page.
func (c *Console) showCredentialUsage(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	cl, ok := c.loadCredential(w, r, st, k)
	if !ok {
		return
	}
	rng := pickRange(r)
	chart, err := c.readUsage(r, st, manage.UsageQuery{CredentialID: cl.ID}, rng)
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	base := fmt.Sprintf("%s/%d", k.Path, cl.ID)
	c.render(w, r, st, http.StatusOK, "usage", view{Title: "Usage of " + cl.Name, Nav: k.Nav, Page: usagePage{
		Heading: "Usage of " + cl.Name, Back: base, BackText: cl.Name, Base: base + "/usage", Chart: chart}})
}

// showAccountUsage serves the usage of the current account's subtree.
func (c *Console) showAccountUsage(w http.ResponseWriter, r *http.Request, st *state) {
	rng := pickRange(r)
	chart, err := c.readUsage(r, st, manage.UsageQuery{AccountID: st.account.ID}, rng)
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	c.render(w, r, st, http.StatusOK, "usage", view{Title: "Usage", Nav: "usage", Page: usagePage{
		Heading: "Usage of " + st.account.Name + " and its sub-accounts", Back: "/console/settings", BackText: "Account settings",
		Base: "/console/usage", Chart: chart}})
}
