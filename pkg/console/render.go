package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// view is what every page template gets: the frame (who is signed in,
// which account, the navigation) and the page's own data.
type view struct {
	Title    string
	Nav      string // the navigation entry to mark current
	User     *storage.User
	Admin    bool
	CSRF     string
	Account  storage.Account
	Accounts []accountOption // the accounts an admin may switch to
	Path     string          // the page's path, to come back to after switching
	Notice   string
	Errors   formErrors
	// Refused heads the error summary: what happened to the form. Empty
	// means "Nothing was saved", right for the forms that change a record.
	Refused string
	Assets  assets
	Page    any
}

// formErrors maps a form field ("" for the form as a whole) to what is
// wrong with it.
type formErrors map[string][]string

func (e formErrors) add(field, msg string) { e[field] = append(e[field], msg) }

// mark flags fields as invalid without a message of their own.
func (e formErrors) mark(fields ...string) {
	for _, f := range fields {
		if _, ok := e[f]; !ok {
			e[f] = nil
		}
	}
}

// For answers the messages of field, joined.
func (e formErrors) For(field string) string { return strings.Join(e[field], " ") }

// Has reports whether field is invalid.
func (e formErrors) Has(field string) bool { _, ok := e[field]; return ok }

// Summary lists every message, the form's own first.
func (e formErrors) Summary() []fieldMessage {
	var out []fieldMessage
	for _, m := range e[""] {
		out = append(out, fieldMessage{Message: m})
	}
	for _, f := range sortedKeys(e) {
		if f == "" {
			continue
		}
		for _, m := range e[f] {
			out = append(out, fieldMessage{Field: f, Message: m})
		}
	}
	return out
}

type fieldMessage struct{ Field, Message string }

func sortedKeys(e formErrors) []string { return slices.Sorted(maps.Keys(e)) }

// refusal is an error of the management service as the console answers
// it: an HTTP status, a sentence, the invalid fields, when to retry after a
// brute-force block, and the cause behind a failure (for the log).
type refusal struct {
	Status     int
	Detail     string
	Fields     []manage.FieldError
	RetryAfter time.Duration
	Cause      error
}

// statuses are the HTTP statuses of the service's codes; any other error
// is a backend failure.
var statuses = map[manage.Code]int{
	manage.Invalid:            http.StatusUnprocessableEntity,
	manage.NotFound:           http.StatusNotFound,
	manage.Conflict:           http.StatusConflict,
	manage.Forbidden:          http.StatusForbidden,
	manage.PreconditionFailed: http.StatusPreconditionFailed,
	manage.Blocked:            http.StatusTooManyRequests,
	manage.Unavailable:        http.StatusServiceUnavailable,
	manage.Internal:           http.StatusInternalServerError,
}

// refusalOf describes an error of the management service.
func refusalOf(err error) refusal {
	e := manage.ErrorOf(err)
	status, ok := statuses[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return refusal{Status: status, Detail: e.Detail, Fields: e.Fields, RetryAfter: e.RetryAfter, Cause: e.Err}
}

// fromRefusal turns a refusal's field errors into form errors: fields the
// form has keep their messages, the others join the form's.
func fromRefusal(ref refusal, labels map[string]string) formErrors {
	errs := formErrors{}
	for _, f := range ref.Fields {
		// An entry of a list ("allowed_cidrs[1]") is shown at its list's
		// field; the detail names the entry.
		if i := strings.IndexByte(f.Field, '['); i > 0 && strings.HasSuffix(f.Field, "]") {
			f.Field = f.Field[:i]
		}
		label, ok := labels[f.Field]
		if !ok {
			errs.add("", fmt.Sprintf("%s %s.", f.Field, f.Detail))
			continue
		}
		errs.add(f.Field, sentence(label, f.Detail))
	}
	if len(ref.Fields) == 0 {
		errs.add("", ref.Detail)
	}
	return errs
}

// sentence turns the API's "must not be empty" about label into "Name must
// not be empty."
func sentence(label, detail string) string {
	s := label + " " + detail
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// assets are the embedded static files, addressed with a version so that
// browsers may cache them.
type assets struct {
	CSS, JS, Icon string // URLs
	files         map[string]asset
}

type asset struct {
	body        []byte
	contentType string
	version     string
}

func loadAssets() (assets, error) {
	a := assets{files: map[string]asset{}}
	entries, err := fs.ReadDir(files, "static")
	if err != nil {
		return a, err
	}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	for _, e := range entries {
		b, err := fs.ReadFile(files, "static/"+e.Name())
		if err != nil {
			return a, err
		}
		sum := sha256.Sum256(b)
		a.files[e.Name()] = asset{body: b, contentType: types[path.Ext(e.Name())], version: hex.EncodeToString(sum[:6])}
	}
	url := func(name string) string {
		return Prefix + "/static/" + name + "?v=" + a.files[name].version
	}
	a.CSS, a.JS, a.Icon = url("console.css"), url("console.js"), url("favicon.svg")
	return a, nil
}

func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, Prefix+"/static/")
	f, ok := c.assets.files[name]
	if !ok || f.contentType == "" {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	if r.URL.Query().Get("v") == f.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("ETag", `"`+f.version+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}

// pages are the parsed templates, one set per page on the shared layout.
type pages map[string]*template.Template

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"short": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// num writes a chart coordinate to one decimal.
	"num": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	// outcomeLabel names an outcome for people.
	"outcomeLabel": func(o string) string { return strings.ReplaceAll(o, "_", " ") },
	"day": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02")
	},
}

func loadPages(a assets) (pages, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := pages{}
	for _, n := range names {
		if path.Base(n) == "layout.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, err
		}
		p[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	return p, nil
}

// render writes page name with v, framed for st (nil: signed out).
func (c *Console) render(w http.ResponseWriter, r *http.Request, st *state, status int, name string, v view) {
	v.Assets = c.assets
	if v.Errors == nil {
		v.Errors = formErrors{}
	}
	if st != nil {
		v.User, v.Admin, v.CSRF, v.Account = &st.user, st.user.Role == storage.RoleAdmin, st.sess.CSRF, st.account
		v.Path = r.URL.Path
		if v.Admin {
			v.Accounts = c.accountOptions(r, st)
		}
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.opts.Logger.ErrorContext(r.Context(), "render console page", "page", name, "err", err)
		http.Error(w, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage renders a page that only says what went wrong.
type errorData struct{ Heading, Message string }

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, st *state, status int, heading, message string) {
	c.render(w, r, st, status, "error", view{Title: heading, Page: errorData{Heading: heading, Message: message}})
}

// forbiddenForm answers a form post without the right CSRF token or from
// another origin.
func (c *Console) forbiddenForm(w http.ResponseWriter, r *http.Request, st *state) {
	c.opts.Logger.WarnContext(r.Context(), "console form refused: CSRF token or origin", "path", r.URL.Path)
	c.errorPage(w, r, st, http.StatusForbidden, "This form was not accepted",
		"The form has expired, or it was not sent from this console. Go back, reload the page and try again.")
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, st *state) {
	c.errorPage(w, r, st, http.StatusNotFound, "Not found", "There is nothing here, or it is not yours to see.")
}

// failure answers an error from a backend or the service layer that no
// form can fix.
func (c *Console) failure(w http.ResponseWriter, r *http.Request, st *state, err error) {
	ref := refusalOf(err)
	var re refusalError
	if errors.As(err, &re) {
		ref = refusal{Status: re.status}
	}
	switch {
	case ref.Status == http.StatusNotFound:
		c.notFound(w, r, st)
	case ref.Status == http.StatusForbidden:
		c.errorPage(w, r, st, http.StatusForbidden, "Not allowed", "Only an admin of the account may do this.")
	case ref.Status >= 500:
		cause := ref.Cause
		if cause == nil {
			cause = err
		}
		c.opts.Logger.ErrorContext(r.Context(), "console failure", "path", r.URL.Path, "err", cause)
		c.errorPage(w, r, st, http.StatusServiceUnavailable, "Temporarily unavailable",
			"Tollgate cannot reach one of its backends right now. Nothing was changed. Try again in a moment.")
	default:
		c.errorPage(w, r, st, ref.Status, http.StatusText(ref.Status), ref.Detail)
	}
}
