package manage

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/storage"
)

// LeakLabel is the verdict on one reported credential, in the words of
// GitHub's secret-scanning partner program.
type LeakLabel string

// The verdicts.
const (
	// TruePositive: the string is a working Tollgate credential (its
	// current secret, or a previous one still inside its rotation overlap).
	TruePositive LeakLabel = "true_positive"
	// FalsePositive: it only looks like one — a bad checksum, an unknown
	// id, a wrong or retired secret.
	FalsePositive LeakLabel = "false_positive"
)

// LeakReport is one string a secret-scanning partner found in public.
type LeakReport struct {
	// Key is the string as found; never logged, stored or audited.
	Key string
	// Source says where it was found (a URL), for the audit trail.
	Source string
	// Partner names who reported it ("GitHub secret scanning").
	Partner string
	// Remote is the reporter's address, for the audit trail.
	Remote string
}

// maxLeakSourceLength bounds the source URL kept in the audit detail.
const maxLeakSourceLength = 200

// errNotOurs ends the transaction of a report whose secret does not match.
var errNotOurs = errors.New("not a working credential")

// ReportLeaked acts on one credential reported as leaked, for the system
// (no user: the report is authenticated by its partner's signature, which
// the caller has verified). A string that is not a Tollgate key (format and
// checksum), names no credential, or carries a secret that does not match
// the stored hash (constant time) is a FalsePositive and changes nothing.
// A working key is a TruePositive: per its account's effective
// leaked_key_action it is disabled (storage.DisabledLeaked, its tokens
// revoked) or left working, and in both cases `<kind>.leaked` is audited in
// the same transaction, naming the source. A key reported again is
// audited again; one already disabled stays as it is.
func (s *Service) ReportLeaked(ctx context.Context, r LeakReport) (LeakLabel, error) {
	id, secret, err := apikey.Parse(r.Key)
	if err != nil {
		return FalsePositive, nil
	}
	now := s.opts.Now()
	matches := func(c storage.Client) bool {
		if s.opts.Hasher.Compare(ctx, []byte(c.SecretHash), []byte(secret)) == nil {
			return true
		}
		return c.PreviousSecretValid(now) && s.opts.Hasher.Compare(ctx, []byte(c.PreviousSecretHash), []byte(secret)) == nil
	}
	label := FalsePositive
	err = s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		c, err := tx.GetClient(ctx, id)
		if err != nil {
			if isNotFound(err) {
				return errNotOurs
			}
			return err
		}
		if !matches(c) {
			return errNotOurs
		}
		pol, err := tx.EffectivePolicies(ctx, c.AccountID)
		if err != nil {
			return err
		}
		outcome := "left active (leaked_key_action notify)"
		switch {
		case c.Status == storage.StatusDisabled:
			outcome = "already disabled"
		case pol.LeakedKeyAction != storage.LeakedKeyNotify:
			c, err = tx.UpdateClient(ctx, id, func(c *storage.Client) error {
				// The locked row: a rotation since the read above may
				// have retired the reported secret.
				if !matches(*c) {
					return errNotOurs
				}
				c.Disable(storage.DisabledLeaked)
				return nil
			})
			if err != nil {
				return err
			}
			outcome = "disabled, its tokens revoked"
		}
		e := storage.AuditEvent{AccountID: c.AccountID, Action: string(c.Kind) + ".leaked", TargetType: string(c.Kind),
			TargetID: c.ID, RemoteAddr: r.Remote, Outcome: "success",
			Detail: "found in public by " + r.Partner + " at " + shorten(oneLine(r.Source), maxLeakSourceLength) + ": " + outcome}
		if _, err := tx.AppendAudit(ctx, e); err != nil {
			return err
		}
		label = TruePositive
		return nil
	})
	switch {
	case errors.Is(err, errNotOurs):
		return FalsePositive, nil
	case err != nil:
		return "", unavailable(err)
	}
	return label, nil
}

// oneLine keeps s on one line of printable text for the audit trail.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// RevokeByHolder switches off credential id for whoever holds it: the
// caller authenticated the key itself (its secret, through the brute-force
// protection), which is all the authority this needs. The credential is
// disabled (storage.DisabledByHolder) and its tokens revoked, audited as
// `<kind>.revoke` with the credential as the actor. One already disabled
// (concurrently) stays as it is.
func (s *Service) RevokeByHolder(ctx context.Context, id int64, remote string) error {
	err := s.opts.Store.InTx(ctx, func(tx storage.Store) error {
		detail := "switched off by its holder with the key; its tokens revoked"
		c, err := tx.UpdateClient(ctx, id, func(c *storage.Client) error {
			if c.Status == storage.StatusDisabled {
				detail = "already disabled"
			}
			c.Disable(storage.DisabledByHolder)
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, storage.AuditEvent{AccountID: c.AccountID, ActorClientID: c.ID,
			Action: string(c.Kind) + ".revoke", TargetType: string(c.Kind), TargetID: c.ID, RemoteAddr: remote,
			Outcome: "success", Detail: detail})
		return err
	})
	if err != nil {
		return storeError(err)
	}
	return nil
}

// HolderOfDisabled reports whether secret is the current secret of
// credential id and the credential is disabled: the holder of a key
// already switched off who asks again. It compares exactly once whatever
// it finds (a dummy hash for an unknown or active credential), in constant
// time.
func (s *Service) HolderOfDisabled(ctx context.Context, id int64, secret string) (bool, error) {
	hash := s.dummyHash(ctx)
	c, err := s.opts.Store.GetClient(ctx, id)
	switch {
	case err != nil && !isNotFound(err):
		return false, unavailable(err)
	case err == nil && c.Status == storage.StatusDisabled:
		hash = []byte(c.SecretHash)
	default:
		c = storage.Client{}
	}
	ok := s.opts.Hasher.Compare(ctx, hash, []byte(secret)) == nil
	return ok && c.ID == id, nil
}

// dummyHash returns a hash no secret matches, made once.
func (s *Service) dummyHash(ctx context.Context) []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = s.opts.Hasher.Hash(ctx, []byte(rand.Text()))
	})
	return s.dummy
}
