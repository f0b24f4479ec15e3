package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/storage"
)

// maxAccounts bounds the accounts the switcher lists.
const maxAccounts = 200

// accountOption is an account an admin may switch to.
type accountOption struct {
	ID       int64
	Label    string // its path from the admin's own account: "root › child"
	Selected bool
}

// accountOptions lists the admin's account and its subtree, breadth
// first, through the service layer.
func (c *Console) accountOptions(r *http.Request, st *state) []accountOption {
	ctx := r.Context()
	own, err := c.opts.Service.GetAccount(ctx, st.act, st.user.AccountID)
	if err != nil {
		return nil
	}
	type node struct {
		acc   storage.Account
		label string
	}
	queue := []node{{own, own.Name}}
	var out []accountOption
	for len(queue) > 0 && len(out) < maxAccounts {
		n := queue[0]
		queue = queue[1:]
		out = append(out, accountOption{ID: n.acc.ID, Label: n.label, Selected: n.acc.ID == st.account.ID})
		pg := storage.Page{Limit: 100}
		for len(out)+len(queue) < maxAccounts {
			children, err := c.opts.Service.ListChildren(ctx, st.act, n.acc.ID, pg)
			if err != nil {
				break
			}
			for _, ch := range children {
				queue = append(queue, node{ch, n.label + " › " + ch.Name})
			}
			if len(children) < pg.Limit {
				break
			}
			pg.After = children[len(children)-1].ID
		}
	}
	return out
}

// switchAccount makes the console show another account of the admin's
// subtree.
func (c *Console) switchAccount(w http.ResponseWriter, r *http.Request, st *state) {
	id, err := strconv.ParseInt(r.PostForm.Get("account"), 10, 64)
	if err != nil {
		c.errorPage(w, r, st, http.StatusBadRequest, "Bad request", "Choose an account.")
		return
	}
	acc, err := c.opts.Service.GetAccount(r.Context(), st.act, id)
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	if !st.act.Admin() && acc.ID != st.user.AccountID {
		c.failure(w, r, st, forbidden)
		return
	}
	st.sess.AccountID = acc.ID
	if err := c.opts.Sessions.Update(r.Context(), st.key, st.sess, c.ttl(st.sess, c.opts.Now())); err != nil {
		c.failure(w, r, st, err)
		return
	}
	target := r.PostForm.Get("back")
	// Back to the same kind of page; a record's page belongs to the
	// account left behind.
	switch {
	case strings.HasPrefix(target, keyKind.Path):
		target = keyKind.Path
	case strings.HasPrefix(target, Prefix+"/users"):
		target = Prefix + "/users"
	case strings.HasPrefix(target, Prefix+"/audit"):
		target = Prefix + "/audit"
	default:
		target = clientKind.Path
	}
	http.Redirect(w, r, target+"?ok=switched", http.StatusSeeOther)
}
