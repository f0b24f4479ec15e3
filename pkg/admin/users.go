package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// userView is a user as the API shows it: never their password hash.
type userView struct {
	ID        int64     `json:"id"`
	AccountID int64     `json:"account_id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
}

func viewUser(u storage.User) userView {
	return userView{
		ID: u.ID, AccountID: u.AccountID, Username: u.Username, Role: string(u.Role), Status: string(u.Status),
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, Version: u.Version,
	}
}

func (a *API) userRoutes() {
	a.handle(http.MethodPost, "/users", a.createUser)
	a.handle(http.MethodGet, "/users", a.listUsers)
	a.handle(http.MethodGet, "/users/{id:[0-9]+}", a.getUser)
	a.handle(http.MethodPatch, "/users/{id:[0-9]+}", a.updateUser)
	a.handle(http.MethodDelete, "/users/{id:[0-9]+}", a.deleteUser)
	a.handle(http.MethodPost, "/users/{id:[0-9]+}/password", a.setPassword)
}

// userInput is the body of POST /users.
type userInput struct {
	AccountID *int64  `json:"account_id"`
	Username  *string `json:"username"`
	Password  *string `json:"password"`
	Role      *string `json:"role"`
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	var in userInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	u, err := a.opts.Service.CreateUser(r.Context(), act, manage.UserInput{
		AccountID: in.AccountID, Username: in.Username, Password: in.Password, Role: (*storage.Role)(in.Role),
	})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	w.Header().Set("Location", Prefix+"/users/"+strconv.FormatInt(u.ID, 10))
	writeJSON(w, http.StatusCreated, viewUser(u))
}

// accountFilter reads ?account_id= and ?subtree=: by default act's account
// and its whole subtree.
func accountFilter(r *http.Request, act manage.Actor) (accountID int64, subtree bool, pr *problem) {
	q := r.URL.Query()
	raw := q.Get("account_id")
	if raw == "" {
		return act.AccountID(), true, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		bad := badRequest("Invalid filters.", fieldError{Field: "account_id", Detail: "must be an account id"})
		return 0, false, &bad
	}
	return id, q.Get("subtree") == "true", nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	after, limit, pr := page(r, "account_id", "subtree", "name")
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	accountID, subtree, pr := accountFilter(r, act)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	users, err := a.opts.Service.ListUsers(r.Context(), act, storage.UserFilter{AccountID: accountID, Subtree: subtree, Name: r.URL.Query().Get("name")},
		storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	views := make([]userView, len(users))
	for i, u := range users {
		views[i] = viewUser(u)
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v userView) int64 { return v.ID }))
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	u, err := a.opts.Service.GetUser(r.Context(), act, pathID(r))
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, http.StatusOK, viewUser(u))
}

// userUpdate is the body of PATCH /users/{id}.
type userUpdate struct {
	Role   *string `json:"role"`
	Status *string `json:"status"`
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	var in userUpdate
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	u, err := a.opts.Service.UpdateUser(r.Context(), act, pathID(r), want,
		manage.UserUpdate{Role: (*storage.Role)(in.Role), Status: (*storage.Status)(in.Status)})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, http.StatusOK, viewUser(u))
}

// passwordInput is the body of POST /users/{id}/password.
type passwordInput struct {
	OldPassword *string `json:"old_password"`
	Password    *string `json:"password"`
}

// setPassword serves POST /users/{id}/password: a user changes their own
// password (the old one confirms who they are); an admin resets another
// user's.
func (a *API) setPassword(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	var in passwordInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	err := a.opts.Service.SetPassword(r.Context(), act, pathID(r), manage.PasswordChange{OldPassword: in.OldPassword, Password: in.Password})
	if err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, act manage.Actor) {
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	if err := a.opts.Service.DeleteUser(r.Context(), act, pathID(r), want); err != nil {
		writeProblem(w, r, problemOf(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
