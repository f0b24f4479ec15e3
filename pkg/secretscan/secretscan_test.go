package secretscan_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/secretscan"
)

// keyServer serves a key document holding key under id.
func keyServer(t testing.TB, id string, key *ecdsa.PrivateKey) (*httptest.Server, *int) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{
		{"key_identifier": "not-a-key", "key": "garbage", "is_current": false},
		{"key_identifier": id, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true},
	}})
	var mu sync.Mutex
	n := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		*n++
		mu.Unlock()
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	return srv, n
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestKeysRefetchOncePerInterval(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv, fetches := keyServer(t, "k1", key)
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	keys := secretscan.NewKeys(secretscan.KeysOptions{URL: srv.URL, Fetcher: egress.New(egress.Options{AllowInsecure: true}), Now: c.now})
	ctx := t.Context()
	if got, err := keys.Key(ctx, "k1"); err != nil || !got.Equal(&key.PublicKey) {
		t.Fatalf("Key(k1) = %v, %v; want the served key", got, err)
	}
	for range 3 {
		if _, err := keys.Key(ctx, "unknown"); !errors.Is(err, secretscan.ErrUnknownKey) {
			t.Errorf("Key(unknown) = %v, want ErrUnknownKey", err)
		}
	}
	if *fetches != 1 {
		t.Errorf("%d fetches within the interval, want 1", *fetches)
	}
	c.t = c.t.Add(secretscan.DefaultRefetchInterval)
	for range 3 {
		if _, err := keys.Key(ctx, "unknown"); !errors.Is(err, secretscan.ErrUnknownKey) {
			t.Errorf("Key(unknown) = %v, want ErrUnknownKey", err)
		}
	}
	if *fetches != 2 {
		t.Errorf("%d fetches after the interval, want 2 (one for the unknown id)", *fetches)
	}
	if _, err := keys.Key(ctx, "not-a-key"); !errors.Is(err, secretscan.ErrUnknownKey) {
		t.Errorf("a key that does not parse: %v, want ErrUnknownKey", err)
	}
}

func TestKeysUnavailable(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv, fetches := keyServer(t, "k1", key)
	for _, c := range []struct {
		name     string
		url      string
		insecure bool
	}{
		{"loopback refused without the switch", strings.Replace(srv.URL, "http:", "https:", 1), false},
		{"http refused without the switch", srv.URL, false},
		{"nothing listening", "http://127.0.0.1:1/keys", true},
	} {
		keys := secretscan.NewKeys(secretscan.KeysOptions{URL: c.url, Fetcher: egress.New(egress.Options{AllowInsecure: c.insecure, Timeout: time.Second})})
		if _, err := keys.Key(t.Context(), "k1"); !errors.Is(err, secretscan.ErrKeysUnavailable) {
			t.Errorf("%s: %v, want ErrKeysUnavailable", c.name, err)
		}
	}
	if *fetches != 0 {
		t.Errorf("the key server was reached %d times", *fetches)
	}
}

// recorder is a Reporter that says true_positive for the keys it knows.
type recorder struct {
	mu       sync.Mutex
	known    map[string]bool
	reported []string
	fail     bool
}

func (r *recorder) ReportLeaked(_ context.Context, l manage.LeakReport) (manage.LeakLabel, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return "", errors.New("database down")
	}
	r.reported = append(r.reported, l.Key)
	if r.known[l.Key] {
		return manage.TruePositive, nil
	}
	return manage.FalsePositive, nil
}

func signed(t testing.TB, key *ecdsa.PrivateKey, id, body string) *http.Request {
	t.Helper()
	digest := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, secretscan.Path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(secretscan.HeaderKeyID, id)
	req.Header.Set(secretscan.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return req
}

func TestHandlerVerifiesBeforeActing(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv, _ := keyServer(t, "k1", key)
	const real = "tgk_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA000000"
	rec := &recorder{known: map[string]bool{real: true}}
	h := secretscan.New(secretscan.Options{Reporter: rec,
		Keys: secretscan.NewKeys(secretscan.KeysOptions{URL: srv.URL, Fetcher: egress.New(egress.Options{AllowInsecure: true})})})
	body := `[{"token":"` + real + `","type":"tollgate_api_key","url":"https://github.com/a/b","source":"content"},` +
		`{"token":"ghp_other","type":"tollgate_api_key","url":"https://github.com/a/b"}]`

	for _, c := range []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"forged", signed(t, forger, "k1", body), http.StatusUnauthorized},
		{"unknown key id", signed(t, key, "k9", body), http.StatusUnauthorized},
		{"malformed", signed(t, key, "k1", `[{"token":1}]`), http.StatusBadRequest},
		{"too many entries", signed(t, key, "k1", "["+strings.Repeat(`{"token":"x"},`, secretscan.MaxEntries)+`{"token":"x"}]`), http.StatusBadRequest},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, c.req)
		if w.Code != c.status {
			t.Errorf("%s: %d, want %d", c.name, w.Code, c.status)
		}
	}
	if len(rec.reported) != 0 {
		t.Fatalf("refused reports reached the reporter: %d", len(rec.reported))
	}

	w := httptest.NewRecorder()
	h.ServeHTTP(w, signed(t, key, "k1", body))
	if w.Code != http.StatusOK {
		t.Fatalf("signed report: %d %s", w.Code, w.Body)
	}
	var got []map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(real))
	if len(got) != 2 || got[0]["label"] != "true_positive" || got[1]["label"] != "false_positive" ||
		got[0]["token_hash"] != strings.ToLower(hexOf(sum[:])) || got[0]["token_type"] != "tollgate_api_key" {
		t.Errorf("answer %s", w.Body)
	}
	if len(rec.reported) != 1 {
		t.Errorf("reported %d strings, want only the one with Tollgate's prefix", len(rec.reported))
	}

	rec.fail = true
	w = httptest.NewRecorder()
	h.ServeHTTP(w, signed(t, key, "k1", body))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("reporter down: %d, want 503 with Retry-After", w.Code)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
