package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/authn"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/console/session"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/retryafter"
	"github.com/tollgate/tollgate/storage"
)

// Cookies. Both are scoped to the console's path and invisible to scripts.
const (
	// sessionCookie carries the session: the store holds it only under
	// its hash.
	sessionCookie = "tollgate_console"
	// signinCookie carries the CSRF token of the sign-in form, which has no
	// session yet (double submit).
	signinCookie = "tollgate_console_signin"
)

// state is what a request of a signed-in user carries.
type state struct {
	key     string // the session's store key
	sess    session.Session
	user    storage.User
	act     manage.Actor
	account storage.Account // the account the console shows
	names   map[int64]string
	targets map[string]string // audit targets by "kind id", see targetName
}

// randomToken answers 256 random bits, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sameToken(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secure reports whether r came over TLS (directly, or through a trusted
// proxy, reqctx.ViaTrustedProxy, that says so), or the console is told its
// cookies are always Secure.
func (c *Console) secure(r *http.Request) bool {
	if c.opts.SecureCookies || r.TLS != nil {
		return true
	}
	return reqctx.ViaTrustedProxy(r.Context()) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode,
	})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	c.setCookie(w, r, name, "", -1)
}

// ttl answers how long the session may live from now: the idle timeout,
// cut by the maximum lifetime.
func (c *Console) ttl(s session.Session, now time.Time) time.Duration {
	return min(c.opts.IdleTimeout, s.CreatedAt.Add(c.opts.MaxLifetime).Sub(now))
}

// errNoSession is answered by load for a request without a good session.
var errNoSession = errors.New("no console session")

// load reads and renews the session of r. It answers errNoSession (and
// whether a cookie was there, now cleared) when there is none to use: no
// cookie, expired, signed out, or its user disabled, deleted, or their
// password changed since it began.
func (c *Console) load(w http.ResponseWriter, r *http.Request) (*state, bool, error) {
	cookie, err := r.Cookie(sessionCookie)
	if err != nil || cookie.Value == "" {
		return nil, false, errNoSession
	}
	ctx := r.Context()
	st := &state{key: session.Key(cookie.Value), names: map[int64]string{}, targets: map[string]string{}}
	end := func() (*state, bool, error) {
		if err := c.opts.Sessions.Delete(ctx, st.key); err != nil {
			c.opts.Logger.WarnContext(ctx, "delete console session", "err", err)
		}
		c.clearCookie(w, r, sessionCookie)
		return nil, true, errNoSession
	}
	st.sess, err = c.opts.Sessions.Get(ctx, st.key)
	if errors.Is(err, session.ErrNotFound) {
		c.clearCookie(w, r, sessionCookie)
		return nil, true, errNoSession
	}
	if err != nil {
		return nil, false, err
	}
	now := c.opts.Now()
	if now.Sub(st.sess.LastSeen) >= c.opts.IdleTimeout || now.Sub(st.sess.CreatedAt) >= c.opts.MaxLifetime {
		return end()
	}
	st.user, err = c.opts.Users.GetUser(ctx, st.sess.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return end()
	}
	if err != nil {
		return nil, false, err
	}
	// Token issue times are whole seconds; so is the session's beginning
	// for this check, which ends a session begun in the second of a
	// password change too.
	if st.user.Status != storage.StatusActive || !st.user.TokenIssuedValid(st.sess.CreatedAt.Truncate(time.Second)) {
		return end()
	}
	active, err := c.opts.Users.AccountActive(ctx, st.user.AccountID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, false, err
	}
	if !active {
		return end()
	}
	reqctx.SetPrincipal(ctx, reqctx.Principal{UserID: st.user.ID})
	st.act = manage.UserActor(st.user, storage.Client{}, reqctx.Addr(ctx))
	st.account, err = c.opts.Service.GetAccount(ctx, st.act, st.sess.AccountID)
	if err != nil {
		if refusalOf(err).Status != http.StatusNotFound {
			return nil, false, err
		}
		// Out of reach now (a role change): back to the user's own.
		st.sess.AccountID = st.user.AccountID
		if st.account, err = c.opts.Service.GetAccount(ctx, st.act, st.sess.AccountID); err != nil {
			return nil, false, err
		}
	}
	st.sess.LastSeen = now
	if err := c.opts.Sessions.Update(ctx, st.key, st.sess, c.ttl(st.sess, now)); errors.Is(err, session.ErrNotFound) {
		c.clearCookie(w, r, sessionCookie)
		return nil, true, errNoSession
	} else if err != nil {
		return nil, false, err
	}
	return st, false, nil
}

// page serves h for a signed-in user; anyone else is sent to sign in.
func (c *Console) page(h func(w http.ResponseWriter, r *http.Request, st *state)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		st, expired, err := c.load(w, r)
		if errors.Is(err, errNoSession) {
			c.toSignIn(w, r, expired, r.URL.RequestURI())
			return
		}
		if err != nil {
			c.failure(w, r, nil, err)
			return
		}
		h(w, r, st)
	})
}

// action serves h for a form post of a signed-in user: same origin, a body
// within bounds, and the session's CSRF token.
func (c *Console) action(h func(w http.ResponseWriter, r *http.Request, st *state)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		if !c.formOK(w, r) {
			return
		}
		st, expired, err := c.load(w, r)
		if errors.Is(err, errNoSession) {
			c.toSignIn(w, r, expired, "")
			return
		}
		if err != nil {
			c.failure(w, r, nil, err)
			return
		}
		if !sameToken(r.PostForm.Get("csrf"), st.sess.CSRF) {
			c.forbiddenForm(w, r, st)
			return
		}
		h(w, r, st)
	})
}

// formOK checks a form post before anything else: it comes from the
// console's own origin, and its body is a form of bounded size. It answers
// the refusal itself.
func (c *Console) formOK(w http.ResponseWriter, r *http.Request) bool {
	if err := c.cop.Check(r); err != nil {
		c.forbiddenForm(w, r, nil)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, c.opts.MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		status := http.StatusBadRequest
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		c.errorPage(w, r, nil, status, "The form could not be read", "Go back and try again.")
		return false
	}
	return true
}

func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// toSignIn sends the browser to the sign-in page, to come back to next (a
// console path) afterwards.
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, expired bool, next string) {
	q := url.Values{}
	if next != "" && next != Prefix+"/" && localPath(next) {
		q.Set("next", next)
	}
	if expired {
		q.Set("expired", "1")
	}
	target := Prefix + "/signin"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// localPath reports whether p is a path of the console, safe to redirect
// to.
func localPath(p string) bool {
	return strings.HasPrefix(p, Prefix+"/") && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\r\n") &&
		!strings.Contains(p, "/../") && !strings.HasPrefix(p, Prefix+"/static/")
}

// signinPage is the sign-in form's data.
type signinPage struct {
	Username string
	Next     string
	Expired  bool
	Out      bool
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	q := r.URL.Query()
	next := q.Get("next")
	if !localPath(next) {
		next = ""
	}
	if _, _, err := c.load(w, r); err == nil {
		if next == "" {
			next = Prefix + "/clients"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	c.renderSignin(w, r, http.StatusOK, signinPage{Next: next, Expired: q.Get("expired") == "1", Out: q.Get("ok") == "signed-out"}, nil)
}

// renderSignin renders the sign-in form with a CSRF token: the one of the
// browser's sign-in cookie, or a new one.
func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, status int, p signinPage, errs formErrors) {
	token := ""
	if ck, err := r.Cookie(signinCookie); err == nil && len(ck.Value) == 43 {
		token = ck.Value
	} else {
		token = randomToken()
	}
	c.setCookie(w, r, signinCookie, token, int((2 * time.Hour).Seconds()))
	c.render(w, r, nil, status, "signin", view{Title: "Sign in", CSRF: token, Errors: errs, Page: p})
}

// errBadCredentials is a wrong username or password, a disabled user or a
// disabled account: all answered alike.
var errBadCredentials = errors.New("bad credentials")

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if !c.formOK(w, r) {
		return
	}
	ck, err := r.Cookie(signinCookie)
	if err != nil || !sameToken(r.PostForm.Get("csrf"), ck.Value) {
		c.forbiddenForm(w, r, nil)
		return
	}
	username, password := strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password")
	p := signinPage{Username: username, Next: r.PostForm.Get("next")}
	if !localPath(p.Next) {
		p.Next = ""
	}
	errs := formErrors{}
	if username == "" {
		errs.add("username", "Enter your username.")
	}
	if password == "" {
		errs.add("password", "Enter your password.")
	}
	if len(errs) > 0 {
		c.renderSignin(w, r, http.StatusUnprocessableEntity, p, errs)
		return
	}
	ctx := r.Context()
	user, err := c.authenticate(ctx, username, password)
	var blocked *bruteforce.BlockedError
	switch {
	case errors.As(err, &blocked):
		secs := retryafter.Seconds(blocked.RetryAfter)
		retryafter.Set(w.Header(), blocked.RetryAfter)
		errs.add("", fmt.Sprintf("Too many failed sign-ins. Wait %s, then try again.", seconds(secs)))
		c.renderSignin(w, r, http.StatusTooManyRequests, p, errs)
		return
	case errors.Is(err, errBadCredentials):
		errs.add("", "The username or password is wrong.")
		errs.mark("username", "password")
		c.renderSignin(w, r, http.StatusUnauthorized, p, errs)
		return
	case err != nil:
		c.failure(w, r, nil, err)
		return
	}
	now := c.opts.Now()
	// A session the browser already holds ends here: signing in always
	// begins a new session under a new id (and a new CSRF token), so that
	// nobody who learnt or planted the old cookie shares the new one.
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" {
		if err := c.opts.Sessions.Delete(ctx, session.Key(old.Value)); err != nil {
			c.failure(w, r, nil, fmt.Errorf("delete console session: %w", err))
			return
		}
	}
	cookie := randomToken()
	s := session.Session{UserID: user.ID, AccountID: user.AccountID, CSRF: randomToken(), CreatedAt: now, LastSeen: now}
	if err := c.opts.Sessions.Create(ctx, session.Key(cookie), s, c.ttl(s, now)); err != nil {
		c.failure(w, r, nil, fmt.Errorf("create console session: %w", err))
		return
	}
	// A browser session cookie; the server ends the session earlier when
	// it is idle or too old.
	c.setCookie(w, r, sessionCookie, cookie, 0)
	c.clearCookie(w, r, signinCookie)
	c.opts.Logger.InfoContext(ctx, "console sign-in", "user_id", user.ID)
	next := p.Next
	if next == "" {
		next = Prefix + "/clients"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func seconds(n int64) string {
	if n == 1 {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", n)
}

// authenticate checks a username and password (pkg/authn, as the
// eskimi_dsp grant and the management service do): a wrong password, an
// unknown or disabled user and a user of a disabled account are all
// errBadCredentials, counted by the brute-force protection; after too many,
// attempts answer a *bruteforce.BlockedError before the password is
// compared. A backend failure counts nothing.
func (c *Console) authenticate(ctx context.Context, username, password string) (storage.User, error) {
	user, err := c.authn.Authenticate(ctx, username, password, nil)
	if errors.Is(err, authn.ErrBadCredentials) {
		return storage.User{}, errBadCredentials
	}
	return user, err
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, st *state) {
	if err := c.opts.Sessions.Delete(r.Context(), st.key); err != nil {
		c.failure(w, r, st, fmt.Errorf("delete console session: %w", err))
		return
	}
	c.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, Prefix+"/signin?ok=signed-out", http.StatusSeeOther)
}
