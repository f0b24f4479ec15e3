package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Usage granularities.
const (
	GranularityMinute = "minute"
	GranularityHour   = "hour"
	GranularityDay    = "day"
)

// UsageItem is how many calls one credential made in one bucket (a UTC
// minute, hour or day starting at Time), in one rate class, ending with one
// outcome (allowed, rate_limited, quota_exceeded, unauthorized, forbidden).
type UsageItem struct {
	Time         time.Time `json:"time"`
	CredentialID int64     `json:"credential_id"`
	RateClass    string    `json:"rate_class"`
	Outcome      string    `json:"outcome"`
	Count        int64     `json:"count"`
}

// UsageQuery selects usage: of CredentialID, or of AccountID's subtree
// (exactly one), in buckets of Granularity (hour when empty) overlapping
// [From, To) (zero: the server's defaults, the last hour, 24 hours or 30
// days before now).
type UsageQuery struct {
	CredentialID int64
	AccountID    int64
	Granularity  string
	From, To     time.Time
}

// Usage is the answer of GetUsage.
type Usage struct {
	Items []UsageItem `json:"items"`
	// Partial: the minutes not rolled up yet could not be read (Redis
	// unreachable); Items hold the rolled-up minutes only.
	Partial bool            `json:"partial"`
	Raw     json.RawMessage `json:"-"`
}

// GetUsage reads the usage q selects, oldest bucket first.
func (c *Client) GetUsage(ctx context.Context, q UsageQuery) (*Usage, error) {
	v := url.Values{}
	setInt(v, "credential_id", q.CredentialID)
	setInt(v, "account_id", q.AccountID)
	if q.Granularity != "" {
		v.Set("granularity", q.Granularity)
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339))
	}
	a, err := c.do(ctx, call{method: http.MethodGet, path: "/usage", query: v})
	if err != nil {
		return nil, err
	}
	u := &Usage{Raw: a.body}
	if err := a.into(u); err != nil {
		return nil, err
	}
	return u, nil
}
