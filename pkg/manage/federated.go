package manage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/storage"
)

// Bounds of federated credentials.
const (
	// MaxFederatedCredentials is how many federated credentials one client
	// may have: one per repository, branch, environment or cluster it runs
	// from is usually a handful.
	MaxFederatedCredentials = 20
	// MaxFederatedAudiences bounds a credential's audiences.
	MaxFederatedAudiences = 10
	// MaxFederatedClaims bounds a credential's claim conditions.
	MaxFederatedClaims = 10

	maxIssuerBytes     = 512
	maxSubjectBytes    = 512
	maxAudienceBytes   = 256
	maxClaimNameBytes  = 64
	maxClaimValueBytes = 512
)

// registeredClaims are checked by federation itself; a condition on one of
// them would be a second, weaker rule.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// FederatedCredentialInput is a new federated credential.
type FederatedCredentialInput struct {
	// Name labels the credential, unique among the client's; the subject
	// when empty.
	Name      string
	Issuer    string
	Subject   string
	Audiences []string
	// Claims are conditions on further top-level string claims.
	Claims map[string]string
}

func (s *Service) checkFederated(in FederatedCredentialInput) (storage.FederatedCredential, []FieldError) {
	var errs []FieldError
	add := func(field, detail string) { errs = append(errs, FieldError{Field: field, Detail: detail}) }
	fc := storage.FederatedCredential{Name: strings.TrimSpace(in.Name), Issuer: in.Issuer, Subject: in.Subject}
	if fc.Name == "" {
		fc.Name = shorten(in.Subject, 100)
	}
	if d := text(fc.Name, 1, 100); d != "" {
		add("name", d)
	}
	switch {
	case in.Issuer == "":
		add("issuer", "must not be empty")
	case len(in.Issuer) > maxIssuerBytes:
		add("issuer", fmt.Sprintf("must be at most %d bytes", maxIssuerBytes))
	default:
		if d := issuerProblem(in.Issuer, s.opts.FederationAllowHTTP); d != "" {
			add("issuer", d)
		}
	}
	switch {
	case in.Subject == "":
		add("subject", "must not be empty")
	case len(in.Subject) > maxSubjectBytes:
		add("subject", fmt.Sprintf("must be at most %d bytes", maxSubjectBytes))
	case in.Subject != strings.TrimSpace(in.Subject) || text(in.Subject, 1, maxSubjectBytes) != "":
		add("subject", "must be the token's sub exactly, without surrounding spaces or control characters")
	}
	fc.Audiences = dedupe(in.Audiences)
	switch {
	case len(fc.Audiences) == 0:
		add("audiences", "must name at least one audience")
	case len(fc.Audiences) > MaxFederatedAudiences:
		add("audiences", fmt.Sprintf("must name at most %d audiences", MaxFederatedAudiences))
	}
	for _, a := range fc.Audiences {
		if a == "" || len(a) > maxAudienceBytes || text(a, 1, maxAudienceBytes) != "" || a != strings.TrimSpace(a) {
			add("audiences", fmt.Sprintf("each audience must be 1 to %d bytes, without spaces around or control characters", maxAudienceBytes))
			break
		}
	}
	if len(in.Claims) > MaxFederatedClaims {
		add("claims", fmt.Sprintf("must have at most %d conditions", MaxFederatedClaims))
	}
	fc.Claims = make(map[string]string, len(in.Claims))
	for _, name := range slices.Sorted(maps.Keys(in.Claims)) {
		value := in.Claims[name]
		switch {
		case name == "" || len(name) > maxClaimNameBytes || text(name, 1, maxClaimNameBytes) != "" || strings.ContainsAny(name, " \t\n"):
			add("claims", fmt.Sprintf("claim names must be 1 to %d bytes without spaces or control characters", maxClaimNameBytes))
		case slices.Contains(registeredClaims, name):
			add("claims", strconv.Quote(name)+" is checked by the credential itself (issuer, subject, audiences, lifetime, single use): it cannot be a condition")
		case value == "" || len(value) > maxClaimValueBytes || text(value, 1, maxClaimValueBytes) != "":
			add("claims", fmt.Sprintf("the value of %s must be 1 to %d bytes without control characters", strconv.Quote(name), maxClaimValueBytes))
		default:
			fc.Claims[name] = value
			continue
		}
		break
	}
	return fc, errs
}

// issuerProblem says what is wrong with an issuer URL: it must be https
// (http only when allowed), with a host, without query, fragment or user
// info (OpenID Connect Discovery 1.0 §3), and not a literal non-public
// address.
func issuerProblem(issuer string, allowHTTP bool) string {
	if err := egress.CheckURL(issuer, allowHTTP); err != nil {
		if allowHTTP {
			return "must be an http or https URL with a host"
		}
		return "must be an https URL of a public host"
	}
	u, err := url.Parse(issuer)
	if err != nil || u.RawQuery != "" || u.ForceQuery {
		return "must not have a query"
	}
	return ""
}

// ListFederatedCredentials returns client id's federated credentials, for
// whoever may see the client.
func (s *Service) ListFederatedCredentials(ctx context.Context, act Actor, id int64) ([]storage.FederatedCredential, error) {
	c, err := s.loadClient(ctx, act.p, id, storage.KindClient)
	if err != nil {
		return nil, err
	}
	out, err := s.opts.Store.ListFederatedCredentials(ctx, c.ID)
	if err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// CreateFederatedCredential adds a federated credential to client id:
// whoever may change the client may (the account's keys_managed_by policy
// included), at most MaxFederatedCredentials per client, names unique.
// The change is audited with the issuer, subject, audiences and claim
// names; want is the client's version the caller saw (0: any).
func (s *Service) CreateFederatedCredential(ctx context.Context, act Actor, id, want int64, in FederatedCredentialInput) (storage.FederatedCredential, error) {
	p := act.p
	fc, errs := s.checkFederated(in)
	var out storage.FederatedCredential
	_, err := s.change(ctx, p, storage.KindClient, id, want, "federated_credential_create", func(tx storage.Store, c *storage.Client) (string, error) {
		if errs != nil {
			return "", invalid(errs)
		}
		existing, err := tx.ListFederatedCredentials(ctx, c.ID)
		if err != nil {
			return "", err
		}
		if len(existing) >= MaxFederatedCredentials {
			return "", &Error{Code: Conflict, Detail: fmt.Sprintf("A client may have at most %d federated credentials: delete one first.", MaxFederatedCredentials)}
		}
		fc.ClientID, fc.CreatedBy, fc.CreatedAt = c.ID, p.userID(), s.opts.Now()
		out, err = tx.CreateFederatedCredential(ctx, fc)
		if errors.Is(err, storage.ErrAlreadyExists) {
			return "", &Error{Code: Conflict, Detail: "The client has a federated credential of this name.",
				Fields: []FieldError{{Field: "name", Detail: "is taken"}}}
		}
		if err != nil {
			return "", err
		}
		return federatedText(out), nil
	})
	if err != nil {
		return storage.FederatedCredential{}, err
	}
	return out, nil
}

// DeleteFederatedCredential removes federated credential fid of client
// id, under the rules of CreateFederatedCredential, audited.
func (s *Service) DeleteFederatedCredential(ctx context.Context, act Actor, id, fid, want int64) error {
	_, err := s.change(ctx, act.p, storage.KindClient, id, want, "federated_credential_delete", func(tx storage.Store, c *storage.Client) (string, error) {
		list, err := tx.ListFederatedCredentials(ctx, c.ID)
		if err != nil {
			return "", err
		}
		i := slices.IndexFunc(list, func(fc storage.FederatedCredential) bool { return fc.ID == fid })
		if i < 0 {
			return "", &Error{Code: NotFound, Detail: "The client has no such federated credential."}
		}
		if err := tx.DeleteFederatedCredential(ctx, c.ID, fid); err != nil {
			return "", err
		}
		return federatedText(list[i]), nil
	})
	return err
}

// federatedText describes a credential for the audit trail: what it
// trusts, and the names (not the values) of its claim conditions.
func federatedText(fc storage.FederatedCredential) string {
	return fmt.Sprintf("federated credential %d %s: issuer %s, subject %s, audiences %s, claims %s",
		fc.ID, strconv.Quote(fc.Name), strconv.Quote(shorten(fc.Issuer, 80)), strconv.Quote(shorten(fc.Subject, 80)),
		strconv.Quote(shorten(strings.Join(fc.Audiences, " "), 80)), orNone(strings.Join(slices.Sorted(maps.Keys(fc.Claims)), " ")))
}
