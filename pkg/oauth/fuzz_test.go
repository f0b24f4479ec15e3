package oauth_test

import (
	"strconv"
	"testing"

	"github.com/tollgate/tollgate/pkg/oauth"
)

// FuzzParseClientID: an accepted client id is a positive int64 whose
// decimal form is exactly the input, so one client has one spelling.
func FuzzParseClientID(f *testing.F) {
	for _, seed := range []string{"1", "42", "0", "01", "-1", "+1", "1e3", " 1", "9223372036854775807", "9223372036854775808", "", "١٢"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := oauth.ParseClientID(s)
		if !ok {
			if id != 0 {
				t.Fatalf("ParseClientID(%q) = %d, false", s, id)
			}
			return
		}
		if id <= 0 || strconv.FormatInt(id, 10) != s {
			t.Fatalf("ParseClientID(%q) = %d", s, id)
		}
	})
}
