package e2e

import (
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestConsoleWebhooks: an admin adds a webhook in the console and sees its
// secret once, sends a test event and reads the delivery log; the forms
// need the CSRF token; a URL of a non-public address is refused next to
// the field; a member has no webhooks page.
func TestConsoleWebhooks(t *testing.T) {
	f := newFixture(t, "embedded", allowHTTPWebhooks)
	recv := newReceiver(t)
	b := f.browser(t)
	b.signIn("alice")
	b.get("/console/webhooks").want(t, http.StatusOK).has(t, "Add a webhook", "No webhook yet")

	bad := b.post("/console/webhooks", "url", "ftp://hooks.example.com/x", "events", "credential.created")
	bad.want(t, http.StatusUnprocessableEntity)
	if msg := bad.fieldError(t, "url"); !strings.Contains(msg, "URL") {
		t.Errorf("url error %q", msg)
	}
	noEvents := b.post("/console/webhooks", "url", recv.srv.URL)
	noEvents.want(t, http.StatusUnprocessableEntity)
	noEvents.fieldError(t, "events")

	created := b.post("/console/webhooks", "url", recv.srv.URL+"/hook", "events", "credential.created", "events", "credential.disabled",
		"description", "ops", "include_subtree", "on").want(t, http.StatusOK)
	created.has(t, "you will not see it again")
	secret := created.value(t, "webhook-secret")
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	if cc := created.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("the page with the secret has Cache-Control %q", cc)
	}
	f.secrets = append(f.secrets, secret, strings.TrimPrefix(secret, "whsec_"))
	m := regexp.MustCompile(`/console/webhooks/(\d+)`).FindStringSubmatch(created.body)
	if m == nil {
		t.Fatalf("no link to the webhook:\n%s", created.body)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	path := "/console/webhooks/" + m[1]
	b.get("/console/webhooks").want(t, http.StatusOK).has(t, html.EscapeString(recv.srv.URL+"/hook")).lacks(t, "whsec_")

	// Forms need the CSRF token.
	if p := b.post(path+"/test", "csrf", "forged"); p.status != http.StatusForbidden {
		t.Errorf("test without the token: status %d", p.status)
	}
	b.get(path).want(t, http.StatusOK)
	b.post(path+"/test").want(t, http.StatusSeeOther, path+"?ok=webhook-test")
	if n, err := f.app.Webhooks().DeliverDue(t.Context()); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	if got := recv.requests(); len(got) != 1 || !strings.Contains(string(got[0].body), `"webhook.test"`) {
		t.Fatalf("the receiver got %d requests", len(got))
	}
	log := b.get(path).want(t, http.StatusOK)
	log.has(t, "Delivery log", "webhook.test", "delivered", "204").lacks(t, "whsec_")

	rotated := b.post(path+"/rotate").want(t, http.StatusOK)
	newSecret := rotated.value(t, "webhook-secret")
	f.secrets = append(f.secrets, newSecret, strings.TrimPrefix(newSecret, "whsec_"))
	if newSecret == secret {
		t.Error("rotation kept the secret")
	}
	b.get(path).want(t, http.StatusOK).lacks(t, "whsec_")

	// A member has no webhooks.
	mem := f.browser(t)
	f.admCreateUser(t, f.admUser("alice"), f.root, "mia", "member")
	mem.signIn("mia")
	if p := mem.get(path); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
		t.Errorf("a member reads a webhook: status %d", p.status)
	}

	b.post(path+"/delete").want(t, http.StatusSeeOther, "/console/webhooks?ok=webhook-deleted")
	if _, err := f.db.GetWebhook(t.Context(), id); err == nil {
		t.Error("the webhook was not deleted")
	}
}
