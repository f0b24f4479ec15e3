package manage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/storage"
)

// Limits on usernames and passwords.
const (
	minUsernameLength = 3
	maxUsernameLength = 64
	minPasswordBytes  = 12
	maxPasswordBytes  = 1024
)

// UserInput is what creating a user sets.
type UserInput struct {
	// AccountID is the user's account (nil: the actor's).
	AccountID *int64
	Username  *string
	Password  *string
	// Role is the user's role (nil: member).
	Role *storage.Role
}

// UserUpdate is what changing a user sets; nil fields are left as they
// are.
type UserUpdate struct {
	Role   *storage.Role
	Status *storage.Status
}

// PasswordChange sets a user's password: OldPassword confirms who the
// actor is when they change their own, and is refused otherwise.
type PasswordChange struct {
	OldPassword *string
	Password    *string
}

// loadUser reads user id for p: a user may always read themself, anyone
// else needs reach.
func (s *Service) loadUser(ctx context.Context, p *principal, id int64) (storage.User, error) {
	u, err := s.opts.Store.GetUser(ctx, id)
	if err != nil {
		return u, storeError(err)
	}
	if p.isSelf(u.ID) {
		return u, nil
	}
	if err := s.reach(ctx, p, u.AccountID); err != nil {
		return u, err
	}
	return u, nil
}

func validUsername(s string) string {
	if n := len(s); n < minUsernameLength || n > maxUsernameLength {
		return fmt.Sprintf("must be %d to %d characters", minUsernameLength, maxUsernameLength)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)
		if !ok {
			return "may contain only letters A–Z and a–z, digits, and . _ @ -"
		}
	}
	return ""
}

func validPassword(s string) string {
	if n := len(s); n < minPasswordBytes || n > maxPasswordBytes {
		return fmt.Sprintf("must be %d to %d bytes", minPasswordBytes, maxPasswordBytes)
	}
	// The token endpoint refuses control characters (tab aside) in every
	// parameter: a password holding one could never sign in.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}

func errUsernameTaken() *Error { return &Error{Code: Conflict, Detail: "The username is taken."} }

// CreateUser creates a user (a member unless in.Role says otherwise) in
// act's account or, with in.AccountID, another account of act's subtree,
// with their default API key. Only admins may.
func (s *Service) CreateUser(ctx context.Context, act Actor, in UserInput) (storage.User, error) {
	p := act.p
	if !p.admin {
		return storage.User{}, errForbidden()
	}
	u := storage.User{AccountID: p.accountID, Role: storage.RoleMember, Status: storage.StatusActive}
	var errs []FieldError
	bad := func(field, detail string) { errs = append(errs, FieldError{Field: field, Detail: detail}) }
	if in.AccountID != nil {
		ok, err := s.inSubtree(ctx, p, *in.AccountID)
		if err != nil {
			return storage.User{}, unavailable(err)
		}
		if !ok {
			bad("account_id", "no such account among those you manage")
		}
		u.AccountID = *in.AccountID
	}
	if in.Username == nil {
		bad("username", "is required")
	} else if msg := validUsername(*in.Username); msg != "" {
		bad("username", msg)
	} else {
		u.Username = *in.Username
	}
	if in.Password == nil {
		bad("password", "is required")
	} else if msg := validPassword(*in.Password); msg != "" {
		bad("password", msg)
	}
	if in.Role != nil {
		if !in.Role.Valid() {
			bad("role", "must be admin or member")
		}
		u.Role = *in.Role
	}
	if errs != nil {
		return storage.User{}, invalid(errs)
	}
	hash, err := s.opts.Passwords.Hash(*in.Password)
	if err != nil {
		return storage.User{}, internal(err)
	}
	u.PasswordHash = hash
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var err error
		if u, err = tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, p.audit("user.create", "user", u.ID, u.AccountID,
			fmt.Sprintf("username %q, role %s", u.Username, u.Role))); err != nil {
			return err
		}
		key, err := s.newDefaultKey(ctx, tx, u.ID, u.AccountID)
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit("key.create_default", "key", key.ID, key.AccountID,
			"default key of new user "+strconv.FormatInt(u.ID, 10)))
		return err
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return storage.User{}, errUsernameTaken()
	}
	if err != nil {
		return storage.User{}, storeError(err)
	}
	return u, nil
}

// ListUsers lists one page of the users of account f.AccountID (and its
// subtree when f.Subtree is set) whose username contains f.Name. Only
// admins of the account may: a member is refused (Forbidden) on their own
// account.
func (s *Service) ListUsers(ctx context.Context, act Actor, f storage.UserFilter, pg storage.Page) ([]storage.User, error) {
	if err := s.reach(ctx, act.p, f.AccountID); err != nil {
		return nil, err
	}
	users, err := s.opts.Store.ListUsers(ctx, f, pg)
	if err != nil {
		return nil, storeError(err)
	}
	return users, nil
}

// GetUser reads user id: act themself, or a user an admin manages.
func (s *Service) GetUser(ctx context.Context, act Actor, id int64) (storage.User, error) {
	return s.loadUser(ctx, act.p, id)
}

// UpdateUser changes the role or status of user id, when its version is
// want (0: whatever it is). Only an admin of the user's account may, and
// not to demote or disable themself. Disabling a user revokes their tokens
// and disables the credentials they own.
func (s *Service) UpdateUser(ctx context.Context, act Actor, id, want int64, in UserUpdate) (storage.User, error) {
	p := act.p
	if _, err := s.loadUser(ctx, p, id); err != nil {
		return storage.User{}, err
	}
	if !p.admin {
		return storage.User{}, errForbidden()
	}
	var errs []FieldError
	if in.Role != nil {
		switch role := *in.Role; {
		case !role.Valid():
			errs = append(errs, FieldError{Field: "role", Detail: "must be admin or member"})
		case role != storage.RoleAdmin && p.isSelf(id):
			errs = append(errs, FieldError{Field: "role", Detail: "you may not demote yourself"})
		}
	}
	if in.Status != nil {
		switch st := *in.Status; {
		case !st.Valid():
			errs = append(errs, FieldError{Field: "status", Detail: "must be active or disabled"})
		case st != storage.StatusActive && p.isSelf(id):
			errs = append(errs, FieldError{Field: "status", Detail: "you may not disable yourself"})
		}
	}
	if errs != nil {
		return storage.User{}, invalid(errs)
	}
	var out storage.User
	err := s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var changes []string
		var disabled bool
		u, err := tx.UpdateUser(ctx, id, func(u *storage.User) error {
			if want != 0 && u.Version != want {
				return errPrecondition()
			}
			changes = changes[:0]
			if in.Role != nil && *in.Role != u.Role {
				changes = append(changes, fmt.Sprintf("role %s → %s", u.Role, *in.Role))
				u.Role = *in.Role
			}
			if in.Status != nil && *in.Status != u.Status {
				changes = append(changes, fmt.Sprintf("status %s → %s", u.Status, *in.Status))
				u.Status = *in.Status
				disabled = u.Status == storage.StatusDisabled
				if disabled {
					// Their tokens stay dead when the user comes back.
					u.RevokeTokens(s.opts.Now())
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = u
		detail := "no change"
		if changes != nil {
			detail = strings.Join(changes, ", ")
		}
		if _, err := tx.AppendAudit(ctx, p.audit("user.update", "user", u.ID, u.AccountID, detail)); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		// A disabled user's credentials stop working with them, and stay
		// off when the user comes back: someone turns them on knowingly.
		return disableOwned(ctx, tx, p, u)
	})
	if err != nil {
		return storage.User{}, storeError(err)
	}
	return out, nil
}

// ownedClients lists every credential user u owns, through tx.
func ownedClients(ctx context.Context, tx storage.Store, u storage.User, status storage.Status) ([]storage.Client, error) {
	var out []storage.Client
	pg := storage.Page{Limit: 100}
	for {
		cs, err := tx.ListClients(ctx, storage.ClientFilter{AccountID: u.AccountID, OwnerID: u.ID, Status: status}, pg)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if len(cs) < pg.Limit {
			return out, nil
		}
		pg.After = cs[len(cs)-1].ID
	}
}

// disableOwned disables every active credential of user u and revokes its
// tokens, with an audit event each.
func disableOwned(ctx context.Context, tx storage.Store, p *principal, u storage.User) error {
	cs, err := ownedClients(ctx, tx, u, storage.StatusActive)
	if err != nil {
		return err
	}
	for _, c := range cs {
		c, err := tx.UpdateClient(ctx, c.ID, func(c *storage.Client) error {
			c.Disable(storage.DisabledUser)
			return nil
		})
		if err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, p.audit(string(c.Kind)+".disable", string(c.Kind), c.ID, c.AccountID,
			"owner user "+strconv.FormatInt(u.ID, 10)+" disabled")); err != nil {
			return err
		}
	}
	return nil
}

// SetPassword sets the password of user id: a user changes their own (the
// old one confirms who they are, through the brute-force protection); an
// admin resets another user's. Every token obtained with the old password
// dies with it.
func (s *Service) SetPassword(ctx context.Context, act Actor, id int64, in PasswordChange) error {
	p := act.p
	u, err := s.loadUser(ctx, p, id)
	if err != nil {
		return err
	}
	self := p.isSelf(u.ID)
	if !self && !p.admin {
		return errForbidden()
	}
	var errs []FieldError
	switch {
	case self && in.OldPassword == nil:
		errs = append(errs, FieldError{Field: "old_password", Detail: "is required to change your own password"})
	case !self && in.OldPassword != nil:
		errs = append(errs, FieldError{Field: "old_password", Detail: "is only for changing your own password"})
	}
	if in.Password == nil {
		errs = append(errs, FieldError{Field: "password", Detail: "is required"})
	} else if msg := validPassword(*in.Password); msg != "" {
		errs = append(errs, FieldError{Field: "password", Detail: msg})
	}
	if errs != nil {
		return invalid(errs)
	}
	action := "user.reset_password"
	if self {
		action = "user.change_password"
		if err := s.confirmPassword(ctx, u, *in.OldPassword, "The old password is wrong."); err != nil {
			return err
		}
	}
	hash, err := s.opts.Passwords.Hash(*in.Password)
	if err != nil {
		return internal(err)
	}
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		u, err := tx.UpdateUser(ctx, u.ID, func(u *storage.User) error {
			u.PasswordHash = hash
			u.RevokeTokens(s.opts.Now())
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, p.audit(action, "user", u.ID, u.AccountID, ""))
		return err
	})
	if err != nil {
		return storeError(err)
	}
	return nil
}

// DeleteUser deletes user id and every credential they own, when its
// version is want (0: whatever it is). Only an admin of the user's account
// may, and not themself.
func (s *Service) DeleteUser(ctx context.Context, act Actor, id, want int64) error {
	p := act.p
	u, err := s.loadUser(ctx, p, id)
	if err != nil {
		return err
	}
	if !p.admin {
		return errForbidden()
	}
	if p.isSelf(u.ID) {
		return &Error{Code: Forbidden, Detail: "You may not delete yourself."}
	}
	if want != 0 && u.Version != want {
		return errPrecondition()
	}
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		// Lock the row and check the version again inside the transaction.
		if _, err := tx.UpdateUser(ctx, u.ID, func(cur *storage.User) error {
			if want != 0 && cur.Version != want {
				return errPrecondition()
			}
			return nil
		}); err != nil {
			return err
		}
		owned, err := ownedClients(ctx, tx, u, "")
		if err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, u.ID); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, p.audit("user.delete", "user", u.ID, u.AccountID, "username "+strconv.Quote(u.Username))); err != nil {
			return err
		}
		for _, c := range owned {
			if _, err := tx.AppendAudit(ctx, p.audit(string(c.Kind)+".delete", string(c.Kind), c.ID, c.AccountID,
				"owner user "+strconv.FormatInt(u.ID, 10)+" deleted")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return storeError(err)
	}
	return nil
}
