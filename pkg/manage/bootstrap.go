package manage

import (
	"context"
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/secret"
	"github.com/tollgate/tollgate/storage"
)

// BootstrapInput is the first account of an installation: a root account,
// its admin user and a first client.
type BootstrapInput struct {
	AccountName string
	Username    string
	// Password is the admin's; the caller has checked its length.
	Password string
	// ClientName, Scopes and GrantTypes describe the first client, which
	// may introspect tokens.
	ClientName string
	Scopes     []string
	GrantTypes []string
}

// Bootstrapped is what Bootstrap created, with the client's secret, shown
// once.
type Bootstrapped struct {
	Account      storage.Account
	User         storage.User
	Client       storage.Client
	ClientSecret string
}

// Bootstrap creates a root account, its admin user (with their default API
// key) and a first client owned by the admin, in one transaction with its
// audit event: a failure leaves no account or user behind whose password
// was never shown. A taken username is a Conflict, found before anything
// is written. Nobody acts: the operator of the machine runs it.
func (s *Service) Bootstrap(ctx context.Context, in BootstrapInput) (Bootstrapped, error) {
	if _, err := s.opts.Store.GetUserByUsername(ctx, in.Username); err == nil {
		return Bootstrapped{}, errUsernameTaken()
	} else if !errors.Is(err, storage.ErrNotFound) {
		return Bootstrapped{}, unavailable(fmt.Errorf("look up user: %w", err))
	}
	passwordHash, err := s.opts.Passwords.Hash(in.Password)
	if err != nil {
		return Bootstrapped{}, internal(fmt.Errorf("hash password: %w", err))
	}
	var out Bootstrapped
	out.ClientSecret, err = secret.Generate()
	if err != nil {
		return Bootstrapped{}, internal(err)
	}
	secretHash, err := s.opts.Hasher.Hash(ctx, []byte(out.ClientSecret))
	if err != nil {
		return Bootstrapped{}, internal(err)
	}
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		var err error
		if out.Account, err = tx.CreateAccount(ctx, storage.Account{Name: in.AccountName, Status: storage.StatusActive}); err != nil {
			return fmt.Errorf("create account: %w", err)
		}
		if out.User, err = tx.CreateUser(ctx, storage.User{AccountID: out.Account.ID, Username: in.Username,
			PasswordHash: passwordHash, Role: storage.RoleAdmin, Status: storage.StatusActive}); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		out.Client, err = tx.CreateClient(ctx, storage.Client{
			AccountID:     out.Account.ID,
			OwnerID:       out.User.ID,
			Kind:          storage.KindClient,
			Name:          in.ClientName,
			Description:   "Created by tollgate bootstrap.",
			SecretHash:    string(secretHash),
			SecretHint:    apikey.Hint(out.ClientSecret),
			GrantTypes:    in.GrantTypes,
			Scopes:        in.Scopes,
			MayIntrospect: true,
			Status:        storage.StatusActive,
			CreatedBy:     out.User.ID,
		})
		if err != nil {
			return fmt.Errorf("create client: %w", err)
		}
		// Every user has a default API key.
		if _, err := s.newDefaultKey(ctx, tx, out.User.ID, out.Account.ID); err != nil {
			return fmt.Errorf("create default key: %w", err)
		}
		_, err = tx.AppendAudit(ctx, storage.AuditEvent{AccountID: out.Account.ID, Action: "account.bootstrap",
			TargetType: "account", TargetID: out.Account.ID, Outcome: "success",
			Detail: fmt.Sprintf("root account, admin user %d and client %d created by tollgate bootstrap", out.User.ID, out.Client.ID)})
		return err
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return Bootstrapped{}, errUsernameTaken()
	}
	if err != nil {
		return Bootstrapped{}, unavailable(err)
	}
	return out, nil
}
