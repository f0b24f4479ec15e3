package server

import (
	"bytes"
	"strconv"

	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/assertion"
	"github.com/tollgate/tollgate/pkg/oauth"
	"github.com/tollgate/tollgate/pkg/strictjson"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Body formats a request may use.
const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

// maxParams bounds the number of parameters in one request.
const maxParams = 32

// readBody reads a POST body of at most maxBytes and decodes it into
// parameters. Form bodies are always accepted; JSON bodies only when
// allowJSON. Every failure is an *oauthError with a precise description.
func readBody(r *http.Request, maxBytes int64, allowJSON bool) (url.Values, *oauthError) {
	if len(r.Header.Values("Content-Type")) > 1 {
		return nil, errInvalidRequest("The Content-Type header is repeated.")
	}
	mediaType, err := contentType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, errInvalidRequest(err.Error())
	}
	if mediaType != formType && (mediaType != jsonType || !allowJSON) {
		want := formType
		if allowJSON {
			want += " or " + jsonType
		}
		return nil, errInvalidRequest("The Content-Type must be " + want + ".")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	if err != nil {
		return nil, errInvalidRequest("The request body could not be read.")
	}
	if int64(len(body)) > maxBytes {
		return nil, &oauthError{status: http.StatusRequestEntityTooLarge, code: "invalid_request",
			description: fmt.Sprintf("The request body exceeds %d bytes.", maxBytes)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errInvalidRequest("The request body is empty.")
	}
	var form url.Values
	if mediaType == jsonType {
		form, err = decodeJSON(body)
	} else {
		form, err = decodeForm(body)
	}
	if err != nil {
		return nil, errInvalidRequest(err.Error())
	}
	if len(form) == 0 {
		return nil, errInvalidRequest("The request body has no parameters.")
	}
	return form, nil
}

// contentType returns the media type of a Content-Type header, refusing a
// charset other than UTF-8.
func contentType(header string) (string, error) {
	if header == "" {
		return "", errors.New("The Content-Type header is missing.")
	}
	mediaType, params, err := mime.ParseMediaType(header)
	if err != nil {
		return "", errors.New("The Content-Type header is malformed.")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", errors.New("The request body must be encoded in UTF-8.")
	}
	return mediaType, nil
}

// decodeForm parses an application/x-www-form-urlencoded body. A repeated
// parameter is an error (RFC 6749 §3.1); a parameter without a value is
// treated as omitted.
func decodeForm(body []byte) (url.Values, error) {
	raw, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("The form body is malformed.")
	}
	if len(raw) > maxParams {
		return nil, fmt.Errorf("The request has more than %d parameters.", maxParams)
	}
	form := make(url.Values, len(raw))
	for k, vs := range raw {
		if !utf8.ValidString(k) {
			return nil, errors.New("A parameter name is not valid UTF-8.")
		}
		if len(vs) > 1 {
			return nil, fmt.Errorf("The parameter %s is repeated.", quoteParam(k))
		}
		if !utf8.ValidString(vs[0]) {
			return nil, fmt.Errorf("The parameter %s is not valid UTF-8.", quoteParam(k))
		}
		if hasControl(k) || hasControl(vs[0]) {
			return nil, fmt.Errorf("The parameter %s contains a control character.", quoteParam(k))
		}
		if vs[0] != "" {
			form[k] = vs
		}
	}
	return form, nil
}

// integerParams may be sent as JSON integers, which stand for their digits.
var integerParams = map[string]bool{"client_id": true, "lifetime": true}

// decodeJSON parses a JSON object of string members. client_id and lifetime
// may also be non-negative integers, which stand for their decimal digits. Nested values,
// other numbers, booleans, null, duplicate members and trailing data are
// errors.
func decodeJSON(body []byte) (url.Values, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("The JSON body is not valid UTF-8.")
	}
	// The one duplicate rule of every JSON body (the management API's too).
	var dup *strictjson.DuplicateError
	if err := strictjson.CheckDuplicates(body); errors.As(err, &dup) {
		return nil, fmt.Errorf("The parameter %s is repeated.", quoteParam(dup.Path))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("The JSON body must be an object.")
	}
	form := url.Values{}
	seen := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("The JSON body is malformed.")
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("The JSON body is malformed.")
		}
		if seen++; seen > maxParams {
			return nil, fmt.Errorf("The request has more than %d parameters.", maxParams)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, errors.New("The JSON body is malformed.")
		}
		var value string
		switch v := tok.(type) {
		case string:
			value = v
		case json.Number:
			if !integerParams[key] || !isDigits(v.String()) {
				return nil, fmt.Errorf("The parameter %s must be a string.", quoteParam(key))
			}
			value = v.String()
		default:
			if integerParams[key] {
				return nil, fmt.Errorf("The parameter %s must be a string or an integer.", quoteParam(key))
			}
			return nil, fmt.Errorf("The parameter %s must be a string.", quoteParam(key))
		}
		if hasControl(key) || hasControl(value) {
			return nil, fmt.Errorf("The parameter %s contains a control character.", quoteParam(key))
		}
		form[key] = []string{value}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("The JSON body is malformed.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("The JSON body has data after the object.")
	}
	for k, vs := range form {
		if vs[0] == "" {
			delete(form, k)
		}
	}
	return form, nil
}

// hasControl reports whether s holds a C0 control character other than tab,
// or DEL: no parameter has a use for them, and databases refuse NUL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// quoteParam names a parameter in an error description without echoing
// arbitrary input back: long or odd names are cut.
func quoteParam(name string) string {
	const max = 40
	var b strings.Builder
	b.WriteByte('\'')
	// RFC 6749 §5.2: error_description is printable ASCII without " and \.
	for i := 0; i < len(name); i++ {
		if i >= max {
			b.WriteString("...")
			break
		}
		c := name[i]
		if c < 0x20 || c > 0x7e || c == '\'' || c == '"' || c == '\\' {
			c = '?'
		}
		b.WriteByte(c)
	}
	b.WriteByte('\'')
	return b.String()
}

// parseBasic decodes an Authorization: Basic header the way RFC 6749 §2.3.1
// says: base64 of "id:secret", each form-urlencoded.
func parseBasic(header string) (id, secret string, ok bool) {
	const prefix = "basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(header[len(prefix):])
	if err != nil {
		return "", "", false
	}
	rawID, rawSecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", false
	}
	// An empty id is allowed here: with an API key any user name goes.
	if !utf8.ValidString(id) || !utf8.ValidString(secret) {
		return "", "", false
	}
	return id, secret, true
}

// readClientCredentials finds the one authentication method the request
// uses (RFC 6749 §2.3: never more than one) and its credentials:
//
//   - Basic with a client id and secret (client_secret_basic);
//   - Basic with an API key as the password and any user name;
//   - client_id and client_secret in the body (client_secret_post), where
//     client_secret may also be an API key and client_id then optional;
//   - client_assertion_type and client_assertion (private_key_jwt, RFC 7523
//     §2.2), with client_id optional.
//
// A client id that is not a number, or a key whose form or checksum is wrong,
// is invalid_client without any lookup.
func readClientCredentials(r *http.Request, form url.Values) (oauth.Credentials, *oauthError) {
	headers := r.Header.Values("Authorization")
	if len(headers) > 1 {
		return oauth.Credentials{}, errInvalidRequest("The Authorization header is repeated.")
	}
	bodyID, bodySecret := form.Get("client_id"), form.Get("client_secret")
	if form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "" {
		if len(headers) == 1 || bodySecret != "" {
			return oauth.Credentials{}, errInvalidRequest("The request uses more than one client authentication method.")
		}
		return assertionCredentials(form.Get("client_assertion_type"), form.Get("client_assertion"), bodyID)
	}
	if len(headers) == 1 {
		id, secret, ok := parseBasic(headers[0])
		if !ok {
			return oauth.Credentials{}, errInvalidClient()
		}
		if bodySecret != "" {
			return oauth.Credentials{}, errInvalidRequest("The request uses more than one client authentication method.")
		}
		if apikey.Looks(secret) {
			return keyCredentials(secret, bodyID)
		}
		if bodyID != "" && bodyID != id {
			return oauth.Credentials{}, errInvalidRequest("The client_id parameter does not match the Authorization header.")
		}
		return numericCredentials(id, secret, oauth.MethodBasic)
	}
	if apikey.Looks(bodySecret) {
		return keyCredentials(bodySecret, bodyID)
	}
	if bodyID == "" {
		return oauth.Credentials{}, errInvalidClient()
	}
	return numericCredentials(bodyID, bodySecret, oauth.MethodPost)
}

func numericCredentials(id, secret, method string) (oauth.Credentials, *oauthError) {
	cid, ok := oauth.ParseClientID(id)
	if !ok {
		return oauth.Credentials{}, errInvalidClient()
	}
	return oauth.Credentials{ClientID: cid, Secret: secret, Method: method}, nil
}

// keyCredentials reads an API key; a client_id sent beside it must be the
// key's.
func keyCredentials(key, bodyID string) (oauth.Credentials, *oauthError) {
	cid, secret, err := apikey.Parse(key)
	if err != nil {
		return oauth.Credentials{}, errInvalidClient()
	}
	if bodyID != "" && bodyID != strconv.FormatInt(cid, 10) {
		return oauth.Credentials{}, errInvalidRequest("The client_id parameter does not match the API key.")
	}
	return oauth.Credentials{ClientID: cid, Secret: secret, Method: oauth.MethodAPIKey}, nil
}

// assertionCredentials reads a JWT client assertion (RFC 7521 §4.2): its
// type must be jwt-bearer. An assertion that names a client (iss = sub, a
// client id) is the client's own (private_key_jwt), and a client_id sent
// beside it must be that one. Any other JWT, sent with a client_id, is a
// token of an external issuer presented for that client (workload identity
// federation). The assertion is parsed, not verified: the authenticator
// does that with the client's keys or federated credentials.
func assertionCredentials(typ, raw, bodyID string) (oauth.Credentials, *oauthError) {
	if typ == "" || raw == "" {
		return oauth.Credentials{}, errInvalidRequest("client_assertion and client_assertion_type go together.")
	}
	if typ != assertion.Type {
		return oauth.Credentials{}, errInvalidClient()
	}
	a, err := assertion.Parse(raw)
	if err != nil {
		return externalCredentials(raw, bodyID)
	}
	if bodyID != "" && bodyID != strconv.FormatInt(a.ClientID, 10) {
		return oauth.Credentials{}, errInvalidRequest("The client_id parameter does not match the client assertion.")
	}
	return oauth.Credentials{ClientID: a.ClientID, Method: oauth.MethodPrivateKeyJWT, Assertion: a}, nil
}

// externalCredentials reads a token of an external issuer presented for
// client bodyID, which is required: the token does not name the client.
func externalCredentials(raw, bodyID string) (oauth.Credentials, *oauthError) {
	cid, ok := oauth.ParseClientID(bodyID)
	if !ok {
		return oauth.Credentials{}, errInvalidClient()
	}
	e, err := assertion.ParseExternal(raw)
	if err != nil {
		return oauth.Credentials{}, errInvalidClient()
	}
	return oauth.Credentials{ClientID: cid, Method: oauth.MethodFederated, External: e}, nil
}
