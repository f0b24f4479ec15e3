package console

import (
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"
)

const (
	get  = http.MethodGet
	head = http.MethodHead
	post = http.MethodPost
)

func (c *Console) routes() {
	r := c.router
	home := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/clients", http.StatusSeeOther)
	}
	r.HandleFunc(Prefix, home).Methods(get, head)
	r.HandleFunc(Prefix+"/", home).Methods(get, head)
	r.PathPrefix(Prefix+"/static/").HandlerFunc(c.static).Methods(get, head)
	r.HandleFunc(Prefix+"/signin", c.signinForm).Methods(get, head)
	r.HandleFunc(Prefix+"/signin", c.signin).Methods(post)
	r.Handle(Prefix+"/signout", c.action(c.signout)).Methods(post)
	r.Handle(Prefix+"/account", c.action(c.switchAccount)).Methods(post)

	for _, k := range []kindInfo{clientKind, keyKind} {
		with := func(h func(http.ResponseWriter, *http.Request, *state, kindInfo)) func(http.ResponseWriter, *http.Request, *state) {
			return func(w http.ResponseWriter, r *http.Request, st *state) { h(w, r, st, k) }
		}
		r.Handle(k.Path, c.page(with(c.listCredentials))).Methods(get, head)
		r.Handle(k.Path+"/new", c.page(with(c.newCredential))).Methods(get, head)
		r.Handle(k.Path+"/new", c.action(with(c.createCredential))).Methods(post)
		r.Handle(k.Path+"/{id:[0-9]+}", c.page(with(c.showCredential))).Methods(get, head)
		r.Handle(k.Path+"/{id:[0-9]+}", c.action(with(c.editCredential))).Methods(post)
		r.Handle(k.Path+"/{id:[0-9]+}/status", c.action(with(c.toggleCredential))).Methods(post)
		r.Handle(k.Path+"/{id:[0-9]+}/rotate", c.action(with(c.rotateCredential))).Methods(post)
		r.Handle(k.Path+"/{id:[0-9]+}/delete", c.page(with(c.confirmDeleteCredential))).Methods(get, head)
		r.Handle(k.Path+"/{id:[0-9]+}/usage", c.page(with(c.showCredentialUsage))).Methods(get, head)
		r.Handle(k.Path+"/{id:[0-9]+}/delete", c.action(with(c.deleteCredential))).Methods(post)
	}
	r.Handle(clientKind.Path+"/{id:[0-9]+}/token", c.page(c.tokenForm)).Methods(get, head)
	r.Handle(clientKind.Path+"/{id:[0-9]+}/token", c.action(c.generateToken)).Methods(post)
	r.Handle(clientKind.Path+"/{id:[0-9]+}/federated", c.action(c.addFederated)).Methods(post)
	r.Handle(clientKind.Path+"/{id:[0-9]+}/federated/delete", c.action(c.deleteFederated)).Methods(post)

	r.Handle(Prefix+"/users", c.page(c.listUsers)).Methods(get, head)
	r.Handle(Prefix+"/users/new", c.page(c.newUser)).Methods(get, head)
	r.Handle(Prefix+"/users/new", c.action(c.createUser)).Methods(post)
	r.Handle(Prefix+"/users/{id:[0-9]+}/status", c.action(c.setUserStatus)).Methods(post)
	r.Handle(Prefix+"/users/{id:[0-9]+}/role", c.action(c.setUserRole)).Methods(post)
	r.Handle(Prefix+"/users/{id:[0-9]+}/delete", c.page(c.confirmDeleteUser)).Methods(get, head)
	r.Handle(Prefix+"/users/{id:[0-9]+}/delete", c.action(c.deleteUser)).Methods(post)

	r.Handle(Prefix+"/audit", c.page(c.listAudit)).Methods(get, head)
	r.Handle(Prefix+"/usage", c.page(c.showAccountUsage)).Methods(get, head)
	r.Handle(webhooksPath, c.page(c.listWebhooks)).Methods(get, head)
	r.Handle(webhooksPath, c.action(c.createWebhook)).Methods(post)
	r.Handle(webhooksPath+"/{id:[0-9]+}", c.page(c.showWebhook)).Methods(get, head)
	r.Handle(webhooksPath+"/{id:[0-9]+}/test", c.action(c.testWebhook)).Methods(post)
	r.Handle(webhooksPath+"/{id:[0-9]+}/rotate", c.action(c.rotateWebhook)).Methods(post)
	r.Handle(webhooksPath+"/{id:[0-9]+}/delete", c.action(c.deleteWebhook)).Methods(post)
	r.Handle(Prefix+"/settings", c.page(c.showSettings)).Methods(get, head)
	r.Handle(Prefix+"/settings", c.action(c.saveSettings)).Methods(post)
	r.Handle(Prefix+"/settings/budget", c.action(c.saveBudget)).Methods(post)

	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _, _ := c.load(w, r)
		c.notFound(w, r, st)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow := c.allowed(r); allow != "" {
			w.Header().Set("Allow", allow)
		}
		c.errorPage(w, r, nil, http.StatusMethodNotAllowed, "Method not allowed", "This page cannot be used that way.")
	})
}

// allowed answers the methods the route of r's path serves, for the Allow
// header of a 405.
func (c *Console) allowed(r *http.Request) string {
	var out []string
	for _, m := range []string{get, head, post} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if c.router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// pathID answers the {id} of the route: -1, which no record has, when it
// does not parse.
func pathID(r *http.Request) int64 {
	id, err := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		return -1
	}
	return id
}

// formInt reads an integer form value: 0 when absent or malformed.
func formInt(r *http.Request, name string) int64 {
	n, err := strconv.ParseInt(r.PostForm.Get(name), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// pageAfter reads ?after=, the last id of the previous page.
func pageAfter(r *http.Request) int64 {
	n, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// pageSize is the number of rows a list shows at once.
const pageSize = 50

// maxSearch caps the text of a search: a name is at most 100 characters.
const maxSearch = 100

// search reads ?q=, the part of a name a list is narrowed to; "" for
// every record.
func search(r *http.Request) string {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if utf8.RuneCountInString(q) > maxSearch {
		q = string([]rune(q)[:maxSearch])
	}
	return q
}
