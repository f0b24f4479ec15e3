package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/retryafter"
	"github.com/tollgate/tollgate/storage"
)

// kindInfo is how a kind of credential is presented.
type kindInfo struct {
	Kind  storage.Kind
	Path  string
	Noun  string
	Nouns string
	Nav   string
}

// IsKey reports whether the pages are about API keys.
func (k kindInfo) IsKey() bool { return k.Kind == storage.KindKey }

var (
	clientKind = kindInfo{Kind: storage.KindClient, Path: Prefix + "/clients", Noun: "API client", Nouns: "API clients", Nav: "clients"}
	keyKind    = kindInfo{Kind: storage.KindKey, Path: Prefix + "/keys", Noun: "API key", Nouns: "API keys", Nav: "keys"}
)

// credentialLabels name the form fields a refusal may be about.
var credentialLabels = map[string]string{
	"name":          "Name",
	"description":   "Description",
	"access_rights": "Access rights",
	"expires_at":    "Expiry date",
	"grant_types":   "Grant types",
	"password":      "Your password",

	"access_token_strategy": "Access token format",

	"token_endpoint_auth_method": "Authentication",
	"jwks":                       "Public keys (JWK Set)",
	"jwks_uri":                   "JWK Set URL",
	"dpop_bound_access_tokens":   "Sender-constrained tokens",
}

// keyPolicies says how the account's policies shape the credential pages
// for st: readOnly when the signed-in member may only read their
// credentials (keys_managed_by admins), askPassword when adding one asks
// for their password. The service enforces both; this only hides what
// would be refused. Should the policies not load, the pages assume the
// strictest.
func (c *Console) keyPolicies(r *http.Request, st *state) (readOnly, askPassword bool) {
	pol, err := c.opts.Service.EffectivePolicies(r.Context(), st.act, st.account.ID)
	if err != nil {
		c.opts.Logger.WarnContext(r.Context(), "read account policies", "err", err)
		return !st.act.Admin(), true
	}
	return !st.act.Admin() && pol.KeysManagedBy == storage.KeysManagedByAdmins, pol.RequirePasswordForNewKeys
}

// row is a credential as the pages show it.
type row struct {
	ID           int64
	Name         string
	Description  string
	AccessRights string
	Scopes       string
	GrantTypes   []string
	Active       bool
	Expired      bool
	Reason       storage.DisabledReason // why it is disabled
	Note         string                 // the reason, for people; "" while active
	IsDefault    bool
	Hint         string // the masked key or secret
	Owner        string
	CreatedBy    string
	CreatedAt    time.Time
	LastUsed     time.Time
	Expires      time.Time
	OldRetires   time.Time // the previous secret's end, while it works
	Version      int64
	// Stops and TokensDie say what disabling it stops, for the
	// confirmation asked before.
	Stops     string
	TokensDie string
}

// Status answers the status as people read it.
func (r row) Status() string {
	switch {
	case r.Active && r.Expired:
		return "Expired"
	case r.Active:
		return "Enabled"
	case r.Reason == storage.DisabledUnused:
		return "Disabled (unused)"
	case r.Reason == storage.DisabledExpired:
		return "Disabled (expired)"
	default:
		return "Disabled"
	}
}

// disabledNote says why a credential is disabled, as recorded when it was
// (storage.DisabledReason); "" for a credential switched off by hand.
func (c *Console) disabledNote(reason storage.DisabledReason) string {
	switch reason {
	case storage.DisabledUnused:
		if c.opts.DisableUnusedAfter > 0 {
			return "Disabled automatically: not used for " + duration(c.opts.DisableUnusedAfter) + "."
		}
		return "Disabled automatically: not used for a long time."
	case storage.DisabledExpired:
		return "Disabled automatically: past its expiry date."
	case storage.DisabledUser:
		return "Disabled with its owner, whose user was disabled."
	case storage.DisabledLeaked:
		return "Disabled automatically: found in public by secret scanning (leaked)."
	case storage.DisabledByHolder:
		return "Switched off by whoever held the key, with the key itself."
	}
	return ""
}

func (c *Console) row(ctx context.Context, st *state, cl storage.Client) row {
	now := c.opts.Now()
	out := row{
		ID: cl.ID, Name: cl.Name, Description: cl.Description, AccessRights: cl.AccessRights,
		Scopes: strings.Join(cl.Scopes, " "), GrantTypes: cl.GrantTypes, Active: cl.Status == storage.StatusActive,
		Expired:   !cl.ExpiresAt.IsZero() && !now.Before(cl.ExpiresAt),
		Reason:    cl.DisabledReason,
		IsDefault: cl.IsDefault, CreatedAt: cl.CreatedAt, LastUsed: cl.LastUsedAt, Expires: cl.ExpiresAt,
		Owner: c.username(ctx, st, cl.OwnerID), CreatedBy: c.username(ctx, st, cl.CreatedBy), Version: cl.Version,
	}
	if out.AccessRights == "" {
		out.AccessRights = "custom"
	}
	if cl.CreatedBy == 0 {
		out.CreatedBy = "system"
	}
	if cl.Kind == storage.KindKey {
		out.Hint = apikey.Masked(cl.ID, cl.SecretHint)
	} else {
		out.Hint = "…" + cl.SecretHint
	}
	if cl.PreviousSecretValid(now) {
		out.OldRetires = cl.PreviousRetireAt
	}
	if !out.Active {
		out.Note = c.disabledNote(cl.DisabledReason)
	}
	out.Stops, out.TokensDie = c.disableWarning(cl, out.Hint)
	return out
}

// disableWarning says what disabling cl stops: its programs, and for good
// every token obtained with it (Client.Disable revokes them; enabling it
// again does not bring them back).
func (c *Console) disableWarning(cl storage.Client, hint string) (stops, lost string) {
	id := strconv.FormatInt(cl.ID, 10)
	if cl.Kind == storage.KindKey {
		stops = "Programs sending the key " + hint + " are refused at once, as the password of HTTP Basic auth and at /auth/access/session."
		lost = "Every token obtained with this key stops working now, for good: enabling the key again does not bring them back, so its programs must get new ones."
		return stops, lost
	}
	stops = "Programs using client ID " + id + " and its secret can no longer get access tokens."
	lost = "Every token obtained with this client stops working now, for good, including client tokens generated to last " +
		duration(c.opts.ClientTokenLifetime) + ": enabling the client again does not bring them back, so they must be obtained or generated again."
	return stops, lost
}

// username answers who user id is, for people: their username when the
// signed-in user may see them.
func (c *Console) username(ctx context.Context, st *state, id int64) string {
	if id == 0 {
		return ""
	}
	if n, ok := st.names[id]; ok {
		return n
	}
	n := "user " + strconv.FormatInt(id, 10)
	if id == st.user.ID {
		n = st.user.Username
	} else if u, err := c.opts.Service.GetUser(ctx, st.act, id); err == nil {
		n = u.Username
	}
	st.names[id] = n
	return n
}

// notices are the messages a redirect after a change asks for (?ok=).
var notices = map[string]string{
	"saved":             "Your changes are saved.",
	"enabled":           "Enabled: it works again.",
	"disabled":          "Disabled: it no longer works, and every token obtained with it stopped working.",
	"deleted":           "Deleted: it no longer works, and every token obtained with it stopped working.",
	"default-reissued":  "The default key was deleted, and a new default key was issued in its place. Generate a new secret for it to see the key.",
	"user-created":      "The user is created, with a default API key.",
	"user-enabled":      "The user is enabled. Their clients and keys stay disabled until you enable them.",
	"user-disabled":     "The user is disabled, with every client and key they own, and their tokens.",
	"user-role":         "The role is changed.",
	"user-deleted":      "The user is deleted, with every client and key they owned.",
	"switched":          "You are now managing this account.",
	"federated-added":   "The federated credential is added: its workloads' tokens authenticate this client from now on.",
	"federated-deleted": "The federated credential is deleted: its tokens no longer authenticate this client.",
	"webhook-test":      "A webhook.test event is queued: it is delivered within a few seconds, see the delivery log.",
	"webhook-deleted":   "The webhook is deleted, with its delivery log.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("ok")] }

// listPage is a list of credentials.
type listPage struct {
	K         kindInfo
	Rows      []row
	Next      int64 // ?after= of the next page; 0 when none
	Paged     bool  // not the first page
	ShowOwner bool
	Unused    string // how long unused before a credential is disabled; "" for never
	Query     string // the search (?q=); "" for none
	// ReadOnly hides the actions the account's policy refuses the
	// signed-in member (keys_managed_by admins).
	ReadOnly bool
}

func (c *Console) listCredentials(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	c.renderList(w, r, st, k, http.StatusOK, nil)
}

func (c *Console) renderList(w http.ResponseWriter, r *http.Request, st *state, k kindInfo, status int, errs formErrors) {
	ctx := r.Context()
	after := pageAfter(r)
	q := search(r)
	items, err := c.opts.Service.ListClients(ctx, st.act, k.Kind, storage.ClientFilter{AccountID: st.account.ID, Name: q},
		storage.Page{After: after, Limit: pageSize})
	if err != nil {
		c.failure(w, r, st, err)
		return
	}
	p := listPage{K: k, Paged: after > 0, ShowOwner: st.act.Admin(), Query: q}
	p.ReadOnly, _ = c.keyPolicies(r, st)
	if c.opts.DisableUnusedAfter > 0 {
		p.Unused = duration(c.opts.DisableUnusedAfter)
	}
	for _, cl := range items {
		p.Rows = append(p.Rows, c.row(ctx, st, cl))
	}
	if len(items) == pageSize {
		p.Next = items[len(items)-1].ID
	}
	c.render(w, r, st, status, "list", view{Title: k.Nouns, Nav: k.Nav, Notice: notice(r), Errors: errs, Page: p})
}

// bundle is an access rights choice.
type bundle struct{ Name, Scopes string }

func (c *Console) bundles() []bundle {
	var out []bundle
	for name, scopes := range c.opts.AccessRights {
		out = append(out, bundle{Name: name, Scopes: strings.Join(scopes, " ")})
	}
	slices.SortFunc(out, func(a, b bundle) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// formPage is the form that adds or edits a credential; when editing, the
// page also shows the credential and its other actions.
type formPage struct {
	K            kindInfo
	Editing      bool
	Row          row
	Name         string
	Description  string
	AccessRights string
	ExpiresAt    string // yyyy-mm-dd
	ExpiresOrig  string
	// Strategy is the access token format: opaque or jwt.
	Strategy string
	// AuthMethod is how an API client authenticates (a secret method or
	// private_key_jwt), with its JWK Set or its URL.
	AuthMethod, JWKS, JWKSURI string
	// DPoPBound: tokens must be bound to a DPoP key.
	DPoPBound bool
	Bundles   []bundle
	Grants    []grantChoice // API clients only
	MinDate   string
	Overlaps  []overlap
	TokenFor  string // how long a generated client token lives
	FormID    string // see resent
	// ReadOnly shows the credential without its actions, which the
	// account's policy refuses the signed-in member; AskPassword adds the
	// password field to the form that adds one.
	ReadOnly    bool
	AskPassword bool
	// Federated are an API client's federated credentials; FederatedFailed
	// says they could not be read. Fed is the add form as sent.
	Federated       []storage.FederatedCredential
	FederatedFailed bool
	Fed             federatedForm
	// Limits are the quota and the IP allowlist.
	Limits limitsForm
}

// overlap is a choice of how long a rotated-out secret keeps working.
type overlap struct {
	Seconds  int64
	Label    string
	Selected bool
}

func (c *Console) overlaps() []overlap {
	def := int64(c.opts.RotationOverlap / time.Second)
	maxSecs := int64(c.opts.MaxRotationOverlap / time.Second)
	var out []overlap
	seen := map[int64]bool{}
	add := func(secs int64, label string) {
		if secs > maxSecs || seen[secs] {
			return
		}
		seen[secs] = true
		out = append(out, overlap{Seconds: secs, Label: label, Selected: secs == def})
	}
	add(0, "Stop the old secret now")
	for _, o := range []struct {
		secs  int64
		label string
	}{{3600, "Keep the old secret for 1 hour"}, {def, "Keep the old secret for " + duration(c.opts.RotationOverlap)},
		{7 * 86400, "Keep the old secret for 7 days"}} {
		if o.secs > 0 {
			add(o.secs, o.label)
		}
	}
	slices.SortFunc(out, func(a, b overlap) int { return int(a.Seconds - b.Seconds) })
	return out
}

// duration says d the way people do: "24 hours", "7 days", "1 year".
func duration(d time.Duration) string {
	if d == 24*time.Hour {
		return "24 hours"
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{365 * 24 * time.Hour, "year"}, {24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}} {
		if d >= u.d && d%u.d == 0 {
			if n := d / u.d; n != 1 {
				return fmt.Sprintf("%d %ss", n, u.name)
			}
			return "1 " + u.name
		}
	}
	return fmt.Sprintf("%d seconds", int64(d/time.Second))
}

// grantChoice is one grant type of the client form.
type grantChoice struct {
	Name    string
	Label   string
	Checked bool
}

// grantLabel says what grant type g is for, next to its name.
func (c *Console) grantLabel(g string) string {
	if g == "client_credentials" {
		return "the client ID and secret alone"
	}
	return "a user's username and password with the client ID and secret (JSON or form)"
}

// grantChoices lists the grant types a client may be allowed, those of
// checked ticked.
func (c *Console) grantChoices(checked []string) []grantChoice {
	out := make([]grantChoice, 0, len(c.opts.GrantTypes))
	for _, g := range c.opts.GrantTypes {
		out = append(out, grantChoice{Name: g, Label: c.grantLabel(g), Checked: slices.Contains(checked, g)})
	}
	return out
}

// formGrants reads the ticked grant types of a client form. A form that
// did not show them (an older page) answers nil: leave them as they are.
func formGrants(r *http.Request) *[]string {
	if r.PostForm.Get("grant_types_shown") == "" {
		return nil
	}
	g := append([]string{}, r.PostForm["grant_types"]...)
	return &g
}

func (c *Console) newForm(k kindInfo) formPage {
	p := formPage{K: k, AccessRights: c.opts.DefaultAccessRights, Bundles: c.bundles(),
		MinDate: c.opts.Now().UTC().Add(24 * time.Hour).Format("2006-01-02"), FormID: randomToken()}
	if !k.IsKey() {
		p.Grants = c.grantChoices(c.opts.DefaultGrantTypes)
		p.AuthMethod = storage.AuthSecretBasic
	}
	return p
}

// formAuth reads an API client's authentication fields into form and in:
// the method, and for private_key_jwt the keys given (a JWK Set pasted, or
// its URL). A field left empty leaves the stored one as it is.
func formAuth(r *http.Request, form *formPage, in *manage.ClientInput) {
	f := r.PostForm
	m := f.Get("token_endpoint_auth_method")
	if m == "" {
		return
	}
	form.AuthMethod = m
	in.TokenEndpointAuthMethod = &form.AuthMethod
	if m != storage.AuthPrivateKeyJWT {
		return
	}
	if form.JWKS = strings.TrimSpace(f.Get("jwks")); form.JWKS != "" {
		in.JWKS = &form.JWKS
	}
	if form.JWKSURI = strings.TrimSpace(f.Get("jwks_uri")); form.JWKSURI != "" {
		in.JWKSURI = &form.JWKSURI
	}
}

// The forms that make a secret or a token (a new client or key, a client
// token) carry a one-time form id, and the session remembers the last one
// that made something: the same form sent again, as a reload of the page
// that showed the secret does, is refused instead of making a second
// credential or token nobody copied.

// formID answers the form id r sends; "" when it has none (or not one the
// console made).
func formID(r *http.Request) string {
	if id := r.PostForm.Get("form_id"); len(id) == 43 {
		return id
	}
	return ""
}

// resent reports whether r sends again the form that made something last.
func resent(r *http.Request, st *state) bool {
	return sameToken(formID(r), st.sess.Sent)
}

// sent records that r's form made something. Failing to record it only
// loses the protection against a reload: the secret is shown anyway.
func (c *Console) sent(r *http.Request, st *state) {
	id := formID(r)
	if id == "" {
		return
	}
	st.sess.Sent = id
	if err := c.opts.Sessions.Update(r.Context(), st.key, st.sess, c.ttl(st.sess, c.opts.Now())); err != nil {
		c.opts.Logger.WarnContext(r.Context(), "record a sent console form", "err", err)
	}
}

// alreadySent answers a form sent again: nothing is made twice.
func (c *Console) alreadySent(w http.ResponseWriter, r *http.Request, st *state, what string) {
	c.errorPage(w, r, st, http.StatusConflict, "This form was already sent",
		"Nothing new was made: "+what+" was made the first time the form was sent, and shown then.")
}

func (c *Console) newCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	form := c.newForm(k)
	readOnly, askPassword := c.keyPolicies(r, st)
	if readOnly {
		c.failure(w, r, st, forbidden)
		return
	}
	form.AskPassword = askPassword
	form.Limits.MayQuota = st.act.Admin()
	c.render(w, r, st, http.StatusOK, "form", view{Title: "Add an " + k.Noun, Nav: k.Nav, Page: form})
}

// parseDay reads an optional yyyy-mm-dd expiry date: the credential stops
// working at the start of that day, UTC. It answers the RFC 3339 time, or
// a message for people.
func parseDay(s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ""
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return "", "Expiry date must be a date, such as 2030-12-31."
	}
	return t.UTC().Format(time.RFC3339), ""
}

// badDay stands for an expiry date that did not parse. The service
// refuses it like any invalid field, all or nothing, so the form shows the
// date's error together with every other field's and nothing is saved.
const badDay = "not a date"

// withDateError answers form with msg, when set, as the expiry date's
// error in place of the service's (which is about RFC 3339 times, not the
// date people typed).
func withDateError(form func(int, formErrors), msg string) func(int, formErrors) {
	if msg == "" {
		return form
	}
	return func(status int, errs formErrors) {
		errs["expires_at"] = []string{msg}
		form(status, errs)
	}
}

// onceItem is a value shown once, with a copy button.
type onceItem struct {
	ID, Label, Value string
	Secret           bool
}

// oncePage shows a secret, a key or a token the one time it is shown.
type oncePage struct {
	K       kindInfo
	Heading string
	Row     row
	Items   []onceItem
	Notes   []string
	Example string
}

func (c *Console) createCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	if resent(r, st) {
		c.alreadySent(w, r, st, "the "+k.Noun+" (find it in the list; if nobody copied its secret, give it a new secret there)")
		return
	}
	f := r.PostForm
	form := c.newForm(k)
	form.Name, form.Description, form.AccessRights, form.ExpiresAt = f.Get("name"), f.Get("description"), f.Get("access_rights"), f.Get("expires_at")
	if form.Strategy = f.Get("access_token_strategy"); form.Strategy == "" {
		form.Strategy = storage.StrategyOpaque
	}
	if id := formID(r); id != "" {
		form.FormID = id
	}
	_, form.AskPassword = c.keyPolicies(r, st)
	form.Limits.MayQuota = st.act.Admin()
	refusedAs := ""
	fail := func(status int, errs formErrors) {
		c.render(w, r, st, status, "form", view{Title: "Add an " + k.Noun, Nav: k.Nav, Errors: errs, Refused: refusedAs, Page: form})
	}
	form.DPoPBound = f.Get("dpop_bound_access_tokens") == "on"
	in := manage.ClientInput{Name: &form.Name, Description: &form.Description, AccessRights: &form.AccessRights,
		AccessTokenStrategy: &form.Strategy, DPoPBoundAccessTokens: &form.DPoPBound}
	formLimits(r, &form, &in, nil)
	// The password is never put back into the form.
	if pw := f.Get("password"); pw != "" {
		in.Password = &pw
	}
	if !k.IsKey() {
		if in.GrantTypes = formGrants(r); in.GrantTypes != nil {
			form.Grants = c.grantChoices(*in.GrantTypes)
		}
		formAuth(r, &form, &in)
	}
	exp, dateMsg := parseDay(form.ExpiresAt)
	if dateMsg != "" {
		exp = badDay
	}
	if exp != "" {
		in.ExpiresAt = &exp
	}
	if st.account.ID != st.user.AccountID {
		id := st.account.ID
		in.AccountID = &id
	}
	ctx := r.Context()
	cl, secret, err := c.opts.Service.CreateClient(ctx, st.act, k.Kind, in)
	if err != nil {
		ref := refusalOf(err)
		aboutPassword := slices.ContainsFunc(ref.Fields, func(f manage.FieldError) bool { return f.Field == "password" })
		// The policy may have changed since the page was shown.
		form.AskPassword = form.AskPassword || aboutPassword
		if ref.Status == http.StatusForbidden && aboutPassword {
			refusedAs = "Wrong password: your identity is not confirmed, and nothing was added"
			fail(http.StatusForbidden, formErrors{"password": {"The password is wrong."}})
			return
		}
		c.refused(w, r, st, err, credentialLabels, withLimitFields(withDateError(fail, dateMsg)))
		return
	}
	c.sent(r, st)
	if secret == "" {
		// A private_key_jwt client has no secret to show.
		http.Redirect(w, r, k.Path+"/"+strconv.FormatInt(cl.ID, 10)+"?ok=saved", http.StatusSeeOther)
		return
	}
	c.showOnce(w, r, st, k, cl, secret, "Your new "+k.Noun+" is ready", nil)
}

// showOnce renders the page that shows cl's new secret (or key) once.
func (c *Console) showOnce(w http.ResponseWriter, r *http.Request, st *state, k kindInfo, cl storage.Client, secret, heading string, notes []string) {
	p := oncePage{K: k, Heading: heading, Row: c.row(r.Context(), st, cl), Notes: notes}
	id := strconv.FormatInt(cl.ID, 10)
	if k.IsKey() {
		key, err := apikey.Format(cl.ID, secret)
		if err != nil {
			c.failure(w, r, st, err)
			return
		}
		p.Items = []onceItem{{ID: "api-key", Label: "API key", Value: key, Secret: true}}
		// The key is the only thing to copy: it holds the key's id and its
		// secret (which the management API also answers apart, as
		// client_secret, for OAuth libraries that want the two).
		p.Notes = append([]string{"This key is all you need: it carries its ID and secret together. Send it as the password of HTTP Basic auth (any user name), or exchange it for a token at /auth/access/session."}, p.Notes...)
		p.Example = "curl -u \"any:$API_KEY\" " + c.opts.Issuer + "/your/api"
	} else {
		p.Items = []onceItem{{ID: "client-id", Label: "Client ID", Value: id}, {ID: "client-secret", Label: "Client secret", Value: secret, Secret: true}}
		p.Example = "curl -u \"" + id + ":$CLIENT_SECRET\" -d grant_type=client_credentials " + c.opts.Issuer + "/oauth/token"
	}
	c.render(w, r, st, http.StatusOK, "once", view{Title: heading, Nav: k.Nav, Page: p})
}

// refused answers a refusal of the service layer: the form again, with
// the errors next to their fields, when the person can fix it; an error
// page otherwise.
func (c *Console) refused(w http.ResponseWriter, r *http.Request, st *state, err error, labels map[string]string, form func(int, formErrors)) {
	ref := refusalOf(err)
	switch ref.Status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict:
		form(ref.Status, fromRefusal(ref, labels))
	case http.StatusPreconditionFailed:
		form(http.StatusConflict, formErrors{"": {"Someone changed this since you opened the page, so nothing was saved. Reload the page to see the changes, then try again."}})
	case http.StatusTooManyRequests:
		secs := retryafter.Seconds(ref.RetryAfter)
		retryafter.Set(w.Header(), ref.RetryAfter)
		form(ref.Status, formErrors{"": {"Too many wrong passwords. Wait " + seconds(secs) + ", then try again."}})
	default:
		c.failure(w, r, st, err)
	}
}

func (c *Console) loadCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) (storage.Client, bool) {
	cl, err := c.opts.Service.GetClient(r.Context(), st.act, k.Kind, pathID(r))
	if err != nil {
		c.failure(w, r, st, err)
		return cl, false
	}
	return cl, true
}

func (c *Console) editForm(r *http.Request, st *state, k kindInfo, cl storage.Client) formPage {
	p := c.newForm(k)
	p.Editing, p.Row = true, c.row(r.Context(), st, cl)
	p.Name, p.Description, p.AccessRights = cl.Name, cl.Description, cl.AccessRights
	if p.Strategy = cl.AccessTokenStrategy; p.Strategy == "" {
		p.Strategy = storage.StrategyOpaque
	}
	p.DPoPBound = cl.DPoPBoundAccessTokens
	if !cl.ExpiresAt.IsZero() {
		p.ExpiresAt = cl.ExpiresAt.UTC().Format("2006-01-02")
	}
	p.ExpiresOrig = p.ExpiresAt
	if !k.IsKey() {
		p.Grants = c.grantChoices(cl.GrantTypes)
		p.AuthMethod, p.JWKS, p.JWKSURI = cl.TokenEndpointAuthMethod, cl.JWKS, cl.JWKSURI
		if p.AuthMethod == "" {
			p.AuthMethod = storage.AuthSecretBasic
		}
		fed, err := c.opts.Service.ListFederatedCredentials(r.Context(), st.act, cl.ID)
		p.Federated, p.FederatedFailed = fed, err != nil
	}
	p.Limits = c.limitsOf(r, st, cl)
	p.Overlaps = c.overlaps()
	p.TokenFor = duration(c.opts.ClientTokenLifetime)
	p.ReadOnly, _ = c.keyPolicies(r, st)
	return p
}

func (c *Console) showCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	cl, ok := c.loadCredential(w, r, st, k)
	if !ok {
		return
	}
	c.render(w, r, st, http.StatusOK, "form", view{Title: cl.Name, Nav: k.Nav, Notice: notice(r), Page: c.editForm(r, st, k, cl)})
}

func (c *Console) editCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	cl, ok := c.loadCredential(w, r, st, k)
	if !ok {
		return
	}
	f := r.PostForm
	form := c.editForm(r, st, k, cl)
	form.Name, form.Description, form.AccessRights, form.ExpiresAt = f.Get("name"), f.Get("description"), f.Get("access_rights"), f.Get("expires_at")
	fail := func(status int, errs formErrors) {
		c.render(w, r, st, status, "form", view{Title: cl.Name, Nav: k.Nav, Errors: errs, Page: form})
	}
	in := manage.ClientInput{Name: &form.Name, Description: &form.Description}
	if s := f.Get("access_token_strategy"); s != "" {
		form.Strategy = s
		in.AccessTokenStrategy = &form.Strategy
	}
	if f.Get("dpop_shown") != "" {
		form.DPoPBound = f.Get("dpop_bound_access_tokens") == "on"
		in.DPoPBoundAccessTokens = &form.DPoPBound
	}
	if !k.IsKey() {
		if in.GrantTypes = formGrants(r); in.GrantTypes != nil {
			form.Grants = c.grantChoices(*in.GrantTypes)
		}
		formAuth(r, &form, &in)
		if in.JWKS != nil && *in.JWKS == cl.JWKS {
			in.JWKS = nil // shown as stored, sent back unchanged
		}
	}
	formLimits(r, &form, &in, &cl)
	// A custom set of scopes (from the API) stays as it is unless a
	// bundle is chosen.
	if form.AccessRights != "" || cl.AccessRights != "" {
		in.AccessRights = &form.AccessRights
	}
	var dateMsg string
	if strings.TrimSpace(form.ExpiresAt) != f.Get("expires_orig") {
		var exp string
		if exp, dateMsg = parseDay(form.ExpiresAt); dateMsg != "" {
			exp = badDay
		}
		in.ExpiresAt = &exp
	}
	if _, err := c.opts.Service.UpdateClient(r.Context(), st.act, k.Kind, cl.ID, formInt(r, "version"), in); err != nil {
		c.refused(w, r, st, err, credentialLabels, withLimitFields(withDateError(fail, dateMsg)))
		return
	}
	http.Redirect(w, r, k.Path+"/"+strconv.FormatInt(cl.ID, 10)+"?ok=saved", http.StatusSeeOther)
}

// back answers where an action on credential id returns to: its page, or
// the list.
func back(r *http.Request, k kindInfo, id int64, ok string) string {
	if r.PostForm.Get("back") == "detail" {
		return k.Path + "/" + strconv.FormatInt(id, 10) + "?ok=" + ok
	}
	return k.Path + "?ok=" + ok
}

// disablePage asks before disabling a credential: its tokens die for good.
type disablePage struct {
	K      kindInfo
	Row    row
	Detail bool // came from the credential's page, and goes back there
}

func (c *Console) toggleCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	status := r.PostForm.Get("status")
	if !storage.Status(status).Valid() {
		c.errorPage(w, r, st, http.StatusBadRequest, "Bad request", "The status must be active or disabled.")
		return
	}
	// Disabling kills every token of the credential for good, so it is
	// confirmed first: the switch's script asks in a dialog and sends
	// confirm=yes; without the script the switch lands on this page.
	if status == string(storage.StatusDisabled) && r.PostForm.Get("confirm") != "yes" {
		cl, ok := c.loadCredential(w, r, st, k)
		if !ok {
			return
		}
		if cl.Status == storage.StatusActive {
			c.render(w, r, st, http.StatusOK, "disable", view{Title: "Disable " + cl.Name, Nav: k.Nav,
				Page: disablePage{K: k, Row: c.row(r.Context(), st, cl), Detail: r.PostForm.Get("back") == "detail"}})
			return
		}
	}
	// Setting a status is idempotent: no version check.
	cl, err := c.opts.Service.UpdateClient(r.Context(), st.act, k.Kind, pathID(r), 0, manage.ClientInput{Status: (*storage.Status)(&status)})
	if err != nil {
		c.refused(w, r, st, err, nil, func(code int, errs formErrors) { c.renderList(w, r, st, k, code, errs) })
		return
	}
	ok := "enabled"
	if cl.Status == storage.StatusDisabled {
		ok = "disabled"
	}
	http.Redirect(w, r, back(r, k, cl.ID, ok), http.StatusSeeOther)
}

func (c *Console) rotateCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	cl, ok := c.loadCredential(w, r, st, k)
	if !ok {
		return
	}
	var secs *int64
	if raw := r.PostForm.Get("overlap_seconds"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			c.errorPage(w, r, st, http.StatusBadRequest, "Bad request", "Choose how long the old secret keeps working.")
			return
		}
		secs = &n
	}
	fail := func(status int, errs formErrors) {
		c.render(w, r, st, status, "form", view{Title: cl.Name, Nav: k.Nav, Errors: errs, Page: c.editForm(r, st, k, cl)})
	}
	// The version makes a repeated post (a reload) fail instead of
	// rotating twice.
	cl, secret, err := c.opts.Service.RotateClient(r.Context(), st.act, k.Kind, cl.ID, formInt(r, "version"), secs)
	if err != nil {
		c.refused(w, r, st, err, map[string]string{"overlap_seconds": "The old secret"}, fail)
		return
	}
	note := "The old secret stopped working, and so did the tokens obtained with it."
	if cl.PreviousSecretValid(c.opts.Now()) {
		note = "The old secret keeps working until " + cl.PreviousRetireAt.UTC().Format("2006-01-02 15:04 UTC") + ": update the programs that use it before then."
	}
	c.showOnce(w, r, st, k, cl, secret, "New secret for "+cl.Name, []string{note})
}

// confirmPage asks before deleting.
type confirmPage struct {
	K   kindInfo
	Row row
}

func (c *Console) confirmDeleteCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	cl, ok := c.loadCredential(w, r, st, k)
	if !ok {
		return
	}
	if readOnly, _ := c.keyPolicies(r, st); readOnly {
		c.failure(w, r, st, forbidden)
		return
	}
	c.render(w, r, st, http.StatusOK, "delete", view{Title: "Delete " + cl.Name, Nav: k.Nav,
		Page: confirmPage{K: k, Row: c.row(r.Context(), st, cl)}})
}

func (c *Console) deleteCredential(w http.ResponseWriter, r *http.Request, st *state, k kindInfo) {
	cl, ok := c.loadCredential(w, r, st, k)
	if !ok {
		return
	}
	replacement, err := c.opts.Service.DeleteClient(r.Context(), st.act, k.Kind, cl.ID, formInt(r, "version"))
	if err != nil {
		c.refused(w, r, st, err, nil, func(status int, errs formErrors) {
			c.render(w, r, st, status, "delete", view{Title: "Delete " + cl.Name, Nav: k.Nav, Errors: errs,
				Page: confirmPage{K: k, Row: c.row(r.Context(), st, cl)}})
		})
		return
	}
	done := "deleted"
	if replacement.ID != 0 {
		done = "default-reissued"
	}
	http.Redirect(w, r, k.Path+"?ok="+done, http.StatusSeeOther)
}

// tokenPage asks for the password that confirms a client token.
type tokenPage struct {
	K        kindInfo
	Row      row
	Lifetime string
	Until    time.Time
	FormID   string // see resent
}

func (c *Console) tokenPageFor(r *http.Request, st *state, cl storage.Client) tokenPage {
	id := formID(r)
	if id == "" {
		id = randomToken()
	}
	return tokenPage{K: clientKind, Row: c.row(r.Context(), st, cl), Lifetime: duration(c.opts.ClientTokenLifetime),
		Until: c.opts.Now().Add(c.opts.ClientTokenLifetime), FormID: id}
}

func (c *Console) tokenForm(w http.ResponseWriter, r *http.Request, st *state) {
	cl, ok := c.loadCredential(w, r, st, clientKind)
	if !ok {
		return
	}
	c.render(w, r, st, http.StatusOK, "token", view{Title: "Generate a client token", Nav: clientKind.Nav, Page: c.tokenPageFor(r, st, cl)})
}

func (c *Console) generateToken(w http.ResponseWriter, r *http.Request, st *state) {
	cl, ok := c.loadCredential(w, r, st, clientKind)
	if !ok {
		return
	}
	if resent(r, st) {
		c.alreadySent(w, r, st, "the client token")
		return
	}
	// The summary's heading says what happened: no token exists, and why;
	// there was nothing to save.
	refusedAs := "No token was generated"
	fail := func(status int, errs formErrors) {
		c.render(w, r, st, status, "token", view{Title: "Generate a client token", Nav: clientKind.Nav, Errors: errs,
			Refused: refusedAs, Page: c.tokenPageFor(r, st, cl)})
	}
	password := r.PostForm.Get("password")
	if password == "" {
		fail(http.StatusUnprocessableEntity, formErrors{"password": {"Enter your password."}})
		return
	}
	tok, err := c.opts.Service.GenerateClientToken(r.Context(), st.act, cl.ID, password, nil)
	if err != nil {
		ref := refusalOf(err)
		switch ref.Status {
		case http.StatusForbidden:
			refusedAs = "Wrong password: your identity is not confirmed, and no token was generated"
			fail(http.StatusForbidden, formErrors{"password": {"The password is wrong."}})
		case http.StatusConflict:
			fail(http.StatusConflict, formErrors{"": {"The client is disabled or expired: enable it first."}})
		default:
			c.refused(w, r, st, err, nil, fail)
		}
		return
	}
	c.sent(r, st)
	p := oncePage{K: clientKind, Heading: "Client token for " + cl.Name, Row: c.row(r.Context(), st, cl),
		Items: []onceItem{{ID: "access-token", Label: "Access token", Value: tok.AccessToken, Secret: true}},
		Notes: []string{"It expires on " + tok.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC") + " (" + duration(tok.Lifetime) +
			"), and stops working at once if the client is disabled, deleted or given a new secret."},
		Example: "curl -H \"Authorization: Bearer $ACCESS_TOKEN\" " + c.opts.Issuer + "/your/api"}
	c.render(w, r, st, http.StatusOK, "once", view{Title: p.Heading, Nav: clientKind.Nav, Page: p})
}
