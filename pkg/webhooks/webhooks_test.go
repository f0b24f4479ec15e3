package webhooks_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/pkg/webhooks"
)

// TestSignStandardWebhooksVector signs the example of the Standard
// Webhooks specification and gets its signature; a changed id, timestamp
// or body changes it.
func TestSignStandardWebhooksVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = 1614265330
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	got, err := webhooks.Sign(secret, id, ts, []byte(body))
	if err != nil || got != want {
		t.Fatalf("Sign = %q, %v; want %q", got, err, want)
	}
	for name, sig := range map[string]func() (string, error){
		"id":        func() (string, error) { return webhooks.Sign(secret, id+"x", ts, []byte(body)) },
		"timestamp": func() (string, error) { return webhooks.Sign(secret, id, ts+1, []byte(body)) },
		"body":      func() (string, error) { return webhooks.Sign(secret, id, ts, []byte(`{"test": 2432232315}`)) },
	} {
		if s, _ := sig(); s == want {
			t.Errorf("a changed %s keeps the signature", name)
		}
	}
}

func TestNewSecret(t *testing.T) {
	a, err := webhooks.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := webhooks.NewSecret()
	if a == b || !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("secrets %q, %q", a, b)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if err != nil || len(key) < 24 || len(key) > 64 {
		t.Errorf("secret key of %d bytes (%v), want 24 to 64", len(key), err)
	}
}

// TestSecretsSealed: a sealed secret does not carry the secret, opens
// only for its own webhook and only under its key-encryption key.
func TestSecretsSealed(t *testing.T) {
	s, err := webhooks.NewSecrets([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := webhooks.NewSecret()
	sealed, err := s.Seal(7, secret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), secret) || strings.Contains(string(sealed), strings.TrimPrefix(secret, "whsec_")) {
		t.Fatalf("the sealed secret carries it in clear")
	}
	if got, err := s.Open(7, sealed); err != nil || got != secret {
		t.Errorf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(8, sealed); err == nil {
		t.Errorf("a secret sealed for webhook 7 opens for webhook 8")
	}
	other, _ := webhooks.NewSecrets([]byte("fedcba9876543210fedcba9876543210"))
	if _, err := other.Open(7, sealed); err == nil {
		t.Errorf("a secret opens under another key-encryption key")
	}
}
