// Package storage owns Tollgate's domain types (accounts, users, clients and
// issued tokens), the sentinel errors every backend returns, and the narrow
// contracts the backends implement. Backends live in sub-packages:
// storage/sql (GORM on PostgreSQL and SQLite), storage/redis and
// storage/memory (issued tokens). storage/conformance holds the one test
// suite per contract that every backend runs.
package storage

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Backends translate driver errors into these in one place
// and wrap everything else with %w; callers check them with errors.Is. Any
// other error means the backend failed and is answered as an outage (503).
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("conflict")
)

// Status is the life state of an account, a user or a client.
type Status string

const (
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == StatusActive || s == StatusDisabled }

// Role is what a user may manage inside their account subtree.
type Role string

const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember }

// Account is a node of the tenant tree. A credential of an account acts on it
// and on every descendant, never on an ancestor or a sibling. Disabling an
// account disables its whole subtree.
type Account struct {
	ID       int64
	ParentID int64 // 0 for a root account
	Name     string
	Status   Status
	// TokensValidAfter revokes the tokens of the account's whole subtree
	// (users' and credentials' alike): a token of the account or of a
	// descendant issued at or before it is inactive, whatever the status
	// later becomes. It is set when the account is disabled and when it is
	// enabled again (see SetStatus); zero revokes nothing.
	TokensValidAfter time.Time
	// Policies are the account's own settings; what is unset follows the
	// nearest ancestor that sets it (see Accounts.EffectivePolicies).
	Policies AccountPolicies
	// Budget limits the sum of the traffic of every credential in the
	// account's subtree; nil: no budget of its own (an ancestor's still
	// holds).
	Budget    *Budget
	Version   int64 // incremented by every update; the management API's ETag
	CreatedAt time.Time
	UpdatedAt time.Time
}

// KeysManagedBy says who may create, change and delete the credentials of
// an account.
type KeysManagedBy string

// Who manages credentials. The empty value inherits from the parent.
const (
	KeysManagedByInherit KeysManagedBy = ""
	// KeysManagedByAnyone lets members manage the credentials they own, and
	// admins those of their subtree: the behaviour with no policy set.
	KeysManagedByAnyone KeysManagedBy = "anyone"
	// KeysManagedByAdmins leaves members only reading their own.
	KeysManagedByAdmins KeysManagedBy = "admins"
)

// Valid reports whether k is a known value, the empty one included.
func (k KeysManagedBy) Valid() bool {
	return k == KeysManagedByInherit || k == KeysManagedByAnyone || k == KeysManagedByAdmins
}

// AccountPolicies are an account's own policy settings. A nil or empty
// field is unset: the account follows its nearest ancestor that sets it,
// and the root's default.
type AccountPolicies struct {
	// RequirePasswordForNewKeys asks whoever creates a credential of the
	// account for their own password.
	RequirePasswordForNewKeys *bool
	// KeysManagedBy says who may manage the account's credentials.
	KeysManagedBy KeysManagedBy
	// LeakedKeyAction says what happens to a credential of the account
	// reported as leaked (a secret-scanning partner report): disabled, or
	// only notified.
	LeakedKeyAction LeakedKeyAction
}

// LeakedKeyAction is what Tollgate does with a credential found leaked.
type LeakedKeyAction string

// What happens to a leaked credential. The empty value inherits from the
// parent.
const (
	LeakedKeyInherit LeakedKeyAction = ""
	// LeakedKeyDisable disables the credential at once (the default).
	LeakedKeyDisable LeakedKeyAction = "disable"
	// LeakedKeyNotify leaves it working and only reports it.
	LeakedKeyNotify LeakedKeyAction = "notify"
)

// Valid reports whether a is a known value, the empty one included.
func (a LeakedKeyAction) Valid() bool {
	return a == LeakedKeyInherit || a == LeakedKeyDisable || a == LeakedKeyNotify
}

// EffectivePolicies are the policies in force for an account, every field
// resolved along the way to the root.
type EffectivePolicies struct {
	RequirePasswordForNewKeys bool
	KeysManagedBy             KeysManagedBy   // never empty
	LeakedKeyAction           LeakedKeyAction // never empty
}

// DefaultPolicies are in force where no account on the way to the root
// sets a policy: what Tollgate did before accounts had policies.
var DefaultPolicies = EffectivePolicies{RequirePasswordForNewKeys: false, KeysManagedBy: KeysManagedByAnyone,
	LeakedKeyAction: LeakedKeyDisable}

// ResolvePolicies returns the policies in force for the first account of
// path, which runs from that account up to its root: each field comes from
// the nearest account that sets it, else from DefaultPolicies.
func ResolvePolicies(path []AccountPolicies) EffectivePolicies {
	out := DefaultPolicies
	var pw, managed, leaked bool
	for _, p := range path {
		if !leaked && p.LeakedKeyAction != LeakedKeyInherit {
			out.LeakedKeyAction, leaked = p.LeakedKeyAction, true
		}
		if !pw && p.RequirePasswordForNewKeys != nil {
			out.RequirePasswordForNewKeys, pw = *p.RequirePasswordForNewKeys, true
		}
		if !managed && p.KeysManagedBy != KeysManagedByInherit {
			out.KeysManagedBy, managed = p.KeysManagedBy, true
		}
	}
	return out
}

// SetStatus changes the account's status at now. Any change revokes every
// token of the subtree issued up to now: disabling ends them for good, and
// enabling again revives none, not even one minted while the account was
// disabled. Token issue times are whole seconds, so the cut-off is now
// truncated to the second and only ever moves forward.
func (a *Account) SetStatus(st Status, now time.Time) {
	if st == a.Status {
		return
	}
	a.Status = st
	if cut := now.UTC().Truncate(time.Second); cut.After(a.TokensValidAfter) {
		a.TokensValidAfter = cut
	}
}

// Standing is what token checks need to know of an account: whether it and
// every ancestor are active, and the latest TokensValidAfter among them.
type Standing struct {
	Active           bool
	TokensValidAfter time.Time
}

// TokenIssuedValid reports whether a token issued at issuedAt survives the
// cut-offs of the account and its ancestors: it was issued strictly after
// the latest one.
func (s Standing) TokenIssuedValid(issuedAt time.Time) bool {
	return issuedAt.After(s.TokensValidAfter)
}

// User is a person who signs in with a username and password.
type User struct {
	ID        int64
	AccountID int64
	// Username is unique across the installation regardless of letter
	// case (usernames are ASCII), and signing in ignores case too.
	Username     string
	PasswordHash string // argon2id (or bcrypt) in PHC string format
	Role         Role
	Status       Status
	// TokensValidAfter revokes the user's tokens: a token of this user
	// issued at or before it is inactive, whatever the user's status later
	// becomes. It is set when the password is reset or changed and when the
	// user is disabled (see RevokeTokens); zero revokes nothing.
	TokensValidAfter time.Time
	Version          int64 // incremented by every update
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// FoldUsername is the form of a username that uniqueness, sign-in and the
// brute-force counters compare: usernames are ASCII, so folding is
// lower-casing ASCII letters (and the same as SQL lower()). A name with
// other characters is folded the same way and simply matches no user.
func FoldUsername(username string) string {
	b := []byte(username)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// RevokeTokens makes every token of the user issued up to now inactive.
// Token issue times are whole seconds, so the cut-off is now truncated to
// the second: a token issued in that same second, before or after the
// call, is inactive too. A new token is good from the next second on. The
// cut-off only ever moves forward.
func (u *User) RevokeTokens(now time.Time) {
	if cut := now.UTC().Truncate(time.Second); cut.After(u.TokensValidAfter) {
		u.TokensValidAfter = cut
	}
}

// TokenIssuedValid reports whether a token of the user issued at issuedAt
// survives TokensValidAfter: it was issued strictly after it.
func (u User) TokenIssuedValid(issuedAt time.Time) bool {
	return issuedAt.After(u.TokensValidAfter)
}

// Kind tells how a credential is presented to people: as an API client or as
// an API key. Both are the same record and work the same way.
type Kind string

const (
	KindClient Kind = "client"
	KindKey    Kind = "key"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindClient || k == KindKey }

// DisabledReason says why a credential is disabled: set when its status
// becomes disabled, empty while it is active.
type DisabledReason string

const (
	// DisabledManually: someone switched it off (the management API, the
	// CLI or the console).
	DisabledManually DisabledReason = "manual"
	// DisabledUnused: the sweeper, because it went unused for the
	// configured time.
	DisabledUnused DisabledReason = "unused"
	// DisabledExpired: the sweeper, because its expiry date passed.
	DisabledExpired DisabledReason = "expired"
	// DisabledUser: its owner was disabled, and it with them.
	DisabledUser DisabledReason = "user"
	// DisabledLeaked: a secret-scanning partner found it in public (a
	// GitHub secret-scanning report), and the account's leaked-key policy
	// says disable.
	DisabledLeaked DisabledReason = "leaked"
	// DisabledByHolder: whoever held the key switched it off with the key
	// alone (POST /auth/access/revoke).
	DisabledByHolder DisabledReason = "holder"
)

// Valid reports whether r is a known reason, or none.
func (r DisabledReason) Valid() bool {
	switch r {
	case "", DisabledManually, DisabledUnused, DisabledExpired, DisabledUser, DisabledLeaked, DisabledByHolder:
		return true
	}
	return false
}

// Client is THE credential: an OAuth 2.0 client and an API key are the same
// record. Its secret is stored only as a hash.
type Client struct {
	ID          int64 // the public, numeric client_id
	AccountID   int64
	OwnerID     int64 // the user who owns it; 0 for none
	Kind        Kind
	IsDefault   bool // the owner's system-generated default API key
	Name        string
	Description string
	SecretHash  string
	// SecretHint is a few trailing characters of the secret, enough for a
	// person to tell keys apart and never enough to matter. A key's is
	// the real end of the key (apikey.KeyHint): the secret's last four
	// characters and the checksum.
	SecretHint string
	// AccessRights names the configured scope bundle the credential was
	// given; empty when its scopes were chosen one by one.
	AccessRights  string
	GrantTypes    []string
	Scopes        []string
	MayIntrospect bool
	// RateLimits overrides the configured limit of some rate classes for
	// this credential; nil keeps the configured ones.
	RateLimits map[string]RateLimit
	// Quota bounds the calls (their cost) per UTC day or month; nil: none.
	Quota *Quota
	// AllowedCIDRs are the networks the credential may be used from, in
	// canonical prefix form (netip.Prefix.String of the masked prefix);
	// empty: anywhere.
	AllowedCIDRs []string
	// TokenLifetime overrides the configured lifetime of the tokens this
	// client obtains; 0 means the configured default of the grant.
	TokenLifetime time.Duration
	// ReuseTokens answers a client_credentials request for the same scopes
	// with the client's current token while it has most of its life left,
	// instead of minting another (bounded storage for clients that never
	// cache their token).
	ReuseTokens bool
	// AccessTokenStrategy is the format of the client's access tokens:
	// StrategyOpaque or StrategyJWT (RFC 9068). Empty is stored as
	// StrategyOpaque.
	AccessTokenStrategy string
	// TokenEndpointAuthMethod is how the client authenticates (RFC 7591
	// names): AuthSecretBasic or AuthSecretPost (a secret, sent either
	// way, or an API key) or AuthPrivateKeyJWT (a JWT signed with a key of
	// JWKS or JWKSURI; its secret is then never accepted). Empty is stored
	// as AuthSecretBasic.
	TokenEndpointAuthMethod string
	// JWKS is the client's public JWK Set (its JSON), or JWKSURI where it
	// is published; at most one is set, only for AuthPrivateKeyJWT.
	JWKS    string
	JWKSURI string
	// DPoPBoundAccessTokens requires a DPoP proof (RFC 9449) at the token
	// endpoint, so that every token of the client is bound to a key
	// (RFC 9449 §5.2's dpop_bound_access_tokens). Any client may send a
	// proof and get a bound token.
	DPoPBoundAccessTokens bool
	Status                Status
	// DisabledReason is why Status is disabled; empty while it is active
	// (backends store none for an active client, whatever it says).
	DisabledReason DisabledReason
	// Generation is carried by every token minted with the current secret.
	// Bumping it revokes all of them at once without scanning the token
	// store.
	Generation int64
	// After a rotation the previous secret keeps working, and the tokens
	// minted with it stay active, until PreviousRetireAt.
	PreviousSecretHash string
	PreviousGeneration int64
	PreviousRetireAt   time.Time // zero: no previous secret
	ExpiresAt          time.Time // zero: never expires
	LastUsedAt         time.Time // zero: never used
	// EnabledAt is when the credential was last switched on again (zero:
	// never): the unused sweep counts from the later of LastUsedAt and
	// EnabledAt (CreatedAt when both are zero), so enabling a swept credential gives it a
	// fresh grace period instead of losing it at the next sweep.
	EnabledAt time.Time
	CreatedBy int64 // user id; 0 when created by the system
	Version   int64 // incremented by every update
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RateLimit is a per-second rate with a burst.
type RateLimit struct {
	Rate  int
	Burst int
}

// QuotaPeriod is the window a Quota refills at the end of: a UTC calendar
// day or month.
type QuotaPeriod string

const (
	QuotaDay   QuotaPeriod = "day"
	QuotaMonth QuotaPeriod = "month"
)

// Valid reports whether p is a known period.
func (p QuotaPeriod) Valid() bool { return p == QuotaDay || p == QuotaMonth }

// MaxQuotaLimit bounds Quota.Limit: far beyond any real quota, and far
// from overflowing a counter (or a Lua number, exact to 2^53).
const MaxQuotaLimit = 1 << 50

// Quota is the most a credential, or an account's subtree, may spend in one
// Period: each call costs 1 unless the gateway says otherwise.
type Quota struct {
	Limit  int64 // 1..MaxQuotaLimit
	Period QuotaPeriod
}

// Valid reports whether q can be enforced.
func (q Quota) Valid() bool { return q.Limit >= 1 && q.Limit <= MaxQuotaLimit && q.Period.Valid() }

// Start answers the beginning of the period holding t, and the beginning of
// the next one (the refill), both in UTC.
func (q Quota) Start(t time.Time) (start, next time.Time) {
	t = t.UTC()
	if q.Period == QuotaMonth {
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 0, 1)
}

// Budget is what the whole subtree of an account may use together: a
// per-second limit per rate class (summed over every credential in the
// subtree) and a quota. Budgets nest: a call counts against the budget of
// its credential's account and of every ancestor.
type Budget struct {
	RateLimits map[string]RateLimit
	Quota      *Quota
}

// Empty reports whether b limits nothing.
func (b Budget) Empty() bool { return len(b.RateLimits) == 0 && b.Quota == nil }

// AccountBudget is the budget of one account of a chain.
type AccountBudget struct {
	AccountID int64
	Budget    Budget
}

// BudgetChain is what limits the traffic of an account's credentials
// besides their own limits: the root of the account's tree (whose id every
// counter of the tree is stored under) and the budgets of the account and
// of every ancestor that has one, the nearest first.
type BudgetChain struct {
	Root    int64
	Budgets []AccountBudget
}

// PreviousSecretValid reports whether the secret replaced by the last
// rotation still works at now.
func (c Client) PreviousSecretValid(now time.Time) bool {
	return c.PreviousSecretHash != "" && now.Before(c.PreviousRetireAt)
}

// TokenGenerationValid reports whether a token minted under generation gen
// is still good at now: it was minted with the current secret, or with the
// previous one inside its overlap window.
func (c Client) TokenGenerationValid(gen int64, now time.Time) bool {
	return gen == c.Generation || (gen == c.PreviousGeneration && c.PreviousSecretValid(now))
}

// Revoke makes every token of the client inactive and drops the previous
// secret: used when the client is disabled.
func (c *Client) Revoke() {
	c.Generation = max(c.Generation, c.PreviousGeneration) + 1
	c.PreviousSecretHash, c.PreviousGeneration, c.PreviousRetireAt = "", 0, time.Time{}
}

// Disable switches an active client off for reason and revokes its
// tokens. A client already disabled keeps the reason it was disabled for.
func (c *Client) Disable(reason DisabledReason) {
	if c.Status == StatusDisabled {
		return
	}
	c.Revoke()
	c.Status, c.DisabledReason = StatusDisabled, reason
}

// Enable switches the client on at now, forgetting why it was off. A client
// that was off gets a fresh grace period from the unused sweep (EnabledAt);
// one already on is left as it is.
func (c *Client) Enable(now time.Time) {
	if c.Status == StatusActive {
		return
	}
	c.Status, c.DisabledReason, c.EnabledAt = StatusActive, "", now.UTC()
}

// Usable reports whether the client may authenticate at time now: it is
// active and has not expired.
func (c Client) Usable(now time.Time) bool {
	if c.Status != StatusActive {
		return false
	}
	return c.ExpiresAt.IsZero() || now.Before(c.ExpiresAt)
}

// HasGrantType reports whether the client may use grant type gt.
func (c Client) HasGrantType(gt string) bool { return slices.Contains(c.GrantTypes, gt) }

// Token is the compact record of an issued access token. The raw token never
// reaches storage: records are keyed by the token's HMAC signature.
type Token struct {
	Signature  string
	RequestID  string
	ClientID   int64
	Generation int64 // the client's generation when the token was minted
	AccountID  int64
	Subject    string // the user id for user tokens, empty for client tokens
	Username   string
	GrantType  string
	Scopes     []string
	Audience   []string
	IssuedAt   time.Time
	ExpiresAt  time.Time
	// JKT binds the token to a DPoP key (RFC 9449 §6.1): the base64url
	// SHA-256 JWK thumbprint (RFC 7638) of the key whose proofs must come
	// with it. Empty for a Bearer token.
	JKT string
}

// Rooted returns the signature or request id id of a token whose format
// names its root account (ADR 0013): "a<root>." and id. A token store may
// keep such a token, and its request's revocation marker, with the root
// account's other keys (in Redis, under the root's hash tag), so that one
// script can read the record and take the check's decision. Every token of
// a request with a rooted id has a rooted signature of the same root.
func Rooted(root int64, id string) string {
	return "a" + strconv.FormatInt(root, 10) + "." + id
}

// SplitRooted returns the root and the rest of an id Rooted made; ok is
// false for any other string (a root of another spelling, zero or below,
// or an empty rest).
func SplitRooted(id string) (root int64, rest string, ok bool) {
	head, rest, found := strings.Cut(id, ".")
	if !found || rest == "" || head == "" || head[0] != 'a' {
		return 0, "", false
	}
	if root, ok = ParseID(head[1:]); !ok {
		return 0, "", false
	}
	return root, rest, true
}

// ParseID reads a record's id as every id is written: a positive int64 in
// decimal, without a sign or leading zeros, so that each id has one
// spelling.
func ParseID(s string) (int64, bool) {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false // beyond an int64
	}
	return id, true
}

// TokenTerms are what a token's record must hold for a call made with it
// to be decided (and spent): checked on the record before the decision, in
// the same step, so that a call its record refuses spends nothing. A
// token's validation checks more (its user's standing); these are the
// checks a Redis script can make on the record alone.
type TokenTerms struct {
	ClientID  int64
	AccountID int64
	// Subject is the token's user, empty for a client's own token.
	Subject string
	// Generations are the client's generations its tokens may carry.
	Generations []int64
	// IssuedAfter: the token must have been issued after it (the latest
	// cut-off of its accounts and its user).
	IssuedAfter time.Time
	// JKT is the DPoP key the token must be bound to: empty for a token
	// presented as a Bearer token, which must be bound to none.
	JKT string
	// Scopes must all be the token's.
	Scopes []string
}

// Hold reports whether t's record holds the terms.
func (tt TokenTerms) Hold(t Token) bool {
	if t.ClientID != tt.ClientID || t.AccountID != tt.AccountID || t.Subject != tt.Subject || !slices.Contains(tt.Generations, t.Generation) ||
		!t.IssuedAt.After(tt.IssuedAfter) || t.JKT != tt.JKT {
		return false
	}
	for _, s := range tt.Scopes {
		if !slices.Contains(t.Scopes, s) {
			return false
		}
	}
	return true
}

// Page selects one page of a list ordered by id: the first Limit records
// whose id is greater than After.
type Page struct {
	After int64
	Limit int
}

// Accounts stores the account tree.
type Accounts interface {
	CreateAccount(ctx context.Context, a Account) (Account, error)
	GetAccount(ctx context.Context, id int64) (Account, error)
	// UpdateAccount works like UpdateClient; ID, ParentID and CreatedAt
	// cannot be changed.
	UpdateAccount(ctx context.Context, id int64, update func(*Account) error) (Account, error)
	// ListChildren lists the direct children of account parentID.
	ListChildren(ctx context.Context, parentID int64, page Page) ([]Account, error)
	// AccountInSubtree reports whether account id is rootID or one of its
	// descendants. Unknown ids answer false, not an error.
	AccountInSubtree(ctx context.Context, rootID, id int64) (bool, error)
	// AccountActive reports whether account id and every one of its
	// ancestors are active. An unknown id answers ErrNotFound.
	AccountActive(ctx context.Context, id int64) (bool, error)
	// AccountStanding answers, in one read, whether account id and every
	// one of its ancestors are active and the latest TokensValidAfter among
	// them (zero when none is set). An unknown id answers ErrNotFound.
	AccountStanding(ctx context.Context, id int64) (Standing, error)
	// EffectivePolicies answers, in one read, the policies in force for
	// account id (ResolvePolicies over it and its ancestors). An unknown id
	// answers ErrNotFound.
	EffectivePolicies(ctx context.Context, id int64) (EffectivePolicies, error)
	// AccountBudgets answers, in one read, the root of account id's tree
	// and the budgets of id and its ancestors (see BudgetChain). An unknown
	// id answers ErrNotFound.
	AccountBudgets(ctx context.Context, id int64) (BudgetChain, error)
}

// Users stores users.
type Users interface {
	// CreateUser answers ErrAlreadyExists when the username is taken, in
	// any letter case.
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, id int64) (User, error)
	// GetUserByUsername finds the user whose username equals username
	// without regard to ASCII letter case.
	GetUserByUsername(ctx context.Context, username string) (User, error)
	// UpdateUser loads user id, applies update and stores the result in one
	// transaction, like UpdateClient. ID, AccountID and CreatedAt cannot be
	// changed; a taken username answers ErrAlreadyExists.
	UpdateUser(ctx context.Context, id int64, update func(*User) error) (User, error)
	// DeleteUser removes the user and every credential they own.
	DeleteUser(ctx context.Context, id int64) error
	// ListUsers lists the users of account f.AccountID, or of its whole
	// subtree when f.Subtree is set.
	ListUsers(ctx context.Context, f UserFilter, page Page) ([]User, error)
}

// UserFilter selects users.
type UserFilter struct {
	AccountID int64
	Subtree   bool
	// Name keeps the users whose username contains it, ignoring case
	// (ASCII letters only on SQLite); "" keeps every one.
	Name string
}

// Clients stores credentials.
type Clients interface {
	CreateClient(ctx context.Context, c Client) (Client, error)
	GetClient(ctx context.Context, id int64) (Client, error)
	// UpdateClient loads client id, applies update and stores the result in
	// one transaction. An error from update aborts the change and is returned
	// as is. ID, AccountID and CreatedAt cannot be changed.
	UpdateClient(ctx context.Context, id int64, update func(*Client) error) (Client, error)
	DeleteClient(ctx context.Context, id int64) error
	// TouchClient records that the client was used at t. Backends may skip
	// the write when the stored value is less than a minute older than t.
	TouchClient(ctx context.Context, id int64, t time.Time) error
	// TouchClients records many uses in one statement; a stored value is
	// never moved backwards and unknown ids are ignored.
	TouchClients(ctx context.Context, uses map[int64]time.Time) error
	// ListClients lists credentials of account f.AccountID and, when
	// f.Subtree is set, of its descendants, narrowed by the other fields.
	ListClients(ctx context.Context, f ClientFilter, page Page) ([]Client, error)
	// DisableStale disables, in one statement, every active client unused
	// since unusedSince (its last use or, when later, its EnabledAt; its
	// creation when it has neither), and every
	// active client whose expiry has passed at now; each disabled client's
	// tokens are revoked, and its DisabledReason is DisabledExpired when
	// its expiry has passed, DisabledUnused otherwise. It returns the
	// clients it disabled, as stored after the change, so concurrent
	// callers never both report one.
	DisableStale(ctx context.Context, unusedSince, now time.Time) ([]Client, error)
}

// ClientFilter selects credentials. Zero fields do not filter.
type ClientFilter struct {
	AccountID int64
	Subtree   bool
	OwnerID   int64
	Status    Status
	Kind      Kind
	// Name keeps the credentials whose name contains it, ignoring case
	// (ASCII letters only on SQLite).
	Name string
}

// AuditEvent records who did what to which record, when, from where, and
// how it ended. It never carries a secret.
type AuditEvent struct {
	ID            int64
	Time          time.Time
	AccountID     int64  // the account the target belongs to
	ActorUserID   int64  // 0 when not acting as a user
	ActorClientID int64  // the credential the actor authenticated with; 0 for the system
	Action        string // e.g. "client.create", "client.rotate_secret", "key.auto_disable"
	TargetType    string // "account", "user", "client", "key"
	TargetID      int64
	RemoteAddr    string
	Outcome       string // "success" or "failure"
	Detail        string // a short human-readable note, never a secret
}

// AuditFilter selects audit events of account AccountID (and its subtree
// when Subtree is set).
type AuditFilter struct {
	AccountID int64
	Subtree   bool
}

// Audit stores the audit trail.
type Audit interface {
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// ListAudit lists events newest first: page.After is an event id to
	// continue below.
	ListAudit(ctx context.Context, f AuditFilter, page Page) ([]AuditEvent, error)
}

// Store is every relational contract together.
type Store interface {
	Accounts
	Users
	Clients
	Audit
	FederatedCredentials
	Webhooks
}

// Transactor runs fn in one transaction: every write fn makes through tx
// lands together, or none does when fn (or the commit) fails. fn's error is
// returned unchanged.
type Transactor interface {
	InTx(ctx context.Context, fn func(tx Store) error) error
}

// Access token strategies of a client (storage.Client.AccessTokenStrategy).
const (
	StrategyOpaque = "opaque"
	StrategyJWT    = "jwt"
)

// Client authentication methods (storage.Client.TokenEndpointAuthMethod,
// RFC 7591 §2).
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
)

// UsesPrivateKeyJWT reports whether c authenticates with signed assertions
// instead of a secret.
func (c Client) UsesPrivateKeyJWT() bool { return c.TokenEndpointAuthMethod == AuthPrivateKeyJWT }

// FederatedCredential makes a client trust the tokens an external OpenID
// Connect issuer signs for one subject (workload identity federation, after
// Azure's federated identity credentials): a token of Issuer whose sub is
// Subject, whose aud names one of Audiences and whose top-level string
// claims equal Claims authenticates the client in place of a secret.
type FederatedCredential struct {
	ID       int64
	ClientID int64
	// Name is a label, unique among the client's credentials.
	Name string
	// Issuer is the issuer URL, compared exactly with the token's iss and
	// with the issuer of its discovery document.
	Issuer string
	// Subject is compared exactly with the token's sub.
	Subject string
	// Audiences are the aud values accepted; the token must name one.
	Audiences []string
	// Claims are further top-level string claims the token must carry with
	// exactly these values (GitHub's repository_id, job_workflow_ref).
	Claims    map[string]string
	CreatedBy int64 // the user who added it; 0 for a client token
	CreatedAt time.Time
}

// FederatedCredentials stores the federated credentials of clients.
// Deleting a client deletes its federated credentials.
type FederatedCredentials interface {
	// CreateFederatedCredential stores fc under fc.ClientID and returns it
	// with its ID. It answers ErrAlreadyExists when the client has a
	// credential of that name, ErrNotFound when there is no such client.
	CreateFederatedCredential(ctx context.Context, fc FederatedCredential) (FederatedCredential, error)
	// ListFederatedCredentials returns the client's credentials, oldest
	// first; none for an unknown client.
	ListFederatedCredentials(ctx context.Context, clientID int64) ([]FederatedCredential, error)
	// DeleteFederatedCredential removes credential id of client clientID;
	// ErrNotFound when the client has no such credential.
	DeleteFederatedCredential(ctx context.Context, clientID, id int64) error
}

// OneTimeIDs remembers ids that may be used once (the jti of client
// assertions) until they expire, across every instance.
type OneTimeIDs interface {
	// UseOnce records id until expiresAt. It answers ErrAlreadyExists when
	// id was recorded before and has not expired.
	UseOnce(ctx context.Context, id string, expiresAt time.Time) error
}

// SigningKey is a key that signs access tokens, kept encrypted: the
// storage never sees a usable private key.
type SigningKey struct {
	// ID is the key id (the JWS "kid"), unique.
	ID string
	// Algorithm is the JWS algorithm the key signs with (ES256, RS256,
	// EdDSA).
	Algorithm string
	// Sealed is the private key, encrypted under the key-encryption key.
	Sealed []byte
	// CreatedAt is when the key was made and published.
	CreatedAt time.Time
	// ActiveAt is when the key starts signing: a key signs from its
	// ActiveAt until the ActiveAt of the next key. It is unique, so that
	// two instances rotating at once make one key, not two.
	ActiveAt time.Time
}

// SigningKeys stores the signing keys every instance shares.
type SigningKeys interface {
	// CreateSigningKey stores k. It answers ErrAlreadyExists when its ID or
	// its ActiveAt is taken.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every key, oldest ActiveAt first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteSigningKey removes key id; ErrNotFound when there is none.
	DeleteSigningKey(ctx context.Context, id string) error
}

// Tokens stores issued tokens until they expire.
type Tokens interface {
	// CreateToken stores t until t.ExpiresAt. It answers ErrAlreadyExists
	// when the signature is taken.
	CreateToken(ctx context.Context, t Token) error
	// CreateTokenOnce stores t like CreateToken, unless its signature was
	// taken by a token that has not expired, even one revoked since (with
	// RevokeRequest): then it answers ErrAlreadyExists. Reused tokens are
	// derived, not random, so a revoked one must never be stored again.
	CreateTokenOnce(ctx context.Context, t Token) error
	// GetToken answers ErrNotFound for an unknown, expired or revoked token.
	GetToken(ctx context.Context, signature string) (Token, error)
	// DeleteToken removes the token; deleting an unknown token is no error.
	DeleteToken(ctx context.Context, signature string) error
	// RevokeRequest removes every token of the request id; an unknown
	// request id is no error.
	RevokeRequest(ctx context.Context, requestID string) error
}

// Pinger reports whether a backend can be reached.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Webhook is a subscription of an account to lifecycle events: they are
// POSTed to URL, signed with its secret (Standard Webhooks).
type Webhook struct {
	ID        int64
	AccountID int64
	URL       string
	// Events are the event types it hears of (webhooks.EventTypes).
	Events      []string
	Description string
	// IncludeSubtree makes it hear of the events of the account's
	// descendants too, not only of the account's own credentials.
	IncludeSubtree bool
	// Enabled: a disabled webhook is sent nothing (its pending deliveries
	// wait).
	Enabled bool
	// SecretSealed is the signing secret, encrypted under the
	// key-encryption key (never hashed: it is needed to sign).
	SecretSealed []byte
	CreatedBy    int64
	Version      int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Delivery states (WebhookDelivery.Status).
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// WebhookDelivery is one event to deliver to one webhook: a row of the
// outbox, written in the transaction of the change it tells of, and its
// delivery log.
type WebhookDelivery struct {
	ID        int64
	WebhookID int64
	// EventID is the Standard Webhooks message id (webhook-id):
	// deterministic where the event is, unique per webhook.
	EventID   string
	EventType string
	// Payload is the JSON body, never carrying a secret.
	Payload []byte
	// Status is DeliveryPending, DeliveryDelivered or DeliveryFailed.
	Status   string
	Attempts int
	// NextAttemptAt is when a pending delivery is due (zero once done).
	NextAttemptAt time.Time
	// LastStatus is the HTTP status of the last attempt (0: none);
	// LastError the class of its failure ("timeout", "refused", …).
	LastStatus  int
	LastError   string
	DeliveredAt time.Time
	// CreatedAt is when the delivery was queued; retention counts from it.
	CreatedAt time.Time
}

// WebhookFilter selects the webhooks of account AccountID (and its subtree
// when Subtree is set).
type WebhookFilter struct {
	AccountID int64
	Subtree   bool
}

// Webhooks stores webhook subscriptions and their outbox.
type Webhooks interface {
	// CreateWebhook stores w and returns it with its ID, Version 1 and
	// times; ErrConflict for an unknown account.
	CreateWebhook(ctx context.Context, w Webhook) (Webhook, error)
	GetWebhook(ctx context.Context, id int64) (Webhook, error)
	// ListWebhooks lists webhooks in id order after page.After.
	ListWebhooks(ctx context.Context, f WebhookFilter, page Page) ([]Webhook, error)
	// UpdateWebhook changes webhook id through update, atomically; the
	// error of update is returned unchanged.
	UpdateWebhook(ctx context.Context, id int64, update func(*Webhook) error) (Webhook, error)
	// DeleteWebhook removes webhook id and its deliveries.
	DeleteWebhook(ctx context.Context, id int64) error
	// WebhooksFor returns the enabled webhooks hearing of eventType for
	// account accountID: the account's own, and those of its ancestors
	// that include their subtree.
	WebhooksFor(ctx context.Context, accountID int64, eventType string) ([]Webhook, error)
	// EnqueueDeliveries adds pending deliveries due at their NextAttemptAt
	// and created at their CreatedAt (zero times: now); a delivery whose
	// (WebhookID, EventID) is already queued is skipped, so that an event
	// reported twice is delivered once.
	EnqueueDeliveries(ctx context.Context, ds []WebhookDelivery) error
	// PruneDeliveries deletes up to limit finished deliveries (delivered
	// or failed, never pending) created before before, oldest first, and
	// returns how many it deleted.
	PruneDeliveries(ctx context.Context, before time.Time, limit int) (int64, error)
	// ClaimDeliveries takes up to limit pending deliveries due at now whose
	// webhook is enabled, and moves their NextAttemptAt to now+lease, so
	// that no other instance takes them while they are attempted (and they
	// are taken again if this one dies).
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]WebhookDelivery, error)
	// FinishAttempt records the outcome of an attempt of d: Status,
	// Attempts, NextAttemptAt, LastStatus, LastError, DeliveredAt.
	FinishAttempt(ctx context.Context, d WebhookDelivery) error
	// ListDeliveries lists the deliveries of webhook webhookID, newest
	// first; page.After is a delivery id to continue below.
	ListDeliveries(ctx context.Context, webhookID int64, page Page) ([]WebhookDelivery, error)
	// ClientsExpiringBetween returns the active credentials whose
	// ExpiresAt is in [from, to).
	ClientsExpiringBetween(ctx context.Context, from, to time.Time) ([]Client, error)
}
