// Package allowlist owns the IP allowlists of credentials: whether an
// address is inside a credential's allowed networks (Allows), and the audit
// trail of the calls refused for coming from elsewhere (Refusals), bounded
// so that a flood of such calls cannot fill the audit table. The token
// endpoint, the key session (through pkg/oauth's Authenticator) and the
// check endpoint (pkg/gateway) enforce it; which address is the caller's is
// pkg/reqctx's one trusted-proxy rule.
package allowlist

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// Allows reports whether addr is inside one of cidrs (canonical prefixes,
// as storage.Client.AllowedCIDRs holds them). An empty list allows every
// address; an unknown or unparsable address is allowed by no list.
func Allows(cidrs []string, addr string) bool {
	if len(cidrs) == 0 {
		return true
	}
	a, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}

// Auditor appends to the audit trail (storage.Audit).
type Auditor interface {
	AppendAudit(ctx context.Context, e storage.AuditEvent) (storage.AuditEvent, error)
}

// Refusal is one call refused by a credential's allowlist.
type Refusal struct {
	Client storage.Client
	// Addr is the address the call came from ("" when the gateway
	// forwarded none).
	Addr string
	// Where names the endpoint: "token endpoint", "key session", "check".
	Where string
}

// Options configure Refusals.
type Options struct {
	Audit Auditor
	// Every is the least time between two audit events of one credential
	// on one instance (a minute when 0).
	Every time.Duration
	// MaxTracked bounds how many credentials the instance remembers
	// (10000 when 0); beyond it, refusals of credentials not yet
	// remembered are only logged.
	MaxTracked int
	Logger     *slog.Logger
	Now        func() time.Time
}

// Refusals records refused calls in the audit trail: at most one event per
// credential per Options.Every on each instance (the first refusal of the
// window; those after it are dropped, not counted), and never more
// credentials than Options.MaxTracked at once. A flood from elsewhere with
// one key, or with many, writes a bounded number of rows.
type Refusals struct {
	opts Options
	mu   sync.Mutex
	last map[int64]time.Time
}

// New returns Refusals.
func New(opts Options) *Refusals {
	if opts.Every <= 0 {
		opts.Every = time.Minute
	}
	if opts.MaxTracked <= 0 {
		opts.MaxTracked = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Refusals{opts: opts, last: map[int64]time.Time{}}
}

// due reports whether credential id's refusal at now is audited, and
// remembers it.
func (r *Refusals) due(id int64, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.last[id]; ok && now.Sub(t) < r.opts.Every {
		return false
	}
	if _, ok := r.last[id]; !ok && len(r.last) >= r.opts.MaxTracked {
		for k, t := range r.last {
			if now.Sub(t) >= r.opts.Every {
				delete(r.last, k)
			}
		}
		if len(r.last) >= r.opts.MaxTracked {
			return false
		}
	}
	r.last[id] = now
	return true
}

// Refused records f in the audit trail, when due: an event naming the
// credential and the refused address. A failure to write is logged; the
// call is refused either way.
func (r *Refusals) Refused(ctx context.Context, f Refusal) {
	if r == nil {
		return
	}
	if !r.due(f.Client.ID, r.opts.Now()) {
		return
	}
	addr := f.Addr
	detail := "used from " + addr + ", outside its allowed_cidrs, at the " + f.Where
	if addr == "" {
		detail = "used at the " + f.Where + " with no caller address forwarded by a trusted gateway; it has allowed_cidrs"
	}
	kind := string(f.Client.Kind)
	e := storage.AuditEvent{
		AccountID: f.Client.AccountID, ActorClientID: f.Client.ID,
		Action: kind + ".refused_address", TargetType: kind, TargetID: f.Client.ID,
		RemoteAddr: addr, Outcome: "failure", Detail: detail,
	}
	if _, err := r.opts.Audit.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		r.opts.Logger.WarnContext(ctx, "audit a call refused by an allowlist", "err", err, "client_id", f.Client.ID)
	}
}
