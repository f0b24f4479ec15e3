package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// webhookInput is the body of a new webhook or of a change (absent
// members are unchanged).
type webhookInput struct {
	AccountID      *int64   `json:"account_id"`
	URL            *string  `json:"url"`
	Events         []string `json:"events"`
	Description    *string  `json:"description"`
	IncludeSubtree *bool    `json:"include_subtree"`
	Enabled        *bool    `json:"enabled"`
}

func (in webhookInput) domain() manage.WebhookInput {
	return manage.WebhookInput{AccountID: in.AccountID, URL: in.URL, Events: in.Events, Description: in.Description,
		IncludeSubtree: in.IncludeSubtree, Enabled: in.Enabled}
}

// webhookView is a webhook as the API shows it: its secret only in the
// answer that made it (creation, rotation).
type webhookView struct {
	ID             int64     `json:"id"`
	AccountID      int64     `json:"account_id"`
	URL            string    `json:"url"`
	Events         []string  `json:"events"`
	Description    string    `json:"description"`
	IncludeSubtree bool      `json:"include_subtree"`
	Enabled        bool      `json:"enabled"`
	CreatedBy      *int64    `json:"created_by"`
	Version        int64     `json:"version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Secret         string    `json:"secret,omitempty"`
}

func viewWebhook(h storage.Webhook) webhookView {
	v := webhookView{ID: h.ID, AccountID: h.AccountID, URL: h.URL, Events: nonNil(h.Events), Description: h.Description,
		IncludeSubtree: h.IncludeSubtree, Enabled: h.Enabled, Version: h.Version, CreatedAt: h.CreatedAt.UTC(), UpdatedAt: h.UpdatedAt.UTC()}
	if h.CreatedBy != 0 {
		v.CreatedBy = &h.CreatedBy
	}
	return v
}

// deliveryView is an entry of the delivery log: never the secret, the
// payload or the receiver's answer beyond its status.
type deliveryView struct {
	ID            int64      `json:"id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastStatus    *int       `json:"last_status_code"`
	LastError     string     `json:"last_error,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	CreatedAt     time.Time  `json:"created_at"`
}

func viewDelivery(d storage.WebhookDelivery) deliveryView {
	v := deliveryView{ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status, Attempts: d.Attempts,
		LastError: d.LastError, NextAttemptAt: optTime(d.NextAttemptAt), DeliveredAt: optTime(d.DeliveredAt), CreatedAt: d.CreatedAt.UTC()}
	if d.LastStatus != 0 {
		v.LastStatus = &d.LastStatus
	}
	if d.Status != storage.DeliveryPending {
		v.NextAttemptAt = nil
	}
	return v
}

func (a *API) webhookRoutes() {
	const path = "/webhooks"
	const one = path + "/{id:[0-9]+}"
	a.handle(http.MethodPost, path, a.createWebhook)
	a.handle(http.MethodGet, path, a.listWebhooks)
	a.handle(http.MethodGet, one, a.getWebhook)
	a.handle(http.MethodPatch, one, a.updateWebhook)
	a.handle(http.MethodDelete, one, a.deleteWebhook)
	a.handle(http.MethodPost, one+"/rotate", a.rotateWebhook)
	a.handle(http.MethodPost, one+"/test", a.testWebhook)
	a.handle(http.MethodGet, one+"/deliveries", a.listDeliveries)
}

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	var in webhookInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	h, secret, err := a.opts.Service.CreateWebhook(r.Context(), act, in.domain())
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	v := viewWebhook(h)
	v.Secret = secret
	w.Header().Set("Location", Prefix+"/webhooks/"+strconv.FormatInt(h.ID, 10))
	w.Header().Set("ETag", etag(h.Version))
	writeJSON(w, http.StatusCreated, v)
}

// listWebhooks serves GET /webhooks: the webhooks of an account's subtree
// (the caller's account by default), in id order.
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	after, limit, pr := page(r, "account_id")
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	accountID, _, pr := accountFilter(r, act)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	hooks, err := a.opts.Service.ListWebhooks(r.Context(), act, accountID, storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	views := make([]webhookView, len(hooks))
	for i, h := range hooks {
		views[i] = viewWebhook(h)
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v webhookView) int64 { return v.ID }))
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	h, err := a.opts.Service.GetWebhook(r.Context(), act, pathID(r))
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("ETag", etag(h.Version))
	writeJSON(w, http.StatusOK, viewWebhook(h))
}

func (a *API) updateWebhook(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	var in webhookInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	h, err := a.opts.Service.UpdateWebhook(r.Context(), act, pathID(r), want, in.domain())
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("ETag", etag(h.Version))
	writeJSON(w, http.StatusOK, viewWebhook(h))
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	if err := a.opts.Service.DeleteWebhook(r.Context(), act, pathID(r), want); err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateWebhook gives the webhook a new secret, answered once; the old
// one stops signing at once. It takes no body.
func (a *API) rotateWebhook(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	if pr := noBody(r, a.opts.MaxBodyBytes); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	h, secret, err := a.opts.Service.RotateWebhookSecret(r.Context(), act, pathID(r), want)
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	v := viewWebhook(h)
	v.Secret = secret
	w.Header().Set("ETag", etag(h.Version))
	writeJSON(w, http.StatusOK, v)
}

// testWebhook queues a webhook.test event and answers its delivery (202:
// it is sent in the background, like every event).
func (a *API) testWebhook(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	if pr := noBody(r, a.opts.MaxBodyBytes); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	d, err := a.opts.Service.TestWebhook(r.Context(), act, pathID(r))
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	writeJSON(w, http.StatusAccepted, viewDelivery(d))
}

// listDeliveries serves the delivery log of a webhook, newest first.
func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	after, limit, pr := page(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	ds, err := a.opts.Service.ListWebhookDeliveries(r.Context(), act, pathID(r), storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	views := make([]deliveryView, len(ds))
	for i, d := range ds {
		views[i] = viewDelivery(d)
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v deliveryView) int64 { return v.ID }))
}

// noBody accepts an empty body or an empty JSON object, strictly.
func noBody(r *http.Request, max int64) *problem {
	if r.ContentLength == 0 {
		return nil
	}
	var in struct{}
	return decode(r, max, &in)
}
