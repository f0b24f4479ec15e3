package server

import (
	"errors"
	"fmt"
	"net/http"

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

func (s *Server) revoke(r *http.Request, caller storage.Client, tok string) error {
	ctx := r.Context()
	sig, err := s.opts.Strategy.Signature(ctx, tok)
	if err != nil {
		return nil
	}
	rec, err := s.opts.Tokens.GetToken(ctx, sig)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get token: %w", err)
	}
	if rec.ClientID != caller.ID {
		info(r).outcome = "not_owner"
		s.opts.Logger.InfoContext(ctx, "revocation of another client's token ignored",
			"client_id", caller.ID, "token_client_id", rec.ClientID)
		return nil
	}
	// The token's key stays, revoked, until it expires: a reused token is
	// derived again by its next request, and must then be found taken
	// (storage.Tokens.CreateTokenOnce).
	if err := s.opts.Tokens.RevokeRequest(ctx, rec.RequestID); err != nil {
		return fmt.Errorf("revoke request: %w", err)
	}
	return nil
}
