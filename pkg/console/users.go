package console

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// userRow is a user as the pages show them.
type userRow struct {
	ID        int64
	Username  string
	Admin     bool
	Active    bool
	Self      bool
	CreatedAt time.Time
	Version   int64
}

func toUserRow(u storage.User, self int64) userRow {
	return userRow{ID: u.ID, Username: u.Username, Admin: u.Role == storage.RoleAdmin, Active: u.Status == storage.StatusActive,
		Self: u.ID == self, CreatedAt: u.CreatedAt, Version: u.Version}
}

// usersPage lists the users of the account the console shows.
type usersPage struct {
	Rows  []userRow
	Next  int64
	Paged bool
	Query string // the search (?q=); "" for none
}

func (c *Console) listUsers(w http.ResponseWriter, r *http.Request, st *state) {
	c.renderUsers(w, r, st, http.StatusOK, nil)
}

func (c *Console) renderUsers(w http.ResponseWriter, r *http.Request, st *state, status int, errs formErrors) {
	after := pageAfter(r)
	users, err := c.opts.Service.ListUsers(r.Context(), st.act, storage.UserFilter{AccountID: st.account.ID, Name: search(r)},
		storage.Page{After: after, Limit: pageSize})
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	p := usersPage{Paged: after > 0, Query: search(r)}
	for _, u := range users {
		p.Rows = append(p.Rows, toUserRow(u, st.user.ID))
	}
	if len(users) == pageSize {
		p.Next = users[len(users)-1].ID
	}
	c.render(w, r, st, status, "users", view{Title: "Users", Nav: "users", Notice: notice(r), Errors: errs, Page: p})
}

// userForm adds a user.
type userForm struct {
	Username string
	Role     string
}

var userLabels = map[string]string{"username": "Username", "password": "Password", "role": "Role"}

func (c *Console) newUser(w http.ResponseWriter, r *http.Request, st *state) {
	if !st.act.Admin() {
		c.failure(w, r, st, forbidden)
		return
	}
	c.render(w, r, st, http.StatusOK, "user", view{Title: "Add a user", Nav: "users", Page: userForm{Role: string(storage.RoleMember)}})
}

// forbidden is the service layer's refusal of a member, for pages that
// only make sense to admins.
var forbidden = refusalError{status: http.StatusForbidden}

type refusalError struct{ status int }

func (e refusalError) Error() string { return http.StatusText(e.status) }

func (c *Console) createUser(w http.ResponseWriter, r *http.Request, st *state) {
	f := r.PostForm
	form := userForm{Username: strings.TrimSpace(f.Get("username")), Role: f.Get("role")}
	password := f.Get("password")
	fail := func(status int, errs formErrors) {
		c.render(w, r, st, status, "user", view{Title: "Add a user", Nav: "users", Errors: errs, Page: form})
	}
	in := manage.UserInput{Username: &form.Username, Password: &password}
	if form.Role != "" {
		in.Role = (*storage.Role)(&form.Role)
	}
	if st.account.ID != st.user.AccountID {
		id := st.account.ID
		in.AccountID = &id
	}
	if _, err := c.opts.Service.CreateUser(r.Context(), st.act, in); err != nil {
		c.refused(w, r, st, err, userLabels, fail)
		return
	}
	http.Redirect(w, r, Prefix+"/users?ok=user-created", http.StatusSeeOther)
}

func (c *Console) updateUser(w http.ResponseWriter, r *http.Request, st *state, in manage.UserUpdate, done string) {
	// Setting a role or a status is idempotent: no version check.
	if _, err := c.opts.Service.UpdateUser(r.Context(), st.act, pathID(r), 0, in); err != nil {
		c.refused(w, r, st, err, nil, func(status int, errs formErrors) { c.renderUsers(w, r, st, status, errs) })
		return
	}
	http.Redirect(w, r, Prefix+"/users?ok="+done, http.StatusSeeOther)
}

func (c *Console) setUserStatus(w http.ResponseWriter, r *http.Request, st *state) {
	status := r.PostForm.Get("status")
	c.updateUser(w, r, st, manage.UserUpdate{Status: (*storage.Status)(&status)}, "user-"+map[string]string{"active": "enabled", "disabled": "disabled"}[status])
}

func (c *Console) setUserRole(w http.ResponseWriter, r *http.Request, st *state) {
	role := r.PostForm.Get("role")
	c.updateUser(w, r, st, manage.UserUpdate{Role: (*storage.Role)(&role)}, "user-role")
}

// userDeletePage asks before deleting a user.
type userDeletePage struct{ Row userRow }

func (c *Console) loadUser(w http.ResponseWriter, r *http.Request, st *state) (storage.User, bool) {
	u, err := c.opts.Service.GetUser(r.Context(), st.act, pathID(r))
	if err == nil && !st.act.Admin() {
		err = forbidden
	}
	if err != nil {
		c.failure(w, r, st, err)
		return u, false
	}
	return u, true
}

func (c *Console) confirmDeleteUser(w http.ResponseWriter, r *http.Request, st *state) {
	u, ok := c.loadUser(w, r, st)
	if !ok {
		return
	}
	c.render(w, r, st, http.StatusOK, "user_delete", view{Title: "Delete " + u.Username, Nav: "users",
		Page: userDeletePage{Row: toUserRow(u, st.user.ID)}})
}

func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, st *state) {
	u, ok := c.loadUser(w, r, st)
	if !ok {
		return
	}
	if err := c.opts.Service.DeleteUser(r.Context(), st.act, u.ID, formInt(r, "version")); err != nil {
		c.refused(w, r, st, err, nil, func(status int, errs formErrors) {
			c.render(w, r, st, status, "user_delete", view{Title: "Delete " + u.Username, Nav: "users", Errors: errs,
				Page: userDeletePage{Row: toUserRow(u, st.user.ID)}})
		})
		return
	}
	http.Redirect(w, r, Prefix+"/users?ok=user-deleted", http.StatusSeeOther)
}

// auditRow is an audit event as the page shows it.
type auditRow struct {
	storage.AuditEvent
	Actor  string
	Target string
}

type auditPage struct {
	Rows  []auditRow
	Next  int64
	Paged bool
}

// deletedName reads the name a delete event records (`name "…"`), for a
// record that no longer exists.
var deletedName = regexp.MustCompile(`^name ("(?:[^"\\]|\\.)*")$`)

// targetName says which record an audit event is about, as people know
// it: `key "Billing sync" (10)`, a user's username, an account's name.
// A record gone since, or one the signed-in user may not see, shows its
// kind and id, with the name a delete event recorded.
func (c *Console) targetName(ctx context.Context, st *state, kind string, id int64, detail string) string {
	key := kind + " " + strconv.FormatInt(id, 10)
	if n, ok := st.targets[key]; ok {
		return n
	}
	n := key
	switch kind {
	case "client", "key":
		if cl, err := c.opts.Service.GetClient(ctx, st.act, storage.Kind(kind), id); err == nil {
			n = kind + " " + strconv.Quote(cl.Name) + " (" + strconv.FormatInt(id, 10) + ")"
		} else if m := deletedName.FindStringSubmatch(detail); m != nil {
			n = kind + " " + m[1] + " (" + strconv.FormatInt(id, 10) + ", deleted)"
		}
	case "user":
		if u := c.username(ctx, st, id); u != "user "+strconv.FormatInt(id, 10) {
			n = "user " + u
		}
	case "account":
		if a, err := c.opts.Service.GetAccount(ctx, st.act, id); err == nil {
			n = "account " + strconv.Quote(a.Name)
		}
	}
	st.targets[key] = n
	return n
}

func (c *Console) listAudit(w http.ResponseWriter, r *http.Request, st *state) {
	ctx := r.Context()
	after := pageAfter(r)
	events, err := c.opts.Service.ListAudit(ctx, st.act, st.account.ID, storage.Page{After: after, Limit: pageSize})
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	p := auditPage{Paged: after > 0}
	for _, e := range events {
		row := auditRow{AuditEvent: e, Target: c.targetName(ctx, st, e.TargetType, e.TargetID, e.Detail)}
		switch {
		case e.ActorUserID != 0:
			row.Actor = c.username(ctx, st, e.ActorUserID)
		case e.ActorClientID != 0:
			row.Actor = c.targetName(ctx, st, "client", e.ActorClientID, "")
		default:
			row.Actor = "system"
		}
		p.Rows = append(p.Rows, row)
	}
	if len(events) == pageSize {
		p.Next = events[len(events)-1].ID
	}
	c.render(w, r, st, http.StatusOK, "audit", view{Title: "Audit trail", Nav: "audit", Page: p})
}
