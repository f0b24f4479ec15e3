package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/fakedns"
	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/webhooks"
	"github.com/tollgate/tollgate/storage"
)

// standardWebhooksVersion is the npm standardwebhooks whose verifier checks
// the deliveries, as a receiver written in JavaScript would.
const standardWebhooksVersion = "1.1.1"

// standardWebhooksVerify verifies every message of a JSON file with the
// library's Webhook.verify and prints, per message, the type it read or
// the error.
const standardWebhooksVerify = `const { Webhook } = require('standardwebhooks');
const fs = require('fs');
const wh = new Webhook(process.env.WEBHOOK_SECRET);
const out = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')).map((m) => {
  try { return { ok: true, type: wh.verify(m.body, m.headers).type }; }
  catch (e) { return { ok: false, error: String(e.message || e) }; }
});
console.log(JSON.stringify(out));
`

// received is a request the test receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint answering the statuses of fail first,
// then 204.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []received
	fail []int
}

func newReceiver(t *testing.T, fail ...int) *receiver {
	r := &receiver{fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: b})
		status := http.StatusNoContent
		if len(r.fail) > 0 {
			status, r.fail = r.fail[0], r.fail[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// verifyWithNode runs npm's standardwebhooks verifier on msgs.
func verifyWithNode(t *testing.T, dir, secret string, msgs []received) []map[string]any {
	t.Helper()
	type msg struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	in := make([]msg, len(msgs))
	for i, m := range msgs {
		in[i] = msg{Headers: map[string]string{
			"webhook-id": m.header.Get("webhook-id"), "webhook-timestamp": m.header.Get("webhook-timestamp"),
			"webhook-signature": m.header.Get("webhook-signature"),
		}, Body: string(m.body)}
	}
	b, _ := json.Marshal(in)
	file := filepath.Join(t.TempDir(), "messages.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "node", filepath.Join(dir, "verify.cjs"), file)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node verifier: %v\n%s", err, out)
	}
	var res []map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node verifier printed %s: %v", out, err)
	}
	return res
}

func allowHTTPWebhooks(c *config.Config) { c.Webhooks.AllowHTTP = true }

// TestWebhooksDeliverSignedLifecycleEvents: a webhook of the root account
// hears of the lifecycle of a key of its child account, signed so that
// npm's standardwebhooks verifier accepts every delivery and refuses one
// whose body changed; the secret is answered once, never again, never in
// the delivery log or the logs.
func TestWebhooksDeliverSignedLifecycleEvents(t *testing.T) {
	dir := npmDir(t, "standardwebhooks", standardWebhooksVersion, "verify.cjs", standardWebhooksVerify)
	forEachBackend(t, func(t *testing.T, f *fixture) {
		recv := newReceiver(t)
		alice := f.admUser("alice")
		created := f.admWant(t, alice, http.MethodPost, "/webhooks", admBody(map[string]any{
			"url": recv.srv.URL + "/hooks", "description": "lifecycle",
			"events": []string{"credential.created", "credential.disabled", "credential.enabled", "credential.rotated", "credential.deleted"},
		}), http.StatusCreated)
		secret, _ := created["secret"].(string)
		if !strings.HasPrefix(secret, "whsec_") || created["include_subtree"] != true {
			t.Fatalf("created %v", created)
		}
		f.secrets = append(f.secrets, secret, strings.TrimPrefix(secret, "whsec_"))
		hook := admID(t, created)
		if got := f.admWant(t, alice, http.MethodGet, admPath("/webhooks", hook), "", http.StatusOK); got["secret"] != nil {
			t.Errorf("GET shows the secret again")
		}

		// The key belongs to the child account: the root's webhook
		// includes its subtree.
		bobTok := f.admUser("bob")
		key := f.admWant(t, bobTok, http.MethodPost, "/keys", `{"name":"hooked"}`, http.StatusCreated)
		kid := admID(t, key)
		f.secrets = append(f.secrets, key["key"].(string))
		f.admWant(t, bobTok, http.MethodPatch, admPath("/keys", kid), `{"status":"disabled"}`, http.StatusOK)
		f.admWant(t, bobTok, http.MethodPatch, admPath("/keys", kid), `{"name":"renamed"}`, http.StatusOK) // no event
		f.admWant(t, bobTok, http.MethodPatch, admPath("/keys", kid), `{"status":"active"}`, http.StatusOK)
		rotated := f.admWant(t, bobTok, http.MethodPost, admPath("/keys", kid, "/rotate"), "", http.StatusOK)
		f.secrets = append(f.secrets, rotated["key"].(string))
		f.admWant(t, bobTok, http.MethodDelete, admPath("/keys", kid), "", http.StatusNoContent)

		if n, err := f.app.Webhooks().DeliverDue(t.Context()); err != nil || n != 5 {
			t.Fatalf("DeliverDue = %d, %v; want 5 deliveries", n, err)
		}
		got := recv.requests()
		if len(got) != 5 {
			t.Fatalf("the receiver got %d requests, want 5", len(got))
		}
		wantTypes := []string{"credential.created", "credential.disabled", "credential.enabled", "credential.rotated", "credential.deleted"}
		types := map[string]bool{}
		for _, r := range got {
			var env struct {
				Type      string          `json:"type"`
				Timestamp time.Time       `json:"timestamp"`
				Data      json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(r.body, &env); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			types[env.Type] = true
			var data map[string]any
			_ = json.Unmarshal(env.Data, &data)
			if data["id"] != float64(kid) || data["kind"] != "key" || data["account_id"] != float64(f.child.ID) || data["name"] == nil || data["status"] == nil {
				t.Errorf("%s data = %v", env.Type, data)
			}
			if r.header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.header.Get("webhook-id"), "msg_") {
				t.Errorf("headers %v", r.header)
			}
			admNoSecrets(t, f, "delivery "+env.Type, string(r.body))
		}
		for _, want := range wantTypes {
			if !types[want] {
				t.Errorf("no %s delivered (got %v)", want, types)
			}
		}

		forged := append([]received(nil), got[0])
		forged[0].body = []byte(strings.Replace(string(got[0].body), `"key"`, `"client"`, 1))
		res := verifyWithNode(t, dir, secret, append(got, forged[0]))
		for i, r := range res[:len(got)] {
			if r["ok"] != true {
				t.Errorf("standardwebhooks refuses delivery %d: %v", i, r)
			}
		}
		if last := res[len(res)-1]; last["ok"] != false {
			t.Errorf("standardwebhooks accepts a delivery whose body changed: %v", last)
		}

		// The delivery log: delivered once each, with the status, never
		// the secret or the payload.
		log := f.admDo(t, alice, http.MethodGet, admPath("/webhooks", hook, "/deliveries"), "")
		if log.status != http.StatusOK || strings.Contains(string(log.body), "whsec_") || strings.Contains(string(log.body), "payload") {
			t.Fatalf("delivery log %d %s", log.status, log.body)
		}
		items := admItems(t, log.json(t))
		if len(items) != 5 {
			t.Fatalf("delivery log has %d entries, want 5", len(items))
		}
		for _, it := range items {
			if it["status"] != "delivered" || it["attempts"] != float64(1) || it["last_status_code"] != float64(204) || it["delivered_at"] == nil {
				t.Errorf("delivery log entry %v", it)
			}
		}

		// A test event, on request; then a rotated secret signs.
		test := f.admWant(t, alice, http.MethodPost, admPath("/webhooks", hook, "/test"), "", http.StatusAccepted)
		if test["event_type"] != "webhook.test" || test["status"] != "pending" {
			t.Errorf("test delivery %v", test)
		}
		rot := f.admWant(t, alice, http.MethodPost, admPath("/webhooks", hook, "/rotate"), "", http.StatusOK)
		newSecret, _ := rot["secret"].(string)
		if !strings.HasPrefix(newSecret, "whsec_") || newSecret == secret {
			t.Fatalf("rotated %v", rot)
		}
		f.secrets = append(f.secrets, newSecret, strings.TrimPrefix(newSecret, "whsec_"))
		if n, err := f.app.Webhooks().DeliverDue(t.Context()); err != nil || n != 1 {
			t.Fatalf("DeliverDue = %d, %v; want the test event", n, err)
		}
		got = recv.requests()
		if r := verifyWithNode(t, dir, newSecret, got[5:]); r[0]["ok"] != true || r[0]["type"] != "webhook.test" {
			t.Errorf("the test event under the new secret: %v", r)
		}

		// The audit trail has every change of the webhook.
		audit := f.admAll(t, alice, "/audit", 100)
		var actions []string
		for _, e := range audit {
			if e["target_type"] == "webhook" {
				actions = append(actions, e["action"].(string))
			}
		}
		if strings.Join(actions, ",") != "webhook.rotate_secret,webhook.test,webhook.create" {
			t.Errorf("audited webhook actions %v", actions)
		}
	}, allowHTTPWebhooks)
}

// TestWebhookSecretEncryptedAtRest: the database holds the secret only
// sealed under the key-encryption key.
func TestWebhookSecretEncryptedAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		created := f.admWant(t, alice, http.MethodPost, "/webhooks", `{"url":"http://127.0.0.1:9/x","events":["credential.created"]}`, http.StatusCreated)
		secret := created["secret"].(string)
		f.secrets = append(f.secrets, secret, strings.TrimPrefix(secret, "whsec_"))
		w, err := f.db.GetWebhook(t.Context(), admID(t, created))
		if err != nil {
			t.Fatal(err)
		}
		if len(w.SecretSealed) < 40 || strings.Contains(string(w.SecretSealed), strings.TrimPrefix(secret, "whsec_")) {
			t.Fatalf("stored secret is not sealed: %q", w.SecretSealed)
		}
		s, _ := webhooks.NewSecrets(f.keys.KeyEncryptionKey)
		if got, err := s.Open(w.ID, w.SecretSealed); err != nil || got != secret {
			t.Errorf("the sealed secret opens to %v, %v", got == secret, err)
		}
	}, allowHTTPWebhooks)
}

// TestWebhookRetriesAcrossRestart: a delivery the receiver refuses is
// retried after its back-off by a deliverer built afresh on the same
// database (a restarted instance), with the same webhook-id; the delivery
// log shows the attempts.
func TestWebhookRetriesAcrossRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		recv := newReceiver(t, http.StatusServiceUnavailable)
		alice := f.admUser("alice")
		created := f.admWant(t, alice, http.MethodPost, "/webhooks", admBody(map[string]any{"url": recv.srv.URL, "events": []string{"credential.created"}}), http.StatusCreated)
		f.secrets = append(f.secrets, created["secret"].(string))
		hook := admID(t, created)
		f.admWant(t, alice, http.MethodPost, "/keys", `{"name":"retried"}`, http.StatusCreated)

		if n, err := f.app.Webhooks().DeliverDue(t.Context()); err != nil || n != 1 {
			t.Fatalf("DeliverDue = %d, %v", n, err)
		}
		items := admItems(t, f.admWant(t, alice, http.MethodGet, admPath("/webhooks", hook, "/deliveries"), "", http.StatusOK))
		if len(items) != 1 || items[0]["status"] != "pending" || items[0]["attempts"] != float64(1) ||
			items[0]["last_status_code"] != float64(503) || items[0]["last_error"] != "status" || items[0]["next_attempt_at"] == nil {
			t.Fatalf("after a 503: %v", items)
		}
		// Not due before its back-off (5 s ± 20%).
		if n, _ := f.app.Webhooks().DeliverDue(t.Context()); n != 0 {
			t.Errorf("retried at once (%d)", n)
		}

		restarted := webhooks.NewDeliverer(webhooks.DelivererOptions{
			Store: f.db, Secrets: mustSecrets(t, f.keys.KeyEncryptionKey),
			Poster: egress.New(egress.Options{AllowInsecure: true, Timeout: 5 * time.Second}), Now: f.clock.now,
		})
		f.clock.advance(10 * time.Second)
		if n, err := restarted.DeliverDue(t.Context()); err != nil || n != 1 {
			t.Fatalf("after the back-off, the restarted deliverer claimed %d (%v)", n, err)
		}
		got := recv.requests()
		if len(got) != 2 || got[0].header.Get("webhook-id") != got[1].header.Get("webhook-id") {
			t.Fatalf("attempts %d, ids %q", len(got), []string{got[0].header.Get("webhook-id"), got[len(got)-1].header.Get("webhook-id")})
		}
		items = admItems(t, f.admWant(t, alice, http.MethodGet, admPath("/webhooks", hook, "/deliveries"), "", http.StatusOK))
		if items[0]["status"] != "delivered" || items[0]["attempts"] != float64(2) || items[0]["next_attempt_at"] != nil {
			t.Errorf("after the retry: %v", items[0])
		}
	}, allowHTTPWebhooks)
}

func mustSecrets(t *testing.T, kek []byte) *webhooks.Secrets {
	t.Helper()
	s, err := webhooks.NewSecrets(kek)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWebhookOutboxRollsBackWithTheChange: deliveries are written in the
// transaction of the change; a change that rolls back sends nothing, one
// that commits sends its event.
func TestWebhookOutboxRollsBackWithTheChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		alice := f.admUser("alice")
		created := f.admWant(t, alice, http.MethodPost, "/webhooks", `{"url":"http://127.0.0.1:9/x","events":["credential.disabled"]}`, http.StatusCreated)
		f.secrets = append(f.secrets, created["secret"].(string))
		hook := admID(t, created)
		store := webhooks.NewOutbox(f.db, f.clock.now)
		disable := func(fail bool) error {
			return store.InTx(t.Context(), func(tx storage.Store) error {
				c, err := tx.UpdateClient(t.Context(), f.cc.ID, func(c *storage.Client) error { c.Disable(storage.DisabledManually); return nil })
				if err != nil {
					return err
				}
				if _, err := tx.AppendAudit(t.Context(), storage.AuditEvent{AccountID: c.AccountID, Action: "client.update", TargetType: "client", TargetID: c.ID, Outcome: "success"}); err != nil {
					return err
				}
				if fail {
					return errors.New("later step failed")
				}
				return nil
			})
		}
		if err := disable(true); err == nil {
			t.Fatal("the failing transaction did not fail")
		}
		if ds, err := f.db.ListDeliveries(t.Context(), hook, storage.Page{}); err != nil || len(ds) != 0 {
			t.Fatalf("a rolled-back change queued %d deliveries (%v)", len(ds), err)
		}
		if c, _ := f.db.GetClient(t.Context(), f.cc.ID); c.Status != storage.StatusActive {
			t.Fatalf("the rolled-back change stayed: %s", c.Status)
		}
		if err := disable(false); err != nil {
			t.Fatal(err)
		}
		ds, err := f.db.ListDeliveries(t.Context(), hook, storage.Page{})
		if err != nil || len(ds) != 1 || ds[0].EventType != "credential.disabled" {
			t.Fatalf("the committed change queued %v (%v)", ds, err)
		}
	}, allowHTTPWebhooks)
}

// TestWebhookURLsRefused: without webhooks.allow_http, a webhook URL that
// is http or names a non-public address is refused at creation naming the
// url field; a name that resolves to a loopback, private or link-local
// address is refused at every delivery, after resolution.
func TestWebhookURLsRefused(t *testing.T) {
	f := newFixture(t, "embedded")
	alice := f.admUser("alice")
	for _, u := range []string{"http://hooks.example.com/x", "https://127.0.0.1/x", "https://10.1.2.3/x", "https://169.254.169.254/latest/meta-data/",
		"https://[::1]/x", "https://localhost/x", "https://user:pw@hooks.example.com/x", "ftp://hooks.example.com/x", "https://hooks.example.com/x#frag", "not a url"} {
		res := f.admDo(t, alice, http.MethodPost, "/webhooks", admBody(map[string]any{"url": u, "events": []string{"credential.created"}}))
		admProblem(t, res, http.StatusUnprocessableEntity, "url")
	}

	// Names that pass the check at creation, and resolve to non-public
	// addresses when the delivery is made.
	recv := newReceiver(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(recv.srv.URL, "http://"))
	resolver := fakedns.Resolver(map[string]netip.Addr{
		"loopback.hooks.test": netip.MustParseAddr("127.0.0.1"),
		"private.hooks.test":  netip.MustParseAddr("10.0.0.7"),
		"metadata.hooks.test": netip.MustParseAddr("169.254.169.254"),
		"v6.hooks.test":       netip.MustParseAddr("::1"),
	})
	d := webhooks.NewDeliverer(webhooks.DelivererOptions{
		Store: f.db, Secrets: mustSecrets(t, f.keys.KeyEncryptionKey),
		Poster: egress.New(egress.Options{Timeout: 2 * time.Second, Resolver: resolver}), Now: f.clock.now,
	})
	var hooks []int64
	for _, host := range []string{"loopback.hooks.test", "private.hooks.test", "metadata.hooks.test", "v6.hooks.test"} {
		created := f.admWant(t, alice, http.MethodPost, "/webhooks", admBody(map[string]any{"url": "https://" + net.JoinHostPort(host, port) + "/x", "events": []string{"credential.created"}}), http.StatusCreated)
		f.secrets = append(f.secrets, created["secret"].(string))
		hooks = append(hooks, admID(t, created))
	}
	f.admWant(t, alice, http.MethodPost, "/keys", `{"name":"ssrf"}`, http.StatusCreated)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if n, err := d.DeliverDue(ctx); err != nil || n != 4 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	if got := recv.requests(); len(got) != 0 {
		t.Fatalf("the receiver behind non-public names got %d requests", len(got))
	}
	for i, h := range hooks {
		ds, err := f.db.ListDeliveries(t.Context(), h, storage.Page{})
		if err != nil || len(ds) != 1 || ds[0].LastError != webhooks.ErrorRefused || ds[0].Status != storage.DeliveryPending {
			t.Errorf("hook %d: deliveries %+v (%v), want one refused and pending", i, ds, err)
		}
	}
}

// TestWebhookAccess: members and other tenants reach no webhook; the
// fields are checked.
func TestWebhookAccess(t *testing.T) {
	f := newFixture(t, "embedded", allowHTTPWebhooks)
	alice := f.admUser("alice")
	created := f.admWant(t, alice, http.MethodPost, "/webhooks", `{"url":"http://127.0.0.1:9/x","events":["credential.created"]}`, http.StatusCreated)
	f.secrets = append(f.secrets, created["secret"].(string))
	hook := admID(t, created)
	carol := f.admCarol()
	for _, path := range []string{admPath("/webhooks", hook), admPath("/webhooks", hook, "/deliveries")} {
		admProblem(t, f.admDo(t, carol, http.MethodGet, path, ""), http.StatusNotFound)
	}
	admProblem(t, f.admDo(t, carol, http.MethodPost, admPath("/webhooks", hook, "/test"), ""), http.StatusNotFound)
	admProblem(t, f.admDo(t, carol, http.MethodPost, "/webhooks", `{"account_id":`+strconv.FormatInt(f.root.ID, 10)+`,"url":"http://127.0.0.1:9/x","events":["credential.created"]}`), http.StatusUnprocessableEntity, "account_id")
	for _, tc := range []struct{ body, field string }{
		{`{"url":"http://127.0.0.1:9/x","events":[]}`, "events"},
		{`{"url":"http://127.0.0.1:9/x","events":["credential.exploded"]}`, "events"},
		{`{"url":"http://127.0.0.1:9/x","events":["credential.created","credential.created"]}`, "events"},
		{`{"url":"http://127.0.0.1:9/x"}`, "events"},
		{`{"events":["credential.created"]}`, "url"},
		{`{"url":"http://127.0.0.1:9/x","events":["credential.created"],"description":"a\u202eb"}`, "description"},
	} {
		admProblem(t, f.admDo(t, alice, http.MethodPost, "/webhooks", tc.body), http.StatusUnprocessableEntity, tc.field)
	}
	admProblem(t, f.admDo(t, alice, http.MethodPost, "/webhooks", `{"url":"http://127.0.0.1:9/x","events":["credential.created"],"secret":"whsec_x"}`), http.StatusBadRequest)
	admProblem(t, f.admDo(t, alice, http.MethodPatch, admPath("/webhooks", hook), `{"enabled":false}`, "If-Match", `"99"`), http.StatusPreconditionFailed)
	got := f.admWant(t, alice, http.MethodPatch, admPath("/webhooks", hook), `{"enabled":false,"include_subtree":false}`, http.StatusOK)
	if got["enabled"] != false || got["include_subtree"] != false || got["secret"] != nil {
		t.Errorf("patched %v", got)
	}
	f.admWant(t, alice, http.MethodDelete, admPath("/webhooks", hook), "", http.StatusNoContent)
	admProblem(t, f.admDo(t, alice, http.MethodGet, admPath("/webhooks", hook), ""), http.StatusNotFound)
}

// TestWebhookSweeperAndExpiryEvents: the sweeper's disabling of an expired
// credential sends credential.auto_disabled (its transaction writes the
// outbox), and a credential expiring within the warning period sends
// credential.expiring once, however often it is scanned.
func TestWebhookSweeperAndExpiryEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		recv := newReceiver(t)
		alice := f.admUser("alice")
		created := f.admWant(t, alice, http.MethodPost, "/webhooks", admBody(map[string]any{"url": recv.srv.URL,
			"events": []string{"credential.auto_disabled", "credential.expiring"}}), http.StatusCreated)
		f.secrets = append(f.secrets, created["secret"].(string))
		soon := f.client(storage.Client{AccountID: f.child.ID, Name: "soon", GrantTypes: []string{"client_credentials"}, ExpiresAt: f.clock.now().Add(48 * time.Hour)})
		if n, err := f.app.Sweeper().Sweep(t.Context()); err != nil || n == 0 {
			t.Fatalf("Sweep = %d, %v", n, err)
		}
		for range 2 {
			if _, err := f.app.Expiry().Scan(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.app.Webhooks().DeliverDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		byType := map[string][]map[string]any{}
		for _, r := range recv.requests() {
			var env struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(r.body, &env); err != nil {
				t.Fatal(err)
			}
			byType[env.Type] = append(byType[env.Type], env.Data)
		}
		if got := byType["credential.expiring"]; len(got) != 1 || got[0]["id"] != float64(soon.ID) || got[0]["expires_at"] == nil {
			t.Errorf("credential.expiring: %v", got)
		}
		auto := byType["credential.auto_disabled"]
		if !slices.ContainsFunc(auto, func(d map[string]any) bool {
			return d["id"] == float64(f.expired.ID) && d["status"] == "disabled" && d["disabled_reason"] == "expired"
		}) {
			t.Errorf("credential.auto_disabled: %v", auto)
		}
	}, allowHTTPWebhooks)
}

// TestWebhookDeliveryLogPruned: once webhooks.delivery_retention (30 days
// by default) has passed, the expiry job deletes a delivered delivery from
// the delivery log, and keeps one still pending.
func TestWebhookDeliveryLogPruned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		recv := newReceiver(t)
		alice := f.admUser("alice")
		created := f.admWant(t, alice, http.MethodPost, "/webhooks", admBody(map[string]any{"url": recv.srv.URL, "events": []string{"credential.created"}}), http.StatusCreated)
		f.secrets = append(f.secrets, created["secret"].(string))
		hook := admID(t, created)
		log := func() []map[string]any {
			t.Helper()
			return admItems(t, f.admWant(t, alice, http.MethodGet, admPath("/webhooks", hook, "/deliveries"), "", http.StatusOK))
		}
		f.admWant(t, alice, http.MethodPost, admPath("/webhooks", hook, "/test"), "", http.StatusAccepted)
		if n, err := f.app.Webhooks().DeliverDue(t.Context()); err != nil || n != 1 {
			t.Fatalf("DeliverDue = %d, %v", n, err)
		}
		if n, err := f.app.Expiry().Prune(t.Context()); err != nil || n != 0 {
			t.Errorf("Prune of a fresh log = %d, %v; want nothing deleted", n, err)
		}

		f.clock.advance(30*24*time.Hour + time.Minute)
		alice = f.admUser("alice")
		pending := f.admWant(t, alice, http.MethodPost, admPath("/webhooks", hook, "/test"), "", http.StatusAccepted)
		f.clock.advance(30 * 24 * time.Hour)
		if n, err := f.app.Expiry().Prune(t.Context()); err != nil || n != 1 {
			t.Fatalf("Prune after the retention = %d, %v; want the delivered delivery deleted", n, err)
		}
		alice = f.admUser("alice")
		items := log()
		if len(items) != 1 || items[0]["event_id"] != pending["event_id"] || items[0]["status"] != "pending" {
			t.Errorf("delivery log after Prune = %v, want only the pending delivery %v", items, pending["event_id"])
		}
	}, allowHTTPWebhooks)
}
