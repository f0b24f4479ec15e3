package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/tokens"
)

// authenticated runs h for a caller with a good Bearer token, as the actor
// the token stands for: its user, or its client acting for its owner (the
// service decides whether a client may manage).
func (a *API) authenticated(h func(w http.ResponseWriter, r *http.Request, act manage.Actor)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// writeProblem leaves the cause of a 5xx here, for the log line.
		var cause error
		r = r.WithContext(context.WithValue(r.Context(), causeKey{}, &cause))
		defer func() {
			switch {
			case cause == nil:
			case r.Context().Err() != nil:
				// The caller hung up: nothing failed on this side.
				a.opts.Logger.InfoContext(r.Context(), "management API call abandoned by its caller", "method", r.Method, "err", cause)
			default:
				a.opts.Logger.ErrorContext(r.Context(), "management API failure", "method", r.Method, "err", cause)
			}
		}()
		auth := r.Header.Values("Authorization")
		if len(auth) != 1 || len(auth[0]) < 7 || !strings.EqualFold(auth[0][:7], "bearer ") {
			writeProblem(w, r, problem{Status: http.StatusUnauthorized, Detail: "A Bearer token issued by this server is required."})
			return
		}
		v, err := a.opts.Tokens.Validate(r.Context(), strings.TrimSpace(auth[0][7:]))
		if errors.Is(err, tokens.ErrInactive) {
			writeProblem(w, r, problem{Status: http.StatusUnauthorized, Detail: "The token is not active."})
			return
		}
		if err != nil {
			writeProblem(w, r, unavailable(err))
			return
		}
		remote := reqctx.Addr(r.Context())
		var act manage.Actor
		if v.User != nil {
			act = manage.UserActor(*v.User, v.Client, remote)
		} else if act, err = a.opts.Service.ClientActor(r.Context(), v.Client, v.Token.Scopes, remote); err != nil {
			writeProblem(w, r, problemOf(err))
			return
		}
		// A token exchanged for a descendant account acts there only.
		if act, err = a.opts.Service.Narrow(r.Context(), act, v.Token.AccountID); err != nil {
			writeProblem(w, r, problemOf(err))
			return
		}
		reqctx.SetPrincipal(r.Context(), reqctx.Principal{ClientID: v.Client.ID, UserID: act.UserID()})
		h(w, r, act)
	})
}
