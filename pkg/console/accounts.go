package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/pkg/manage"
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
	case strings.HasPrefix(target, Prefix+"/settings"):
		target = Prefix + "/settings"
	default:
		target = clientKind.Path
	}
	http.Redirect(w, r, target+"?ok=switched", http.StatusSeeOther)
}

// settingsPage shows and edits the policies of the account the console
// shows.
type settingsPage struct {
	Account storage.Account
	// RequirePassword and ManagedBy are the account's own settings as the
	// form's choices: "" inherits, else "true"/"false" and
	// "anyone"/"admins".
	RequirePassword string
	ManagedBy       string
	// LeakedKeyAction is the account's own leaked-key policy: "" inherits,
	// else "disable" or "notify".
	LeakedKeyAction string
	Effective       storage.EffectivePolicies
	// Inherited is what the account would have with nothing set of its
	// own: its parent's effective policies (the defaults for a root).
	Inherited storage.EffectivePolicies
	IsRoot    bool
	// Budget is the account's budget, and whether the viewer may set it.
	Budget budgetPage
}

// settingsLabels name the settings form's fields, by their names in the
// management API.
var settingsLabels = map[string]string{
	"policies.require_password_for_new_keys": "Password to add a credential",
	"policies.keys_managed_by":               "Who manages credentials",
	"policies.leaked_key_action":             "When a key is found leaked",
}

// settingsField is the form field (and element id) of an API field.
func settingsField(errs formErrors) formErrors {
	out := formErrors{}
	for field, msgs := range errs {
		out[strings.TrimPrefix(field, "policies.")] = msgs
	}
	return out
}

func (c *Console) settingsFor(r *http.Request, st *state, acc storage.Account) (settingsPage, error) {
	ctx := r.Context()
	p := settingsPage{Account: acc, IsRoot: acc.ParentID == 0, ManagedBy: string(acc.Policies.KeysManagedBy),
		LeakedKeyAction: string(acc.Policies.LeakedKeyAction)}
	if v := acc.Policies.RequirePasswordForNewKeys; v != nil {
		p.RequirePassword = strconv.FormatBool(*v)
	}
	var err error
	if p.Effective, err = c.opts.Service.EffectivePolicies(ctx, st.act, acc.ID); err != nil {
		return p, err
	}
	if p.Inherited, err = c.opts.Service.InheritedPolicies(ctx, st.act, acc.ID); err != nil {
		return p, err
	}
	p.Budget = c.budgetFor(r, st, acc)
	return p, nil
}

// showSettings shows the policies of the account, for its admins.
func (c *Console) showSettings(w http.ResponseWriter, r *http.Request, st *state) {
	if !st.act.Admin() {
		c.failure(w, r, st, forbidden)
		return
	}
	p, err := c.settingsFor(r, st, st.account)
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	c.render(w, r, st, http.StatusOK, "settings", view{Title: "Account settings", Nav: "settings", Notice: notice(r), Page: p})
}

// saveSettings changes the policies of the account.
func (c *Console) saveSettings(w http.ResponseWriter, r *http.Request, st *state) {
	if !st.act.Admin() {
		c.failure(w, r, st, forbidden)
		return
	}
	f := r.PostForm
	in := manage.PoliciesInput{}
	in.RequirePasswordForNewKeys.Set = true
	switch v := f.Get("require_password_for_new_keys"); v {
	case "":
	case "true", "false":
		b := v == "true"
		in.RequirePasswordForNewKeys.Value = &b
	default:
		c.errorPage(w, r, st, http.StatusBadRequest, "Bad request", "Choose whether adding a credential asks for a password.")
		return
	}
	in.KeysManagedBy.Set = true
	if v := f.Get("keys_managed_by"); v != "" {
		m := storage.KeysManagedBy(v)
		in.KeysManagedBy.Value = &m
	}
	// A form of before the setting existed leaves it as it is.
	if _, ok := f["leaked_key_action"]; ok {
		in.LeakedKeyAction.Set = true
		if v := f.Get("leaked_key_action"); v != "" {
			a := storage.LeakedKeyAction(v)
			in.LeakedKeyAction.Value = &a
		}
	}
	_, err := c.opts.Service.UpdateAccount(r.Context(), st.act, st.account.ID, formInt(r, "version"), manage.AccountInput{Policies: &in})
	if err != nil {
		c.refused(w, r, st, err, settingsLabels, func(status int, errs formErrors) {
			p, perr := c.settingsFor(r, st, st.account)
			if perr != nil {
				c.failure(w, r, st, perr)
				return
			}
			c.render(w, r, st, status, "settings", view{Title: "Account settings", Nav: "settings", Errors: settingsField(errs), Page: p})
		})
		return
	}
	http.Redirect(w, r, Prefix+"/settings?ok=saved", http.StatusSeeOther)
}
