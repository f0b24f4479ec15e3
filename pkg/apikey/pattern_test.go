package apikey_test

import (
	"regexp"
	"testing"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/secret"
)

// TestSecretScanningPattern: the pattern docs/secret-scanning.md registers
// with GitHub matches every key, whole.
func TestSecretScanningPattern(t *testing.T) {
	t.Parallel()
	pattern := regexp.MustCompile(`\btgk_[1-9][0-9]{0,18}_[A-Za-z0-9_-]{43}[0-9A-Za-z]{6}\b`)
	for _, id := range []int64{1, 42, 9223372036854775807} {
		for range 200 {
			s, err := secret.Generate()
			if err != nil {
				t.Fatal(err)
			}
			key, err := apikey.Format(id, s)
			if err != nil {
				t.Fatal(err)
			}
			if got := pattern.FindString("KEY=" + key + "\n"); got != key {
				t.Fatalf("pattern found %q in a line holding %q", got, key)
			}
		}
	}
}
