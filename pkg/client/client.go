package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIPrefix is the path of the management API under the server's URL.
const APIPrefix = "/api/v1"

// maxAnswer bounds the answer read into memory.
const maxAnswer = 16 << 20

// Client calls one Tollgate server's management API. It is safe for
// concurrent use.
type Client struct {
	server    *url.URL // the server, without the API prefix
	http      *http.Client
	userAgent string
	creds     credentials
	plainHTTP bool
}

// credentials returns the Bearer token of a request.
type credentials interface {
	token(ctx context.Context, c *Client) (string, error)
}

// forgetter is credentials that fetch their token: forget drops the one
// held, which the server refused, so that the next call fetches another.
type forgetter interface{ forget() }

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends the requests through hc (its timeout, transport and
// TLS settings) instead of a client with a 30 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithPlainHTTP lets New accept an http:// URL of a host other than this
// machine: the credentials then cross the network in clear text.
func WithPlainHTTP() Option { return func(c *Client) { c.plainHTTP = true } }

// ErrPlainHTTP is New refusing to send credentials over plain http to a
// host that is not this machine (see WithPlainHTTP).
var ErrPlainHTTP = errors.New("tollgate client: refusing to send credentials over plain http to a host other than this machine")

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithToken authenticates with a Bearer token the caller already holds: a
// user's eskimi_dsp token, a long-lived client token, or a
// client_credentials token holding the management scope.
func WithToken(token string) Option {
	return func(c *Client) { c.creds = staticToken(token) }
}

// WithClientCredentials authenticates as a management client: the client
// id and secret are exchanged at the server's token endpoint for a
// client_credentials token (with scopes, when given), which is fetched again
// shortly before it expires.
func WithClientCredentials(clientID, clientSecret string, scopes ...string) Option {
	return func(c *Client) {
		c.creds = &clientCredentials{id: clientID, secret: clientSecret, scopes: scopes, now: time.Now}
	}
}

// New returns a client of the server at baseURL (e.g.
// https://auth.example.com), the URL without the /api/v1 prefix. Give it
// credentials with WithToken or WithClientCredentials.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("tollgate client: parse the server URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("tollgate client: the server must be an http:// or https:// URL, got %q", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{server: u, http: &http.Client{Timeout: 30 * time.Second}, userAgent: "tollgate-go"}
	for _, o := range opts {
		o(c)
	}
	// A Bearer token or a client secret over plain http is anyone's on the
	// path; only this machine's own server is spared the question.
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) && !c.plainHTTP {
		return nil, fmt.Errorf("%w (%s): use https, or WithPlainHTTP", ErrPlainHTTP, u.Host)
	}
	if c.creds == nil {
		return nil, errors.New("tollgate client: no credentials: give WithToken or WithClientCredentials")
	}
	return c, nil
}

// isLoopbackHost reports whether host names this machine: localhost or a
// loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type staticToken string

func (s staticToken) token(context.Context, *Client) (string, error) { return string(s), nil }

// clientCredentials holds a client_credentials token and fetches a new one
// when it is about to expire.
type clientCredentials struct {
	id, secret string
	scopes     []string
	now        func() time.Time

	mu      sync.Mutex
	current string
	expires time.Time
}

// refreshMargin is how long before its expiry a token is replaced.
const refreshMargin = 30 * time.Second

func (cc *clientCredentials) token(ctx context.Context, c *Client) (string, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.current != "" && cc.now().Before(cc.expires.Add(-refreshMargin)) {
		return cc.current, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(cc.scopes) > 0 {
		form.Set("scope", strings.Join(cc.scopes, " "))
	}
	start := cc.now()
	t, err := c.postToken(ctx, form, cc.id, cc.secret)
	if err != nil {
		return "", err
	}
	cc.current, cc.expires = t.AccessToken, start.Add(time.Duration(t.ExpiresIn)*time.Second)
	return cc.current, nil
}

// postToken sends form to the token endpoint, authenticated with Basic as
// client id and secret when id is not empty, and returns the token answered.
func (c *Client) postToken(ctx context.Context, form url.Values, id, secret string) (*IssuedToken, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server.String()+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if id != "" {
		// RFC 6749 section 2.3.1: both parts form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	defer func() { _ = res.Body.Close() }() // read in full below
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("token request: read the answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, errorOf(res, b)
	}
	var t IssuedToken
	if err := json.Unmarshal(b, &t); err != nil || t.AccessToken == "" {
		return nil, fmt.Errorf("token request: the answer holds no access token (status %d)", res.StatusCode)
	}
	return &t, nil
}

// forget drops the token held, so the next call fetches a new one.
func (cc *clientCredentials) forget() {
	cc.mu.Lock()
	cc.current = ""
	cc.mu.Unlock()
}

// call describes one request of the management API.
type call struct {
	method, path string
	query        url.Values
	body         any // marshalled to JSON when not nil
	ifMatch      string
}

// answer is a successful answer, read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends cl and returns its answer; an answer of 400 or more is an
// *Error, one that is not JSON an *UnexpectedAnswerError. A token of the
// client's own that the server refuses (expired early, revoked) is fetched
// again once.
func (c *Client) do(ctx context.Context, cl call) (answer, error) {
	var body []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return answer{}, fmt.Errorf("encode the request: %w", err)
		}
		body = b
	}
	a, err := c.send(ctx, cl, body)
	var te *TokenError
	if f, ok := c.creds.(forgetter); ok && IsUnauthorized(err) && !errors.As(err, &te) {
		f.forget()
		a, err = c.send(ctx, cl, body)
	}
	return a, err
}

// send sends cl with the JSON body (none when nil) once.
func (c *Client) send(ctx context.Context, cl call, body []byte) (answer, error) {
	target := c.server.String() + APIPrefix + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, r)
	if err != nil {
		return answer{}, fmt.Errorf("build the request: %w", err)
	}
	tok, err := c.creds.token(ctx, c)
	if err != nil {
		return answer{}, &TokenError{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.ifMatch != "" {
		req.Header.Set("If-Match", ETag(cl.ifMatch))
	}
	res, err := c.http.Do(req)
	if err != nil {
		return answer{}, err // a *url.Error: it names the server, never the token
	}
	defer func() { _ = res.Body.Close() }() // read (to a limit) below
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		return answer{}, fmt.Errorf("read the answer: %w", err)
	}
	if !isJSON(res.Header.Get("Content-Type")) && (res.StatusCode != http.StatusNoContent || len(b) > 0) {
		// A web page, a proxy's error page, another service on the port.
		return answer{}, &UnexpectedAnswerError{Server: c.server.Redacted(), StatusCode: res.StatusCode, ContentType: res.Header.Get("Content-Type")}
	}
	if res.StatusCode >= 400 {
		return answer{}, errorOf(res, b)
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}, nil
}

// into decodes a successful answer into out.
func (a answer) into(out any) error {
	if err := json.Unmarshal(a.body, out); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	return nil
}

// isJSON reports whether a Content-Type is JSON, problem details included.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || mt == "application/problem+json")
}

// ETag turns a record's version (3, "3") into the entity tag If-Match
// takes ("\"3\""); an entity tag, weak tag or * is returned as it is.
func ETag(version string) string {
	if strings.HasPrefix(version, `"`) || strings.HasPrefix(version, "W/") || version == "*" {
		return version
	}
	return strconv.Quote(version)
}

func idPath(base string, id int64, rest ...string) string {
	p := base + "/" + strconv.FormatInt(id, 10)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// Page selects one page of a list: the records after the id After (the
// Next of the previous page), at most Limit of them (the server's default,
// 20, when 0).
type Page struct {
	After int64
	Limit int
}

func (p Page) query() url.Values {
	q := url.Values{}
	if p.After != 0 {
		q.Set("after", strconv.FormatInt(p.After, 10))
	}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	return q
}

// List is one page of records. Next, when not 0, is the After of the next
// page. Raw is the answer's JSON as the server sent it.
type List[T any] struct {
	Items []T             `json:"items"`
	Next  int64           `json:"next,omitempty"`
	Raw   json.RawMessage `json:"-"`
}

// list reads one page of records.
func list[T any](ctx context.Context, c *Client, path string, q url.Values) (*List[T], error) {
	a, err := c.do(ctx, call{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return nil, err
	}
	l := &List[T]{Raw: a.body}
	if err := a.into(l); err != nil {
		return nil, err
	}
	return l, nil
}

// record sends cl and decodes the one record it returns, keeping its JSON
// in *raw.
func record[T any](ctx context.Context, c *Client, cl call, raw func(*T) *json.RawMessage) (*T, error) {
	a, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := new(T)
	if err := a.into(out); err != nil {
		return nil, err
	}
	*raw(out) = a.body
	return out, nil
}

func setInt(q url.Values, name string, v int64) {
	if v != 0 {
		q.Set(name, strconv.FormatInt(v, 10))
	}
}
