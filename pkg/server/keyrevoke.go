package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/reqctx"
)

// KeyRevoker switches a credential off for whoever holds it
// (*manage.Service).
type KeyRevoker interface {
	// RevokeByHolder disables credential id, authenticated with its own
	// secret, and revokes its tokens, audited.
	RevokeByHolder(ctx context.Context, id int64, remote string) error
	// HolderOfDisabled reports whether secret is the current secret of
	// credential id, which is disabled (constant time).
	HolderOfDisabled(ctx context.Context, id int64, secret string) (bool, error)
}

// handleKeyRevoke serves POST /auth/access/revoke: whoever holds a key (or
// a client's secret) switches its credential off with it alone. The key is
// sent as for the key session — in X-API-Key, as the Basic password, or as
// client_secret — and authenticated like any use of it (constant time,
// brute-force counting); assertions and federated tokens are refused, as
// they prove no secret that could have leaked. The credential is disabled
// (reason holder) and every token of it revoked. A correct key of a
// credential already disabled answers the same 200, so a retry is
// harmless; anything else that does not authenticate is invalid_client.
func (s *Server) handleKeyRevoke(w http.ResponseWriter, r *http.Request) {
	if s.opts.KeyRevoker == nil {
		writeJSONError(w, r, &oauthError{status: http.StatusNotFound, code: "not_found", description: "No such endpoint."})
		return
	}
	form, oerr := s.readOptionalBody(r)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	creds, oerr := s.keySessionCredentials(r, form)
	if oerr != nil {
		writeJSONError(w, r, oerr)
		return
	}
	if creds.Method == oauth.MethodPrivateKeyJWT || creds.Method == oauth.MethodFederated {
		writeJSONError(w, r, errInvalidRequest("Only a key or a client secret switches its credential off here."))
		return
	}
	reqctx.SetPrincipal(r.Context(), reqctx.Principal{ClientID: creds.ClientID})
	ctx, outage := oauth.WithOutage(r.Context())
	authed, err := s.opts.Authenticator.Authenticate(ctx, creds)
	if err != nil {
		if outage.Err() == nil && errors.Is(err, fosite.ErrInvalidClient) {
			// The holder asking again, once the key is off.
			held, herr := s.opts.KeyRevoker.HolderOfDisabled(r.Context(), creds.ClientID, creds.Secret)
			if herr != nil {
				writeJSONError(w, r, errUnavailable(herr))
				return
			}
			if held {
				writeRevoked(w)
				return
			}
		}
		s.writeProviderError(w, r, outage, err)
		return
	}
	if err := s.opts.KeyRevoker.RevokeByHolder(r.Context(), authed.ID, reqctx.Addr(r.Context())); err != nil {
		writeJSONError(w, r, errUnavailable(err))
		return
	}
	writeRevoked(w)
}

func writeRevoked(w http.ResponseWriter) {
	noStore(w.Header())
	writeJSON(w, http.StatusOK, map[string]any{"revoked": true})
}
