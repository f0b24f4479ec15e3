// Package manage owns the management rules of Tollgate: accounts and their
// policies, users, API clients and API keys through their whole life,
// client tokens (the management credentials), the audit trail, and the
// bootstrap of a first account. Every operation takes the acting principal
// (an Actor) and decides itself who may do what: an admin manages their
// account's subtree, a member what they own; another tenant's record is not
// found, never forbidden. Inputs are Go values, errors are *Error with a
// Code; the management API (pkg/admin), the web console (pkg/console) and
// the CLI only translate. Every write is one transaction with its audit
// event.
package manage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tollgate/tollgate/pkg/authn"
	"github.com/tollgate/tollgate/pkg/bruteforce"
	"github.com/tollgate/tollgate/pkg/tokens"
	"github.com/tollgate/tollgate/storage"
)

// Store is the storage the service manages.
type Store interface {
	storage.Store
	storage.Transactor
}

// Hasher hashes generated secrets and compares presented ones with their
// hashes in constant time (*secret.Hasher).
type Hasher interface {
	Hash(ctx context.Context, data []byte) ([]byte, error)
	Compare(ctx context.Context, hash, data []byte) error
}

// Passwords hashes and verifies user passwords (*secret.Passwords).
type Passwords interface {
	Hash(password string) (string, error)
	Verify(hash, password string) (bool, error)
	VerifyDummy(password string)
}

// TokenIssuer issues the access token of a client token
// (*tokens.Service).
type TokenIssuer interface {
	Issue(ctx context.Context, requestID string, c tokens.Claims, scopes, audience []string) (string, storage.Token, error)
}

// Guard holds back usernames (per source) and sources with too many wrong
// passwords (*bruteforce.Guard of kind user, the one the eskimi_dsp grant
// and the console sign-in use, so all of them count together).
type Guard interface {
	Begin(ctx context.Context, id, source string) (bruteforce.Attempt, error)
}

// Options configure the service.
type Options struct {
	Store     Store
	Tokens    TokenIssuer
	Hasher    Hasher
	Passwords Passwords
	// Guard holds back the passwords users type to confirm who they are
	// (changing their own, a client token's confirmation, a new credential
	// where the account asks for it); nil: no brute-force protection.
	Guard Guard
	// ManagementScope lets a client token manage its account, acting as an
	// admin of it.
	ManagementScope string
	// AccessRights are the scope bundles a credential may be given by name.
	AccessRights        map[string][]string
	DefaultAccessRights string
	// RateClasses are the configured rate classes a credential may override.
	RateClasses []string
	// GrantTypes are the grant types a client may be allowed;
	// DefaultGrantTypes those a new client gets when its creator names
	// none (nil: client_credentials).
	GrantTypes          []string
	DefaultGrantTypes   []string
	RotationOverlap     time.Duration
	MaxRotationOverlap  time.Duration
	ClientTokenLifetime time.Duration
	// JWKSAllowHTTP accepts http jwks_uri URLs and non-public hosts (tests
	// and development).
	JWKSAllowHTTP bool
	// FederationAllowHTTP accepts http issuers and non-public hosts in
	// federated credentials (tests and development).
	FederationAllowHTTP bool
	// QuotaSpent reads what quotas have spent, for the remaining quota the
	// views show; nil shows none.
	QuotaSpent QuotaSpent
	// Usage reads the usage counts (*usage.Reader); nil answers
	// Unavailable.
	Usage UsageReader
	// WebhookSecrets seals webhook signing secrets; nil: webhooks cannot
	// be created (Unavailable).
	WebhookSecrets WebhookSecrets
	// WebhooksAllowHTTP accepts http webhook URLs and non-public hosts
	// (tests and development).
	WebhooksAllowHTTP bool
	Logger            *slog.Logger
	Now               func() time.Time
}

// Service is the management service.
type Service struct {
	opts  Options
	authn *authn.Authenticator

	dummyOnce sync.Once
	dummy     []byte // a hash no secret matches (HolderOfDisabled)
}

// New returns the service.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: opts, authn: authn.New(opts.Store, opts.Passwords, opts.Guard)}
}

// DefaultGrantTypes returns the grant types a new credential of kind gets
// when its creator names none: the configured list for a client, so one
// added in the console works with the eskimi_dsp grant too;
// client_credentials for a key, which always uses it alone.
func (s *Service) DefaultGrantTypes(kind storage.Kind) []string {
	if kind == storage.KindKey || len(s.opts.DefaultGrantTypes) == 0 {
		return []string{"client_credentials"}
	}
	return slices.Clone(s.opts.DefaultGrantTypes)
}

// GrantTypes returns the grant types a client may be allowed.
func (s *Service) GrantTypes() []string { return slices.Clone(s.opts.GrantTypes) }

// Now returns the service's time.
func (s *Service) Now() time.Time { return s.opts.Now() }

// Actor is who calls the service: a user, or a client holding the
// management scope acting as an admin of its account for its owner.
type Actor struct{ p *principal }

// principal is the actor's inside.
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
	// narrowed: the token acts on accountID, a descendant of the user's or
	// client's own account (see Narrow).
	narrowed bool
}

// UserActor returns user u acting from address remote (for the audit
// trail), through client (zero for the console). The caller has
// authenticated u (a token, a password, a session) and checked that u and
// their account are active: the service trusts it.
func UserActor(u storage.User, client storage.Client, remote string) Actor {
	return Actor{&principal{user: &u, human: &u, client: client, accountID: u.AccountID, admin: u.Role == storage.RoleAdmin, remote: remote}}
}

// ClientActor returns client c acting from address remote, with a token
// granting scopes, as an admin of its account. It must hold the management
// scope, and manages only while its owner is an active admin: demoting,
// disabling or deleting the owner takes the power away from the
// credentials they own. A client without an owner answers to nobody and
// never manages (Forbidden). Every credential a client creates is owned by
// that same person, so the rule holds through any chain of credentials.
func (s *Service) ClientActor(ctx context.Context, c storage.Client, scopes []string, remote string) (Actor, error) {
	if !slices.Contains(scopes, s.opts.ManagementScope) {
		return Actor{}, &Error{Code: Forbidden,
			Detail: fmt.Sprintf("A client token needs the %s scope to use the management API.", s.opts.ManagementScope)}
	}
	owner, err := s.opts.Store.GetUser(ctx, c.OwnerID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return Actor{}, unavailable(err)
	}
	if c.OwnerID == 0 || err != nil || owner.Role != storage.RoleAdmin || owner.Status != storage.StatusActive {
		return Actor{}, &Error{Code: Forbidden,
			Detail: "The client's owner is not an active admin: its token cannot manage the account."}
	}
	return Actor{&principal{client: c, human: &owner, accountID: c.AccountID, admin: true, remote: remote}}, nil
}

// Narrow limits act to account id, the way a token exchanged for that
// account (RFC 8693, audience urn:tollgate:account:<id>) is limited
// everywhere: act keeps its rights inside id's subtree and has none outside
// it, nor over the user themself (their password, role and status), who
// belongs above. id 0 or act's own account changes nothing; an account
// outside act's subtree is Forbidden (no token of Tollgate names one).
func (s *Service) Narrow(ctx context.Context, act Actor, id int64) (Actor, error) {
	p := act.p
	if id == 0 || id == p.accountID {
		return act, nil
	}
	ok, err := s.opts.Store.AccountInSubtree(ctx, p.accountID, id)
	if err != nil {
		return Actor{}, unavailable(err)
	}
	if !ok {
		return Actor{}, &Error{Code: Forbidden, Detail: "The token acts on an account outside its credential's reach."}
	}
	n := *p
	n.accountID, n.narrowed = id, true
	return Actor{&n}, nil
}

// AccountID returns the account act belongs to: the root of what an admin
// manages.
func (act Actor) AccountID() int64 { return act.p.accountID }

// Admin reports whether act manages their account's subtree (or only what
// they own).
func (act Actor) Admin() bool { return act.p.admin }

// userID returns the id of the person accountable for the call (the user,
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

// isSelf reports whether p is user id acting as themself.
// UserID is the id of the person accountable for the actor's calls: the
// user, or the owner of the client acting for itself.
func (a Actor) UserID() int64 { return a.p.userID() }

func (p *principal) isSelf(id int64) bool { return !p.narrowed && p.user != nil && p.user.ID == id }

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

// inSubtree reports whether account id is the principal's account or one of
// its descendants.
func (s *Service) inSubtree(ctx context.Context, p *principal, id int64) (bool, error) {
	if id == p.accountID {
		return true, nil
	}
	return s.opts.Store.AccountInSubtree(ctx, p.accountID, id)
}

// reach returns whether p may manage a record of account accountID: nil
// for an admin of its subtree; Forbidden for a member and a record of their
// own account; NotFound for everything else, so that nobody learns what
// lies outside their reach.
func (s *Service) reach(ctx context.Context, p *principal, accountID int64) error {
	if !p.admin {
		if accountID == p.accountID {
			return errForbidden()
		}
		return errNotFound()
	}
	ok, err := s.inSubtree(ctx, p, accountID)
	if err != nil {
		return unavailable(err)
	}
	if !ok {
		return errNotFound()
	}
	return nil
}
