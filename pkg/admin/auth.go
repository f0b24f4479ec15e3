package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// principal is who is calling: a user acting through their token, or a
// client holding the management scope (acting as an admin of its account).
type principal struct {
	user *storage.User
	// human is the person accountable for the call: the user, or the owner
	// of the client acting for itself. Never nil: a management client
	// without an owner is refused.
	human     *storage.User
	client    storage.Client
	accountID int64
	admin     bool
	remote    string
}

// userID answers the id of the person accountable for the call (the user,
// or the acting client's owner): what new credentials are owned and created
// by, and the audit trail's actor.
func (p *principal) userID() int64 {
	switch {
	case p.human != nil:
		return p.human.ID
	case p.user != nil:
		return p.user.ID
	}
	return 0
}

// authenticated runs h for a caller with a good Bearer token.
func (a *API) authenticated(h func(w http.ResponseWriter, r *http.Request, p *principal)) http.Handler {
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
		p := &principal{client: v.Client, remote: reqctx.Addr(r.Context())}
		switch {
		case v.User != nil:
			p.user, p.human, p.accountID, p.admin = v.User, v.User, v.User.AccountID, v.User.Role == storage.RoleAdmin
		case slices.Contains(v.Token.Scopes, a.opts.ManagementScope):
			// A client acts as an admin of its account only while its owner
			// is an active admin: demoting, disabling or deleting the owner
			// takes the power away from the credentials they own. A client
			// without an owner answers to nobody and never manages. Every
			// credential a client creates is owned by that same person, so
			// the rule holds through any chain of credentials.
			owner, err := a.opts.Store.GetUser(r.Context(), v.Client.OwnerID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				writeProblem(w, r, unavailable(err))
				return
			}
			if v.Client.OwnerID == 0 || err != nil || owner.Role != storage.RoleAdmin || owner.Status != storage.StatusActive {
				writeProblem(w, r, problem{Status: http.StatusForbidden,
					Detail: "The client's owner is not an active admin: its token cannot manage the account."})
				return
			}
			p.human, p.accountID, p.admin = &owner, v.Client.AccountID, true
		default:
			writeProblem(w, r, problem{Status: http.StatusForbidden,
				Detail: fmt.Sprintf("A client token needs the %s scope to use the management API.", a.opts.ManagementScope)})
			return
		}
		reqctx.SetPrincipal(r.Context(), reqctx.Principal{ClientID: v.Client.ID, UserID: p.userID()})
		h(w, r, p)
	})
}

// inSubtree reports whether account id is the principal's account or one of
// its descendants.
func (a *API) inSubtree(ctx context.Context, p *principal, id int64) (bool, error) {
	if id == p.accountID {
		return true, nil
	}
	return a.opts.Store.AccountInSubtree(ctx, p.accountID, id)
}

// clientVisible reports whether p may see (and manage) credential c: an admin
// of its account subtree, or its owner.
func (a *API) clientVisible(ctx context.Context, p *principal, c storage.Client) (bool, error) {
	if !p.admin {
		return p.user != nil && c.OwnerID == p.user.ID, nil
	}
	return a.inSubtree(ctx, p, c.AccountID)
}

// loadClient reads credential id of kind for p, answering 404 when it does
// not exist, is of another kind, or is not p's to see.
func (a *API) loadClient(ctx context.Context, p *principal, id int64, kind storage.Kind) (storage.Client, *problem) {
	c, err := a.opts.Store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return c, &errNotFound
	}
	if err != nil {
		pr := unavailable(err)
		return c, &pr
	}
	if c.Kind != kind {
		return c, &errNotFound
	}
	ok, err := a.clientVisible(ctx, p, c)
	if err != nil {
		pr := unavailable(err)
		return c, &pr
	}
	if !ok {
		return c, &errNotFound
	}
	return c, nil
}

// audit builds an audit event for an action of p.
func (p *principal) audit(action, targetType string, targetID, accountID int64, detail string) storage.AuditEvent {
	return storage.AuditEvent{
		AccountID:     accountID,
		ActorUserID:   p.userID(),
		ActorClientID: p.client.ID,
		Action:        action,
		TargetType:    targetType,
		TargetID:      targetID,
		RemoteAddr:    p.remote,
		Outcome:       "success",
		Detail:        detail,
	}
}

// storeProblem turns a storage error into an answer.
func storeProblem(err error) problem {
	var pr problem
	switch {
	case errors.As(err, &pr):
		return pr
	case errors.Is(err, storage.ErrNotFound):
		return errNotFound
	case errors.Is(err, storage.ErrAlreadyExists):
		return problem{Status: http.StatusConflict, Detail: "A record with these values already exists."}
	case errors.Is(err, storage.ErrConflict):
		return problem{Status: http.StatusConflict, Detail: "The change conflicts with the current state of the records."}
	default:
		return unavailable(err)
	}
}
