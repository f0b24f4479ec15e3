package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// accountView is an account as the API shows it.
type accountView struct {
	ID        int64     `json:"id"`
	ParentID  int64     `json:"parent_id,omitempty"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
}

func viewAccount(acc storage.Account) accountView {
	return accountView{
		ID: acc.ID, ParentID: acc.ParentID, Name: acc.Name, Status: string(acc.Status),
		CreatedAt: acc.CreatedAt, UpdatedAt: acc.UpdatedAt, Version: acc.Version,
	}
}

func (a *API) accountRoutes() {
	a.handle(http.MethodPost, "/accounts", a.createAccount)
	a.handle(http.MethodGet, "/accounts/{id:[0-9]+}", a.getAccount)
	a.handle(http.MethodPatch, "/accounts/{id:[0-9]+}", a.updateAccount)
	a.handle(http.MethodGet, "/accounts/{id:[0-9]+}/children", a.listChildren)
}

// loadAccount reads account id for p: a member may read their own account,
// an admin every account of their subtree; anything else answers 404.
func (a *API) loadAccount(ctx context.Context, p *principal, id int64) (storage.Account, *problem) {
	if id != p.accountID {
		if pr := a.reach(ctx, p, id); pr != nil {
			return storage.Account{}, pr
		}
	}
	acc, err := a.opts.Store.GetAccount(ctx, id)
	if err != nil {
		pr := storeProblem(err)
		return acc, &pr
	}
	return acc, nil
}

// accountInput is the body of POST /accounts and PATCH /accounts/{id}.
type accountInput struct {
	ParentID *int64  `json:"parent_id"`
	Name     *string `json:"name"`
	Status   *string `json:"status"`
}

func (a *API) createAccount(w http.ResponseWriter, r *http.Request, p *principal) {
	var in accountInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	if !p.admin {
		writeProblem(w, r, errForbidden)
		return
	}
	acc := storage.Account{ParentID: p.accountID, Status: storage.StatusActive}
	var errs []fieldError
	if in.ParentID != nil {
		ok, err := a.inSubtree(r.Context(), p, *in.ParentID)
		if err != nil {
			writeProblem(w, r, unavailable(err))
			return
		}
		if !ok {
			errs = append(errs, fieldError{Field: "parent_id", Detail: "no such account among those you manage"})
		}
		acc.ParentID = *in.ParentID
	}
	if in.Name == nil {
		errs = append(errs, fieldError{Field: "name", Detail: "is required"})
	} else if msg := text(*in.Name, 1, maxNameLength); msg != "" {
		errs = append(errs, fieldError{Field: "name", Detail: msg})
	} else {
		acc.Name = strings.TrimSpace(*in.Name)
	}
	if in.Status != nil {
		errs = append(errs, fieldError{Field: "status", Detail: "a new account is always active"})
	}
	if errs != nil {
		writeProblem(w, r, invalid(errs))
		return
	}
	ctx := r.Context()
	err := a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var err error
		if acc, err = tx.CreateAccount(ctx, acc); err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit("account.create", "account", acc.ID, acc.ID,
			fmt.Sprintf("name %q, parent %d", acc.Name, acc.ParentID)))
		return err
	})
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(acc.Version))
	w.Header().Set("Location", Prefix+"/accounts/"+strconv.FormatInt(acc.ID, 10))
	writeJSON(w, http.StatusCreated, viewAccount(acc))
}

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, p *principal) {
	acc, err := a.GetAccount(r.Context(), Actor{p}, pathID(r))
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(acc.Version))
	writeJSON(w, http.StatusOK, viewAccount(acc))
}

// GetAccount reads account id: act's own, or for an admin any of their
// subtree.
func (a *API) GetAccount(ctx context.Context, act Actor, id int64) (storage.Account, error) {
	acc, pr := a.loadAccount(ctx, act.p, id)
	if pr != nil {
		return storage.Account{}, *pr
	}
	return acc, nil
}

func (a *API) listChildren(w http.ResponseWriter, r *http.Request, p *principal) {
	after, limit, pr := page(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	children, err := a.ListChildren(r.Context(), Actor{p}, pathID(r), storage.Page{After: after, Limit: limit})
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	views := make([]accountView, len(children))
	for i, c := range children {
		views[i] = viewAccount(c)
	}
	writeJSON(w, http.StatusOK, newList(views, limit, func(v accountView) int64 { return v.ID }))
}

// ListChildren lists one page of the direct children of account id, for an
// admin of its subtree.
func (a *API) ListChildren(ctx context.Context, act Actor, id int64, pg storage.Page) ([]storage.Account, error) {
	if pr := a.reach(ctx, act.p, id); pr != nil {
		return nil, *pr
	}
	children, err := a.opts.Store.ListChildren(ctx, id, pg)
	if err != nil {
		return nil, storeProblem(err)
	}
	return children, nil
}

func (a *API) updateAccount(w http.ResponseWriter, r *http.Request, p *principal) {
	var in accountInput
	if pr := decode(r, a.opts.MaxBodyBytes, &in); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	want, pr := ifMatch(r)
	if pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	id := pathID(r)
	if pr := a.reach(r.Context(), p, id); pr != nil {
		writeProblem(w, r, *pr)
		return
	}
	var errs []fieldError
	if in.ParentID != nil {
		errs = append(errs, fieldError{Field: "parent_id", Detail: "an account cannot move"})
	}
	if in.Name != nil {
		if msg := text(*in.Name, 1, maxNameLength); msg != "" {
			errs = append(errs, fieldError{Field: "name", Detail: msg})
		}
	}
	if in.Status != nil {
		switch st := storage.Status(*in.Status); {
		case !st.Valid():
			errs = append(errs, fieldError{Field: "status", Detail: "must be active or disabled"})
		case st != storage.StatusActive && id == p.accountID:
			// Only strict descendants: nobody locks themself out.
			errs = append(errs, fieldError{Field: "status", Detail: "you may not disable your own account"})
		}
	}
	if errs != nil {
		writeProblem(w, r, invalid(errs))
		return
	}
	ctx := r.Context()
	var out storage.Account
	err := a.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var changes []string
		acc, err := tx.UpdateAccount(ctx, id, func(acc *storage.Account) error {
			if want != 0 && acc.Version != want {
				return errPrecondion
			}
			changes = changes[:0]
			if in.Name != nil && strings.TrimSpace(*in.Name) != acc.Name {
				changes = append(changes, fmt.Sprintf("name %q → %q", acc.Name, strings.TrimSpace(*in.Name)))
				acc.Name = strings.TrimSpace(*in.Name)
			}
			// Credentials and tokens of the subtree are checked against
			// the account's standing at every use; the status change also
			// moves the subtree's token cut-off, so that enabling the
			// account again revives no token of before.
			if in.Status != nil && storage.Status(*in.Status) != acc.Status {
				changes = append(changes, fmt.Sprintf("status %s → %s", acc.Status, *in.Status))
				acc.SetStatus(storage.Status(*in.Status), a.opts.Now())
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = acc
		detail := "no change"
		if len(changes) > 0 {
			detail = strings.Join(changes, ", ")
		}
		_, err = tx.AppendAudit(ctx, p.audit("account.update", "account", acc.ID, acc.ID, detail))
		return err
	})
	if err != nil {
		writeProblem(w, r, storeProblem(err))
		return
	}
	w.Header().Set("ETag", etag(out.Version))
	writeJSON(w, http.StatusOK, viewAccount(out))
}
