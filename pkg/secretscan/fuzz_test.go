package secretscan_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tollgate/tollgate/pkg/egress"
	"github.com/tollgate/tollgate/pkg/secretscan"
)

// FuzzReport feeds signed bodies of any bytes to the handler: every answer
// is 200 or a 4xx, never a 500 or a panic, and a 200 is a JSON array.
func FuzzReport(f *testing.F) {
	for _, seed := range []string{
		`[{"token":"tgk_1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA000000","type":"t","url":"u","source":"content"}]`,
		`[{"token":"x"}]`, `[]`, `{}`, `[{"token":1}]`, `[{"token":"a","token":"b"}]`, "[{\"token\":\"\xff\"}]",
		`[{"token":"x"}] trailing`, `null`, ``,
	} {
		f.Add(seed)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv, _ := keyServer(f, "k1", key)
	rec := &recorder{known: map[string]bool{}}
	h := secretscan.New(secretscan.Options{Reporter: rec,
		Keys: secretscan.NewKeys(secretscan.KeysOptions{URL: srv.URL, Fetcher: egress.New(egress.Options{AllowInsecure: true})})})
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, signed(t, key, "k1", body))
		if w.Code != http.StatusOK && (w.Code < 400 || w.Code >= 500) {
			t.Fatalf("body %q: status %d", body, w.Code)
		}
		if w.Code == http.StatusOK && (w.Body.Len() == 0 || w.Body.Bytes()[0] != '[') {
			t.Fatalf("body %q: answer %q", body, w.Body)
		}
	})
}
