package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/tollgate/tollgate/pkg/console/session"
	"github.com/tollgate/tollgate/pkg/console/session/memory"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/storage"
)

// refusingService is a Service that only reads accounts (which loading a
// session and framing a page need); any other call panics, failing the
// test: no action may get that far.
type refusingService struct {
	Service
	t *testing.T
}

func (s refusingService) GetAccount(_ context.Context, _ manage.Actor, id int64) (storage.Account, error) {
	return storage.Account{ID: id, Name: "root", Status: storage.StatusActive}, nil
}

// ListChildren serves the account switcher of the refusal page.
func (s refusingService) ListChildren(context.Context, manage.Actor, int64, storage.Page) ([]storage.Account, error) {
	return nil, nil
}

func (s refusingService) ListClients(context.Context, manage.Actor, storage.Kind, storage.ClientFilter, storage.Page) ([]storage.Client, error) {
	s.t.Error("ListClients was called")
	return nil, nil
}

type oneUser struct{ u storage.User }

func (o oneUser) GetUser(context.Context, int64) (storage.User, error) { return o.u, nil }
func (o oneUser) GetUserByUsername(context.Context, string) (storage.User, error) {
	return o.u, nil
}
func (o oneUser) AccountActive(context.Context, int64) (bool, error) { return true, nil }

// Every route that takes a POST is an action: without the session's CSRF
// token, or from another origin, it answers 403 before anything runs. The
// routes come from the router itself, so a new one cannot slip by.
func TestEveryPostNeedsTheCSRFToken(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	store := memory.New(memory.Options{Now: func() time.Time { return now }})
	user := storage.User{ID: 1, AccountID: 1, Username: "alice", Role: storage.RoleAdmin, Status: storage.StatusActive}
	c, err := New(Options{Service: refusingService{t: t}, Users: oneUser{user}, Sessions: store, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	cookie := randomToken()
	sess := session.Session{UserID: 1, AccountID: 1, CSRF: randomToken(), CreatedAt: now, LastSeen: now}
	if err := store.Create(t.Context(), session.Key(cookie), sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	var posts []string
	err = c.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		methods, _ := route.GetMethods()
		tpl, err := route.GetPathTemplate()
		if err == nil && slices.Contains(methods, http.MethodPost) {
			posts = append(posts, regexp.MustCompile(`\{id:[^}]*\}`).ReplaceAllString(tpl, "7"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(posts) < 15 {
		t.Fatalf("only %d POST routes found: %q", len(posts), posts)
	}
	for _, path := range posts {
		for name, tc := range map[string]struct {
			csrf   string
			header map[string]string
		}{
			"no token":     {csrf: ""},
			"wrong token":  {csrf: randomToken()},
			"cross-site":   {csrf: sess.CSRF, header: map[string]string{"Sec-Fetch-Site": "cross-site"}},
			"other origin": {csrf: sess.CSRF, header: map[string]string{"Origin": "https://evil.example"}},
		} {
			form := url.Values{"csrf": {tc.csrf}, "status": {"disabled"}, "name": {"x"}, "account": {"1"}}
			r := httptest.NewRequest(http.MethodPost, "http://console.test"+path, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
			r.AddCookie(&http.Cookie{Name: signinCookie, Value: strings.Repeat("A", 43)})
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			c.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden {
				t.Errorf("POST %s, %s: status %d, want 403", path, name, w.Code)
			}
		}
	}
	// The session is intact: refusals sign nobody out.
	if got, err := store.Get(t.Context(), session.Key(cookie)); err != nil || got.AccountID != 1 {
		t.Errorf("session after the refusals = %+v, %v", got, err)
	}
}
