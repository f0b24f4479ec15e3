package admin

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// usageView is one usage row as the API shows it.
type usageView struct {
	Time         time.Time `json:"time"`
	CredentialID int64     `json:"credential_id"`
	RateClass    string    `json:"rate_class"`
	Outcome      string    `json:"outcome"`
	Count        int64     `json:"count"`
}

// usageParams are the query parameters of GET /usage.
var usageParams = []string{"account_id", "credential_id", "from", "granularity", "to"}

func (a *API) usageRoutes() {
	a.handle(http.MethodGet, "/usage", a.getUsage)
}

// getUsage serves GET /usage: the usage of one credential or of an
// account's subtree up to the current minute, oldest bucket first; partial
// when the minutes not rolled up yet could not be read.
func (a *API) getUsage(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	q, pr := usageQuery(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	rep, err := a.opts.Service.Usage(r.Context(), act, q)
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	views := make([]usageView, len(rep.Rows))
	for i, u := range rep.Rows {
		views[i] = usageView{Time: u.Time.UTC(), CredentialID: u.CredentialID, RateClass: u.Class, Outcome: u.Outcome, Count: u.Count}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": views, "partial": rep.Partial})
}

// usageQuery reads GET /usage's parameters: ids are positive integers,
// times RFC 3339 with a zone, the granularity minute, hour or day.
func usageQuery(r *http.Request) (manage.UsageQuery, *problem) {
	q := r.URL.Query()
	var errs []fieldError
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(usageParams, name) {
			errs = append(errs, fieldError{Field: name, Detail: "is not a parameter of usage (it takes " + strings.Join(usageParams, ", ") + ")"})
		}
	}
	var out manage.UsageQuery
	id := func(name string, dst *int64) {
		raw := q.Get(name)
		if raw == "" {
			return
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, fieldError{Field: name, Detail: "must be a positive integer"})
			return
		}
		*dst = n
	}
	id("credential_id", &out.CredentialID)
	id("account_id", &out.AccountID)
	at := func(name string, dst *time.Time) {
		raw := q.Get(name)
		if raw == "" {
			return
		}
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil || t.Year() < 1970 || t.Year() > 9999 {
			errs = append(errs, fieldError{Field: name, Detail: "must be an RFC 3339 time, such as 2026-01-02T15:04:05Z"})
			return
		}
		*dst = t
	}
	at("from", &out.From)
	at("to", &out.To)
	if raw := q.Get("granularity"); raw != "" {
		g := storage.Granularity(raw)
		if !g.Valid() {
			errs = append(errs, fieldError{Field: "granularity", Detail: "must be minute, hour or day"})
		}
		out.Granularity = g
	}
	if errs != nil {
		p := badRequest("Invalid usage query.", errs...)
		return manage.UsageQuery{}, &p
	}
	return out, nil
}
