package admin

import (
	"net/http"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// auditView is an audit event as the API shows it.
type auditView struct {
	ID            int64     `json:"id"`
	Time          time.Time `json:"time"`
	AccountID     int64     `json:"account_id"`
	ActorUserID   int64     `json:"actor_user_id,omitempty"`
	ActorClientID int64     `json:"actor_client_id,omitempty"`
	Action        string    `json:"action"`
	TargetType    string    `json:"target_type"`
	TargetID      int64     `json:"target_id"`
	RemoteAddr    string    `json:"remote_addr,omitempty"`
	Outcome       string    `json:"outcome"`
	Detail        string    `json:"detail,omitempty"`
}

func viewAudit(e storage.AuditEvent) auditView {
	return auditView{
		ID: e.ID, Time: e.Time, AccountID: e.AccountID, ActorUserID: e.ActorUserID, ActorClientID: e.ActorClientID,
		Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID, RemoteAddr: e.RemoteAddr,
		Outcome: e.Outcome, Detail: e.Detail,
	}
}

func (a *API) auditRoutes() {
	a.handle(http.MethodGet, "/audit", a.listAudit)
}

// listAudit serves GET /audit: the events of an account's subtree, newest
// first; next is the last id of the page, to pass as ?after=.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request, act manage.Actor) {
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
	events, err := a.opts.Service.ListAudit(r.Context(), act, accountID, storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	views := make([]auditView, len(events))
	for i, e := range events {
		views[i] = viewAudit(e)
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v auditView) int64 { return v.ID }))
}
