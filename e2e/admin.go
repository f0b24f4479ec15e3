package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/storage"
)

// admCaller is a management API caller's Bearer token.
type admCaller string

// admUser signs username in (with the fixture password) through the dsp
// client.
func (f *fixture) admUser(username string) admCaller {
	f.t.Helper()
	return admCaller(f.tokenDSP(f.dsp, username))
}

// admCarol signs carol in: she belongs to the sibling tree, which the
// root's dsp client does not serve, so through a dsp client of her own.
func (f *fixture) admCarol() admCaller {
	f.t.Helper()
	c := f.client(storage.Client{AccountID: f.other.ID, Name: "other dsp", GrantTypes: []string{"client_credentials", "eskimi_dsp"}})
	return admCaller(f.tokenDSP(c, "carol"))
}

// admManager returns a client of account acc holding the management scope,
// owned by an active admin of acc (a management client answers to one),
// and a client_credentials token of it.
func (f *fixture) admManager(acc storage.Account) (storage.Client, admCaller) {
	f.t.Helper()
	users, err := f.db.ListUsers(f.t.Context(), storage.UserFilter{AccountID: acc.ID}, storage.Page{Limit: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	var owner int64
	for _, u := range users {
		if u.Role == storage.RoleAdmin && u.Status == storage.StatusActive {
			owner = u.ID
			break
		}
	}
	if owner == 0 {
		f.t.Fatalf("no active admin in account %d to own its manager", acc.ID)
	}
	c := f.client(storage.Client{AccountID: acc.ID, OwnerID: owner, Name: "manager of " + acc.Name, GrantTypes: []string{"client_credentials"},
		Scopes: []string{f.cfg.Credentials.ManagementScope}})
	return c, admCaller(f.tokenCC(c))
}

// admDo calls the management API as who (no Authorization when who is
// empty), with a JSON body when body is not empty. Every answer is checked
// for passwords, password hashes and fixture secrets.
func (f *fixture) admDo(t *testing.T, who admCaller, method, path, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+string(who))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: res.StatusCode, header: res.Header, body: b}
	admNoSecrets(t, f, method+" "+path, string(b))
	return out
}

// admNoSecrets fails t when s carries a password, a password hash or a
// secret the fixture handed out.
func admNoSecrets(t *testing.T, f *fixture, what, s string) {
	t.Helper()
	for _, bad := range []string{"password_hash", "$argon2id$", "$2a$", "$2b$"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s: answer contains %q: %s", what, bad, s)
		}
	}
	for _, sec := range append(slices.Clone(f.secrets), testPassword) {
		if strings.Contains(s, sec) {
			t.Errorf("%s: answer contains a password or secret", what)
		}
	}
}

// admWant calls the API, wants status, and decodes a JSON body (nil when
// empty).
func (f *fixture) admWant(t *testing.T, who admCaller, method, path, body string, status int, header ...string) map[string]any {
	t.Helper()
	res := f.admDo(t, who, method, path, body, header...)
	if res.status != status {
		t.Fatalf("%s %s: status %d, want %d (body %s)", method, path, res.status, status, res.body)
	}
	if len(res.body) == 0 {
		return nil
	}
	if status < 300 {
		if ct := res.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
		}
	}
	m := map[string]any{}
	if err := json.Unmarshal(res.body, &m); err != nil {
		t.Fatalf("%s %s: body %s: %v", method, path, res.body, err)
	}
	return m
}

// admProblem checks an RFC 9457 answer of status naming every one of
// fields.
func admProblem(t *testing.T, res response, status int, fields ...string) {
	t.Helper()
	if res.status != status {
		t.Errorf("status = %d, want %d (body %s)", res.status, status, res.body)
		return
	}
	if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p struct {
		Status int             `json:"status"`
		Errors []admFieldError `json:"errors"`
	}
	if err := json.Unmarshal(res.body, &p); err != nil || p.Status != status {
		t.Errorf("problem body %s (%v), want status %d", res.body, err, status)
	}
	for _, want := range fields {
		if !slices.ContainsFunc(p.Errors, func(e admFieldError) bool { return e.Field == want && e.Detail != "" }) {
			t.Errorf("problem %s does not name field %q", res.body, want)
		}
	}
}

type admFieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// admBody is v as JSON.
func admBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// admID is the id of a decoded record.
func admID(t *testing.T, m map[string]any) int64 {
	t.Helper()
	n, ok := m["id"].(float64)
	if !ok {
		t.Fatalf("record %v has no numeric id", m)
	}
	return int64(n)
}

func admPath(parts ...any) string {
	var b strings.Builder
	for _, p := range parts {
		switch v := p.(type) {
		case int64:
			b.WriteString("/" + strconv.FormatInt(v, 10))
		case string:
			b.WriteString(v)
		}
	}
	return b.String()
}

// admLogin asks for an eskimi_dsp token of username with password.
func (f *fixture) admLogin(username, password string) response {
	f.t.Helper()
	return f.post("/oauth/token", "application/json", admBody(map[string]any{
		"grant_type": "eskimi_dsp", "username": username, "password": password,
		"client_id": f.dsp.ID, "client_secret": f.secretOf[f.dsp.ID],
	}))
}

// admItems decodes the items of a list answer.
func admItems(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	raw, ok := m["items"].([]any)
	if !ok {
		t.Fatalf("list %v has no items", m)
	}
	out := make([]map[string]any, len(raw))
	for i, it := range raw {
		out[i] = it.(map[string]any)
	}
	return out
}

// admAll follows a paginated list from path (with or without a query
// string) with limit, and returns every item.
func (f *fixture) admAll(t *testing.T, who admCaller, path string, limit int) []map[string]any {
	t.Helper()
	if !strings.Contains(path, "?") {
		path += "?"
	}
	var out []map[string]any
	after := ""
	for range 100 {
		m := f.admWant(t, who, http.MethodGet, path+"&limit="+strconv.Itoa(limit)+after, "", http.StatusOK)
		items := admItems(t, m)
		if len(items) > limit {
			t.Fatalf("%s: %d items, want at most %d", path, len(items), limit)
		}
		out = append(out, items...)
		next, ok := m["next"].(float64)
		if !ok {
			return out
		}
		after = "&after=" + strconv.FormatInt(int64(next), 10)
	}
	t.Fatalf("%s: pagination does not end", path)
	return nil
}

// admFieldIDs collects field of every item as an id.
func admFieldIDs(items []map[string]any, field string) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		n, _ := it[field].(float64)
		out[i] = int64(n)
	}
	return out
}

// admCreateUser creates a user through the API as who.
func (f *fixture) admCreateUser(t *testing.T, who admCaller, acc storage.Account, username, role string) storage.User {
	t.Helper()
	body := map[string]any{"account_id": acc.ID, "username": username, "password": testPassword}
	if role != "" {
		body["role"] = role
	}
	m := f.admWant(t, who, http.MethodPost, "/users", admBody(body), http.StatusCreated)
	u, err := f.db.GetUser(t.Context(), admID(t, m))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// admDefaultKey returns the id of user u's default key.
func (f *fixture) admDefaultKey(t *testing.T, u storage.User) int64 {
	t.Helper()
	keys, err := f.db.ListClients(t.Context(), storage.ClientFilter{AccountID: u.AccountID, OwnerID: u.ID, Kind: storage.KindKey}, storage.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.IsDefault {
			return k.ID
		}
	}
	t.Fatalf("user %s has no default key", u.Username)
	return 0
}

func countClients(t *testing.T, f *fixture, kind storage.Kind) int {
	t.Helper()
	cs, err := f.db.ListClients(t.Context(), storage.ClientFilter{AccountID: f.root.ID, Subtree: true, Kind: kind}, storage.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

// bearer is a management API caller's Authorization header value.
func bearer(tok string) string { return "Bearer " + tok }

// apiDo calls the management API.
func (f *fixture) apiDo(method, path, auth, body string, header ...string) response {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return f.do(req)
}

// apiJSON calls the API, wants status, and decodes the body.
func (f *fixture) apiJSON(method, path, auth, body string, status int) map[string]any {
	f.t.Helper()
	res := f.apiDo(method, path, auth, body)
	if res.status != status {
		f.t.Fatalf("%s %s: status %d, want %d (body %s)", method, path, res.status, status, res.body)
	}
	if len(res.body) == 0 {
		return nil
	}
	m := map[string]any{}
	if err := json.Unmarshal(res.body, &m); err != nil {
		f.t.Fatalf("%s %s: body %s: %v", method, path, res.body, err)
	}
	return m
}

func id(m map[string]any) string { return strconv.FormatInt(int64(m["id"].(float64)), 10) }
