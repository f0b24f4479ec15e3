// Package leakcheck finds credentials in text — logs, metrics, error bodies
// — in the forms a careless line would carry them, not only as typed: a
// logged Authorization header holds `id:secret` in base64, a logged query
// string holds it percent-encoded, a logged JSON body holds it escaped, a
// logged API key holds the client secret inside `tgk_…`. The end-to-end
// fixture, the leak test and the fault suite share this one matcher, so a
// form added here is searched for by all three.
package leakcheck

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/token"
)

// MinLength is the shortest form searched for: shorter ones match ordinary
// text by chance.
const MinLength = 8

// Matcher holds the credentials to look for. The zero value is ready to
// use; it is not safe for concurrent use.
type Matcher struct {
	needles []needle
	seen    map[string]bool
}

type needle struct {
	what, form, text string
}

func (m *Matcher) add(what, form, text string) {
	if len(text) < MinLength {
		return
	}
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	if m.seen[what+"\x00"+text] {
		return
	}
	m.seen[what+"\x00"+text] = true
	m.needles = append(m.needles, needle{what: what, form: form, text: text})
}

// Secret adds value, described as what, in every form it could be written
// in: as is, JSON-escaped, URL-encoded (query and path), hex, and inside
// any base64 text (standard and URL alphabets, at each of the three byte
// alignments, so it is found whatever came before it: `Basic
// base64(id:secret)` included). An API key adds its secret part as well,
// and an access token each of its halves. Values shorter than MinLength
// are ignored.
func (m *Matcher) Secret(what, value string) {
	if len(value) < MinLength {
		return
	}
	forms := map[string]string{"plain": value}
	forms["JSON-escaped"] = jsonEscape(value, true)
	forms["JSON-escaped, no HTML escaping"] = jsonEscape(value, false)
	forms["query-encoded"] = url.QueryEscape(value)
	forms["path-encoded"] = url.PathEscape(value)
	forms["hex"] = hex.EncodeToString([]byte(value))
	for form, text := range forms {
		m.add(what, form, text)
	}
	// Basic credentials are URL-encoded before base64 (RFC 6749 §2.3.1).
	for _, v := range []string{value, url.QueryEscape(value)} {
		for _, enc := range []struct {
			form string
			enc  *base64.Encoding
		}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
			for _, s := range embeddedBase64(enc.enc, v) {
				m.add(what, enc.form, s)
			}
		}
	}
	if id, s, err := apikey.Parse(value); err == nil && id > 0 {
		m.Secret(what+" (its secret part)", s)
	}
	if rest, ok := strings.CutPrefix(value, token.AccessPrefix); ok {
		// Either half of a token is as bad as the whole.
		for _, half := range strings.Split(rest, ".") {
			if len(half) >= 16 {
				m.Secret(what+" (a half)", half)
			}
		}
	}
}

// Credential adds a client id and secret as they travel in Basic
// authentication: base64 (standard and URL, padded or not) of `id:secret`
// and of its URL-encoded form, and the secret itself with Secret.
func (m *Matcher) Credential(what, id, secret string) {
	m.Secret(what, secret)
	if len(secret) < MinLength {
		return
	}
	for _, pair := range []string{id + ":" + secret, url.QueryEscape(id) + ":" + url.QueryEscape(secret)} {
		for form, enc := range map[string]*base64.Encoding{
			"base64 of id:secret": base64.StdEncoding, "base64url of id:secret": base64.URLEncoding,
			"unpadded base64 of id:secret": base64.RawStdEncoding, "unpadded base64url of id:secret": base64.RawURLEncoding,
		} {
			m.add(what, form, enc.EncodeToString([]byte(pair)))
		}
	}
}

// Marker adds text that must never appear at all, as is (a token or key
// prefix, a hash's format tag).
func (m *Matcher) Marker(what, text string) {
	if text == "" {
		return
	}
	m.needles = append(m.needles, needle{what: what, form: "marker", text: text})
}

// Find returns a description of every credential found in text, as "what
// (form)", sorted, each once; nil when text is clean. The descriptions
// never hold the credential.
func (m *Matcher) Find(text string) []string {
	var found []string
	for _, n := range m.needles {
		if strings.Contains(text, n.text) {
			found = append(found, n.what+" ("+n.form+")")
		}
	}
	slices.Sort(found)
	return slices.Compact(found)
}

// embeddedBase64 returns the base64 text that value becomes inside any
// longer base64 text, for each of the three alignments it can start at:
// only the characters that depend on value alone, none of its neighbours.
func embeddedBase64(enc *base64.Encoding, value string) []string {
	n := len(value)
	out := make([]string, 0, 3)
	for k := range 3 {
		full := enc.EncodeToString(append(make([]byte, k), value...))
		from := (8*k + 5) / 6   // the first character made of value's bits only
		to := (8 * (k + n)) / 6 // past the last one
		if to > from {
			out = append(out, full[from:to])
		}
	}
	return out
}

func jsonEscape(s string, escapeHTML bool) string {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(escapeHTML)
	_ = e.Encode(s) // a string always encodes
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`)
}
