package oauth

import (
	"time"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/tokens"
)

// Session is the fosite session of a token request: what the grant decided
// about the token it is about to mint.
type Session struct {
	tokens.Claims
}

var _ fosite.Session = (*Session)(nil)

// SetExpiresAt implements fosite.Session; only access tokens exist here.
func (s *Session) SetExpiresAt(key fosite.TokenType, exp time.Time) {
	if key == fosite.AccessToken {
		s.ExpiresAt = exp
	}
}

// GetExpiresAt implements fosite.Session.
func (s *Session) GetExpiresAt(key fosite.TokenType) time.Time {
	if key == fosite.AccessToken {
		return s.ExpiresAt
	}
	return time.Time{}
}

func (s *Session) GetUsername() string { return s.Username }
func (s *Session) GetSubject() string  { return s.Subject }

// Clone implements fosite.Session.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}
