package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/tollgate/tollgate/grants/tokenexchange"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/oauth"
)

// FuzzReadClientCredentials feeds arbitrary Authorization headers and
// client_id / client_secret parameters to the reading of client
// credentials: it never panics, refuses with a 400 or 401 OAuth error, and
// what it accepts names a positive client id the request agrees on.
func FuzzReadClientCredentials(f *testing.F) {
	key, err := apikey.Format(42, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ auth, id, secret string }{
		{"Basic MTIzOnNlY3JldA==", "", ""},
		{"Basic MTIzOnNlY3JldA==", "123", ""},
		{"Basic MTIzOnNlY3JldA==", "124", ""},
		{"basic " + "eDo=", "", ""},
		{"Basic " + key, "", ""},
		{"", "123", "secret"},
		{"", "", key},
		{"", "42", key},
		{"", "43", key},
		{"", "0123", "x"},
		{"", "-1", "x"},
		{"", "99999999999999999999", "x"},
		{"Bearer x", "", ""},
		{"Basic %%%", "", ""},
	} {
		f.Add(seed.auth, seed.id, seed.secret)
	}
	f.Fuzz(func(t *testing.T, auth, id, secret string) {
		r := httptest.NewRequest(http.MethodPost, PathToken, nil)
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		form := url.Values{}
		if id != "" {
			form.Set("client_id", id)
		}
		if secret != "" {
			form.Set("client_secret", secret)
		}
		creds, oerr := readClientCredentials(r, form)
		if oerr != nil {
			if oerr.status != http.StatusBadRequest && oerr.status != http.StatusUnauthorized || oerr.code == "" {
				t.Fatalf("readClientCredentials(%q, %q, %q) = %+v", auth, id, secret, oerr)
			}
			return
		}
		if creds.ClientID <= 0 {
			t.Fatalf("readClientCredentials(%q, %q, %q) accepted client id %d", auth, id, secret, creds.ClientID)
		}
		if id != "" && id != strconv.FormatInt(creds.ClientID, 10) {
			t.Fatalf("readClientCredentials(%q, %q, %q) = client %d, which the client_id parameter contradicts", auth, id, secret, creds.ClientID)
		}
		switch creds.Method {
		case oauth.MethodBasic, oauth.MethodPost, oauth.MethodAPIKey:
		default:
			t.Fatalf("readClientCredentials(%q, %q, %q): method %q", auth, id, secret, creds.Method)
		}
	})
}

// FuzzTokenCredentials: for a token exchange of an API key, the key in
// subject_token is the request's one client authentication: whatever the
// headers and parameters, it never panics, refuses with a 400 or 401 OAuth
// error, and what it accepts is the key's client, with no other method
// beside it.
func FuzzTokenCredentials(f *testing.F) {
	key, err := apikey.Format(42, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ auth, id, secret, subject string }{
		{"", "", "", key},
		{"", "42", "", key},
		{"", "43", "", key},
		{"Basic MTIzOnNlY3JldA==", "", "", key},
		{"", "", "s", key},
		{"", "", "", ""},
		{"", "", "", "tgk_"},
	} {
		f.Add(seed.auth, seed.id, seed.secret, seed.subject)
	}
	f.Fuzz(func(t *testing.T, auth, id, secret, subject string) {
		r := httptest.NewRequest(http.MethodPost, PathToken, nil)
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		form := url.Values{"grant_type": {tokenexchange.GrantType}, "subject_token_type": {tokenexchange.TypeAPIKey}}
		for k, v := range map[string]string{"client_id": id, "client_secret": secret, "subject_token": subject} {
			if v != "" {
				form.Set(k, v)
			}
		}
		creds, oerr := tokenCredentials(r, form)
		if oerr != nil {
			if oerr.status != http.StatusBadRequest && oerr.status != http.StatusUnauthorized || oerr.code == "" {
				t.Fatalf("tokenCredentials(%q, %q, %q, %q) = %+v", auth, id, secret, subject, oerr)
			}
			return
		}
		if auth != "" || secret != "" {
			t.Fatalf("tokenCredentials(%q, %q, %q, %q) accepted a second authentication method", auth, id, secret, subject)
		}
		cid, sec, err := apikey.Parse(subject)
		if err != nil || creds.ClientID != cid || creds.Secret != sec || creds.Method != oauth.MethodAPIKey {
			t.Fatalf("tokenCredentials(%q, %q, %q, %q) = %+v, not the subject token's key", auth, id, secret, subject, creds)
		}
	})
}

// FuzzReadClientAssertion feeds arbitrary client_assertion_type,
// client_assertion and client_id values: never a panic, a 400 or 401 OAuth
// error for what is refused, and an accepted assertion names a positive
// client id that a client_id sent beside it agrees with: the client's own
// assertion (private_key_jwt, iss = sub = the client id) or an external
// issuer's token, which only a client_id sent beside it names (federation).
func FuzzReadClientAssertion(f *testing.F) {
	const typ = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	f.Add(typ, "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiIxMjMiLCJzdWIiOiIxMjMifQ.c2ln", "123")
	f.Add(typ, "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiIxMjMiLCJzdWIiOiIxMjMifQ.c2ln", "124")
	f.Add(typ, "eyJhbGciOiJub25lIn0.eyJpc3MiOiIxIiwic3ViIjoiMSJ9.", "")
	f.Add("x", "a.b.c", "")
	f.Add(typ, "", "1")
	f.Fuzz(func(t *testing.T, assertionType, assertion, id string) {
		form := url.Values{}
		for k, v := range map[string]string{"client_assertion_type": assertionType, "client_assertion": assertion, "client_id": id} {
			if v != "" {
				form.Set(k, v)
			}
		}
		creds, oerr := readClientCredentials(httptest.NewRequest(http.MethodPost, PathToken, nil), form)
		if oerr != nil {
			if oerr.status != http.StatusBadRequest && oerr.status != http.StatusUnauthorized || oerr.code == "" {
				t.Fatalf("readClientCredentials(%q, %q, %q) = %+v", assertionType, assertion, id, oerr)
			}
			return
		}
		if creds.ClientID <= 0 || (id != "" && id != strconv.FormatInt(creds.ClientID, 10)) {
			t.Fatalf("readClientCredentials(%q, %q, %q) accepted client %d", assertionType, assertion, id, creds.ClientID)
		}
		if assertionType == "" && assertion == "" {
			return
		}
		switch creds.Method {
		case oauth.MethodPrivateKeyJWT: // the client's own assertion names it
			if creds.Assertion == nil || creds.Assertion.ClientID != creds.ClientID || creds.External != nil {
				t.Fatalf("readClientCredentials(%q, %q, %q) = %+v", assertionType, assertion, id, creds)
			}
		case oauth.MethodFederated: // an external token, for the client_id sent beside it
			if creds.External == nil || creds.Assertion != nil || id == "" {
				t.Fatalf("readClientCredentials(%q, %q, %q) = %+v", assertionType, assertion, id, creds)
			}
		default:
			t.Fatalf("readClientCredentials(%q, %q, %q) = %+v, not an assertion's method", assertionType, assertion, id, creds)
		}
	})
}
