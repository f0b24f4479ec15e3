package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Limits on usernames and passwords.
const (
	minUsernameLength = 3
	maxUsernameLength = 64
	minPasswordBytes  = 12
	maxPasswordBytes  = 1024
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

// reach answers whether p may manage a record of account accountID: nil
// for an admin of its subtree; 403 for a member and a record of their own
// account; 404 for everything else, so that nobody learns what lies
// outside their reach.
func (a *API) reach(ctx context.Context, p *principal, accountID int64) *problem {
	if !p.admin {
		if accountID == p.accountID {
			return &errForbidden
		}
		return &errNotFound
	}
	ok, err := a.inSubtree(ctx, p, accountID)
	if err != nil {
		pr := unavailable(err)
		return &pr
	}
	if !ok {
		return &errNotFound
	}
	return nil
}

// isSelf reports whether p is user id acting through their own token.
func (p *principal) isSelf(id int64) bool { return p.user != nil && p.user.ID == id }

// loadUser reads user id for p: a user may always read themself, anyone
// else needs reach.
func (a *API) loadUser(ctx context.Context, p *principal, id int64) (storage.User, *problem) {
	u, err := a.opts.Store.GetUser(ctx, id)
	if err != nil {
		pr := storeProblem(err)
		return u, &pr
	}
	if p.isSelf(u.ID) {
		return u, nil
	}
	if pr := a.reach(ctx, p, u.AccountID); pr != nil {
		return u, pr
	}
	return u, nil
}

func validUsername(s string) string {
	if n := len(s); n < minUsernameLength || n > maxUsernameLength {
		return fmt.Sprintf("must be %d to %d characters", minUsernameLength, maxUsernameLength)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)
		if !ok {
			return "may contain only letters A–Z and a–z, digits, and . _ @ -"
		}
	}
	return ""
}

func validPassword(s string) string {
	if n := len(s); n < minPasswordBytes || n > maxPasswordBytes {
		return fmt.Sprintf("must be %d to %d bytes", minPasswordBytes, maxPasswordBytes)
	}
	// The token endpoint refuses control characters (tab aside) in every
	// parameter: a password holding one could never sign in.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}

// userInput is the body of POST /users.
type userInput struct {
	AccountID *int64  `json:"account_id"`
	Username  *string `json:"username"`
	Password  *string `json:"password"`
	Role      *string `json:"role"`
}

var errUsernameTaken = problem{Status: http.StatusConflict, Detail: "The username is taken."}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, p *principal) {
	var in userInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	u, err := a.CreateUser(r.Context(), Actor{p}, in)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	w.Header().Set("Location", Prefix+"/users/"+strconv.FormatInt(u.ID, 10))
	writeJSON(w, http.StatusCreated, viewUser(u))
}

// CreateUser creates a user (a member unless in.Role says otherwise) in
// act's account or, with in.AccountID, another account of act's subtree,
// with their default API key. Only admins may.
func (a *API) CreateUser(ctx context.Context, act Actor, in UserInput) (storage.User, error) {
	p := act.p
	if !p.admin {
		return storage.User{}, errForbidden
	}
	u := storage.User{AccountID: p.accountID, Role: storage.RoleMember, Status: storage.StatusActive}
	var errs []fieldError
	bad := func(field, detail string) { errs = append(errs, fieldError{Field: field, Detail: detail}) }
	if in.AccountID != nil {
		ok, err := a.inSubtree(ctx, p, *in.AccountID)
		if err != nil {
			return storage.User{}, unavailable(err)
		}
		if !ok {
			bad("account_id", "no such account among those you manage")
		}
		u.AccountID = *in.AccountID
	}
	if in.Username == nil {
		bad("username", "is required")
	} else if msg := validUsername(*in.Username); msg != "" {
		bad("username", msg)
	} else {
		u.Username = *in.Username
	}
	if in.Password == nil {
		bad("password", "is required")
	} else if msg := validPassword(*in.Password); msg != "" {
		bad("password", msg)
	}
	if in.Role != nil {
		if !storage.Role(*in.Role).Valid() {
			bad("role", "must be admin or member")
		}
		u.Role = storage.Role(*in.Role)
	}
	if errs != nil {
		return storage.User{}, invalid(errs)
	}
	hash, err := a.opts.Passwords.Hash(*in.Password)
	if err != nil {
		return storage.User{}, problem{Status: http.StatusInternalServerError, cause: err}
	}
	u.PasswordHash = hash
	err = a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var err error
		if u, err = tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, p.audit("user.create", "user", u.ID, u.AccountID,
			fmt.Sprintf("username %q, role %s", u.Username, u.Role))); err != nil {
			return err
		}
		key, err := a.newDefaultKey(ctx, tx, u.ID, u.AccountID)
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit("key.create_default", "key", key.ID, key.AccountID,
			"default key of new user "+strconv.FormatInt(u.ID, 10)))
		return err
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return storage.User{}, errUsernameTaken
	}
	if err != nil {
		return storage.User{}, storeProblem(err)
	}
	return u, nil
}

// accountFilter reads ?account_id= and ?subtree=: by default p's account and
// its whole subtree.
func accountFilter(r *http.Request, p *principal) (accountID int64, subtree bool, pr *problem) {
	q := r.URL.Query()
	raw := q.Get("account_id")
	if raw == "" {
		return p.accountID, true, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		bad := badRequest("Invalid filters.", fieldError{Field: "account_id", Detail: "must be an account id"})
		return 0, false, &bad
	}
	return id, q.Get("subtree") == "true", nil
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, p *principal) {
	after, limit, pr := page(r, "account_id", "subtree", "name")
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	accountID, subtree, pr := accountFilter(r, p)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	users, err := a.ListUsers(r.Context(), Actor{p}, storage.UserFilter{AccountID: accountID, Subtree: subtree, Name: r.URL.Query().Get("name")},
		storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	views := make([]userView, len(users))
	for i, u := range users {
		views[i] = viewUser(u)
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v userView) int64 { return v.ID }))
}

// ListUsers lists one page of the users of account f.AccountID (and its
// subtree when f.Subtree is set) whose username contains f.Name. Only admins of the account may: a member
// is refused (403) on their own account.
func (a *API) ListUsers(ctx context.Context, act Actor, f storage.UserFilter, pg storage.Page) ([]storage.User, error) {
	if pr := a.reach(ctx, act.p, f.AccountID); pr != nil {
		return nil, *pr
	}
	users, err := a.opts.Store.ListUsers(ctx, f, pg)
	if err != nil {
		return nil, storeProblem(err)
	}
	return users, nil
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, p *principal) {
	u, err := a.GetUser(r.Context(), Actor{p}, pathID(r))
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, http.StatusOK, viewUser(u))
}

// GetUser reads user id: act themself, or a user an admin manages.
func (a *API) GetUser(ctx context.Context, act Actor, id int64) (storage.User, error) {
	u, pr := a.loadUser(ctx, act.p, id)
	if pr != nil {
		return storage.User{}, *pr
	}
	return u, nil
}

// userUpdate is the body of PATCH /users/{id}.
type userUpdate struct {
	Role   *string `json:"role"`
	Status *string `json:"status"`
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request, p *principal) {
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
	u, err := a.UpdateUser(r.Context(), Actor{p}, pathID(r), want, in)
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(u.Version))
	writeJSON(w, http.StatusOK, viewUser(u))
}

// UpdateUser changes the role or status of user id, when its version is
// want (0: whatever it is). Only an admin of the user's account may, and
// not to demote or disable themself. Disabling a user revokes their tokens
// and disables the credentials they own.
func (a *API) UpdateUser(ctx context.Context, act Actor, id, want int64, in UserUpdate) (storage.User, error) {
	p := act.p
	if _, pr := a.loadUser(ctx, p, id); pr != nil {
		return storage.User{}, *pr
	}
	if !p.admin {
		return storage.User{}, errForbidden
	}
	var errs []fieldError
	if in.Role != nil {
		switch role := storage.Role(*in.Role); {
		case !role.Valid():
			errs = append(errs, fieldError{Field: "role", Detail: "must be admin or member"})
		case role != storage.RoleAdmin && p.isSelf(id):
			errs = append(errs, fieldError{Field: "role", Detail: "you may not demote yourself"})
		}
	}
	if in.Status != nil {
		switch st := storage.Status(*in.Status); {
		case !st.Valid():
			errs = append(errs, fieldError{Field: "status", Detail: "must be active or disabled"})
		case st != storage.StatusActive && p.isSelf(id):
			errs = append(errs, fieldError{Field: "status", Detail: "you may not disable yourself"})
		}
	}
	if errs != nil {
		return storage.User{}, invalid(errs)
	}
	var out storage.User
	err := a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var changes []string
		var disabled bool
		u, err := tx.UpdateUser(ctx, id, func(u *storage.User) error {
			if want != 0 && u.Version != want {
				return errPrecondion
			}
			changes = changes[:0]
			if in.Role != nil && storage.Role(*in.Role) != u.Role {
				changes = append(changes, fmt.Sprintf("role %s → %s", u.Role, *in.Role))
				u.Role = storage.Role(*in.Role)
			}
			if in.Status != nil && storage.Status(*in.Status) != u.Status {
				changes = append(changes, fmt.Sprintf("status %s → %s", u.Status, *in.Status))
				u.Status = storage.Status(*in.Status)
				disabled = u.Status == storage.StatusDisabled
				if disabled {
					// Their tokens stay dead when the user comes back.
					u.RevokeTokens(a.opts.Now())
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = u
		detail := "no change"
		if changes != nil {
			detail = strings.Join(changes, ", ")
		}
		if _, err := tx.AppendAudit(ctx, p.audit("user.update", "user", u.ID, u.AccountID, detail)); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		// A disabled user's credentials stop working with them, and stay
		// off when the user comes back: someone turns them on knowingly.
		return a.disableOwned(ctx, tx, p, u)
	})
	if err != nil {
		return storage.User{}, storeProblem(err)
	}
	return out, nil
}

// ownedClients lists every credential user u owns, through tx.
func ownedClients(ctx context.Context, tx storage.Store, u storage.User, status storage.Status) ([]storage.Client, error) {
	var out []storage.Client
	pg := storage.Page{Limit: 100}
	for {
		cs, err := tx.ListClients(ctx, storage.ClientFilter{AccountID: u.AccountID, OwnerID: u.ID, Status: status}, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if len(cs) < pg.Limit {
			return out, nil
		}
		pg.After = cs[len(cs)-1].ID
	}
}

// disableOwned disables every active credential of user u and revokes its
// tokens, with an audit event each.
func (a *API) disableOwned(ctx context.Context, tx storage.Store, p *principal, u storage.User) error {
	cs, err := ownedClients(ctx, tx, u, storage.StatusActive)
	if err != nil {
		return err
	}
	for _, c := range cs {
		c, err := tx.UpdateClient(ctx, c.ID, func(c *storage.Client) error {
			c.Disable(storage.DisabledUser)
			return nil
		})
		if err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, p.audit(string(c.Kind)+".disable", string(c.Kind), c.ID, c.AccountID,
			"owner user "+strconv.FormatInt(u.ID, 10)+" disabled")); err != nil {
			return err
		}
	}
	return nil
}

// passwordInput is the body of POST /users/{id}/password.
type passwordInput struct {
	OldPassword *string `json:"old_password"`
	Password    *string `json:"password"`
}

// setPassword serves POST /users/{id}/password: a user changes their own
// password (the old one confirms who they are); an admin resets another
// user's.
func (a *API) setPassword(w http.ResponseWriter, r *http.Request, p *principal) {
	var in passwordInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	u, pr := a.loadUser(r.Context(), p, pathID(r))
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	self := p.isSelf(u.ID)
	if !self && !p.admin {
		writeProblem(w, r, errForbidden)
		return
	}
	var errs []fieldError
	switch {
	case self && in.OldPassword == nil:
		errs = append(errs, fieldError{Field: "old_password", Detail: "is required to change your own password"})
	case !self && in.OldPassword != nil:
		errs = append(errs, fieldError{Field: "old_password", Detail: "is only for changing your own password"})
	}
	if in.Password == nil {
		errs = append(errs, fieldError{Field: "password", Detail: "is required"})
	} else if msg := validPassword(*in.Password); msg != "" {
		errs = append(errs, fieldError{Field: "password", Detail: msg})
	}
	if errs != nil {
		writeProblem(w, r, invalid(errs))
		return
	}
	action := "user.reset_password"
	if self {
		action = "user.change_password"
		if !a.checkPassword(w, r, u.Username, u.PasswordHash, *in.OldPassword, "The old password is wrong.") {
			return
		}
	}
	hash, err := a.opts.Passwords.Hash(*in.Password)
	if err != nil {
		writeProblem(w, r, problem{Status: http.StatusInternalServerError, cause: err})
		return
	}
	ctx := r.Context()
	err = a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		u, err := tx.UpdateUser(ctx, u.ID, func(u *storage.User) error {
			u.PasswordHash = hash
			// Every token obtained with the old password dies with it.
			u.RevokeTokens(a.opts.Now())
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit(action, "user", u.ID, u.AccountID, ""))
		return err
	})
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, p *principal) {
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	if err := a.DeleteUser(r.Context(), Actor{p}, pathID(r), want); err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DeleteUser deletes user id and every credential they own, when its
// version is want (0: whatever it is). Only an admin of the user's account
// may, and not themself.
func (a *API) DeleteUser(ctx context.Context, act Actor, id, want int64) error {
	p := act.p
	u, pr := a.loadUser(ctx, p, id)
	if pr != nil {
		return *pr
	}
	if !p.admin {
		return errForbidden
	}
	if p.isSelf(u.ID) {
		return problem{Status: http.StatusForbidden, Detail: "You may not delete yourself."}
	}
	if want != 0 && u.Version != want {
		return errPrecondion
	}
	err := a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		// Lock the row and check If-Match again inside the transaction.
		if _, err := tx.UpdateUser(ctx, u.ID, func(cur *storage.User) error {
			if want != 0 && cur.Version != want {
				return errPrecondion
			}
			return nil
		}); err != nil {
			return err
		}
		owned, err := ownedClients(ctx, tx, u, "")
		if err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, u.ID); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, p.audit("user.delete", "user", u.ID, u.AccountID, "username "+strconv.Quote(u.Username))); err != nil {
			return err
		}
		for _, c := range owned {
			if _, err := tx.AppendAudit(ctx, p.audit(string(c.Kind)+".delete", string(c.Kind), c.ID, c.AccountID,
				"owner user "+strconv.FormatInt(u.ID, 10)+" deleted")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storeProblem(err)
	}
	return nil
}
