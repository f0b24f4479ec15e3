package server

import (
	"errors"
	"net/http"

	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// handleRevoke serves POST /oauth/revoke (RFC 7009). The caller may revoke
// only its own tokens; an unknown token, or one of another client, answers
// 200 and changes nothing.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, caller, ok := s.authenticateCaller(w, r)
	if !ok {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeJSONError(w, r, errInvalidRequest("The token parameter is missing."))
		return
	}
	if err := s.revoke(r, caller, tok); err != nil {
		writeJSONError(w, r, errUnavailable(err))
		return
	}
	noStore(w.Header())
	w.WriteHeader(http.StatusOK)
}

// revoke revokes tok for caller; a token of another client is left as it
// is, and logged.
func (s *Server) revoke(r *http.Request, caller storage.Client, tok string) error {
	err := s.opts.Tokens.Revoke(r.Context(), caller.ID, tok)
	var notOwner *tokens.NotOwnerError
	if errors.As(err, &notOwner) {
		info(r).outcome = "not_owner"
		s.opts.Logger.InfoContext(r.Context(), "revocation of another client's token ignored",
			"client_id", caller.ID, "token_client_id", notOwner.Owner)
		return nil
	}
	return err
}
