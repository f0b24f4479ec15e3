package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bootstrap is what `tollgate bootstrap` prints.
type Bootstrap struct {
	AccountID    int64  `json:"account_id"`
	UserID       int64  `json:"user_id"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	ClientID     int64  `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// Prepare migrates the database of env and bootstraps it.
func Prepare(ctx context.Context, bin string, env Env) (Bootstrap, error) {
	var b Bootstrap
	if _, err := Run(ctx, bin, env, "migrate"); err != nil {
		return b, err
	}
	out, err := Run(ctx, bin, env, "bootstrap")
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(out, &b); err != nil {
		return b, fmt.Errorf("bootstrap printed %q: %w", out, err)
	}
	return b, nil
}

// Credentials are what the load authenticates with.
type Credentials struct {
	// ClientID and ClientSecret: a client_credentials client that may
	// introspect (the bootstrap client).
	ClientID     int64
	ClientSecret string
	// AdminToken is a management API bearer token (the admin's).
	AdminToken string
	// APIKey is a key for the check endpoint.
	APIKey string
	// TargetID is a client the management writes change.
	TargetID int64
}

// NewCredentials makes, through the instance at base ("http://host:port"),
// the admin's token, an API key and a client for the management writes.
func NewCredentials(ctx context.Context, base string, b Bootstrap) (Credentials, error) {
	c := Credentials{ClientID: b.ClientID, ClientSecret: b.ClientSecret}
	body, _ := json.Marshal(map[string]any{"grant_type": "eskimi_dsp", "username": b.Username, "password": b.Password,
		"client_id": b.ClientID, "client_secret": b.ClientSecret})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := call(ctx, http.MethodPost, base+"/oauth/token", "", "application/json", string(body), &tok); err != nil {
		return c, fmt.Errorf("admin token: %w", err)
	}
	c.AdminToken = tok.AccessToken
	var key struct {
		Key string `json:"key"`
	}
	if err := call(ctx, http.MethodPost, base+"/api/v1/keys", c.AdminToken, "application/json",
		`{"name":"load key","access_rights":"events"}`, &key); err != nil {
		return c, fmt.Errorf("create key: %w", err)
	}
	c.APIKey = key.Key
	var target struct {
		ID int64 `json:"id"`
	}
	if err := call(ctx, http.MethodPost, base+"/api/v1/clients", c.AdminToken, "application/json",
		`{"name":"load target","description":"changed by the load"}`, &target); err != nil {
		return c, fmt.Errorf("create client: %w", err)
	}
	c.TargetID = target.ID
	return c, nil
}

// call makes one request that must succeed (2xx) and decodes its answer
// into out.
func call(ctx context.Context, method, u, bearer, contentType, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }() // read to the end below; nothing to flush
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, req.URL.Path, res.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// Kind is a kind of request of the load.
type Kind string

// The kinds of request.
const (
	KindToken      Kind = "token"       // POST /oauth/token, client_credentials
	KindIntrospect Kind = "introspect"  // POST /oauth/introspect of a token the load got
	KindCheckToken Kind = "check_token" // GET /auth/check with a Bearer token
	KindCheckKey   Kind = "check_key"   // GET /auth/check with X-API-Key
	KindAPIRead    Kind = "api_read"    // GET /api/v1/clients
	KindAPIWrite   Kind = "api_write"   // PATCH /api/v1/clients/{id}, a new description
)

// Kinds lists every kind, in report order.
var Kinds = []Kind{KindToken, KindIntrospect, KindCheckToken, KindCheckKey, KindAPIRead, KindAPIWrite}

// DefaultMix is the schedule a worker cycles through: reads dominate, as in
// production; management writes are rare.
var DefaultMix = []Kind{
	KindToken, KindIntrospect, KindCheckToken, KindCheckKey,
	KindIntrospect, KindCheckToken, KindCheckKey, KindAPIRead,
	KindToken, KindIntrospect, KindCheckToken, KindCheckKey,
	KindIntrospect, KindCheckToken, KindCheckKey, KindAPIWrite,
}

// Result is one answer (or failure to get one).
type Result struct {
	Kind    Kind
	Worker  int
	Start   time.Time
	Latency time.Duration
	Status  int    // 0 when no answer came
	Err     string // the transport error when no answer came
	// Code is the OAuth or check endpoint "error" member, or "problem" for
	// an application/problem+json answer.
	Code        string
	ContentType string
	RetryAfter  string // the Retry-After header
	Active      *bool  // introspection: the active member
	Body        string // the start of the body of a non-2xx answer
	// Raw is the whole body, kept by Send only.
	Raw string
	// Written is the description an api_write sent.
	Written string

	token string // the access_token of a token answer
}

// OK reports a 2xx answer (for introspection: of an active token).
func (r Result) OK() bool {
	if r.Status/100 != 2 {
		return false
	}
	return r.Active == nil || *r.Active
}

func (r Result) String() string {
	s := fmt.Sprintf("%s worker %d at %s: ", r.Kind, r.Worker, r.Start.Format("15:04:05.000"))
	if r.Status == 0 {
		return s + "no answer after " + r.Latency.Round(time.Millisecond).String() + ": " + r.Err
	}
	return s + fmt.Sprintf("%d %s in %v %s", r.Status, r.Code, r.Latency.Round(time.Millisecond), r.Body)
}

// LoadOptions configure a Load.
type LoadOptions struct {
	// Target is the base URL the requests go to ("http://host:port").
	Target string
	Creds  Credentials
	// Workers is the number of concurrent workers; default 4.
	Workers int
	// Rate is the total requests per second, spread over the workers; 0
	// means each worker sends as soon as its previous answer came.
	Rate float64
	// Mix is the schedule of kinds each worker cycles through (starting at
	// a different place); default DefaultMix. Only worker 0 sends
	// api_write, so the writes are sequential.
	Mix []Kind
	// Timeout bounds each request; default 10 s. A request that hits it
	// is a hang.
	Timeout time.Duration
	// Record keeps every Result (Results); otherwise only the statistics
	// are kept.
	Record bool
	// KeepTokens keeps every token the load got (Tokens).
	KeepTokens bool
}

// Load sends a steady mix of requests until stopped.
type Load struct {
	opts   LoadOptions
	client *http.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	results []Result
	// failures are the first maxFailures results that are not OK, kept
	// with or without Record.
	failures []Result
	stats    map[Kind]*KindStats
	recent   []string // a ring of recent tokens, for introspection and checks
	next     int
	tokens   []string
	writes   int
}

// KindStats are the figures of one kind of request.
type KindStats struct {
	Requests  int
	Errors    int             // answers that are not OK, and failures to answer
	Statuses  map[int]int     // 0 is no answer
	Latencies []time.Duration // of every answer
}

// Percentile answers the p-th percentile (0 < p ≤ 100) of the latencies.
func (s *KindStats) Percentile(p float64) time.Duration {
	if len(s.Latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.Latencies)
	slices.Sort(l)
	i := int(float64(len(l))*p/100+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// StartLoad starts the workers. seed is a token to introspect and check
// with until the load has got its own.
func StartLoad(opts LoadOptions, seed string) *Load {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if len(opts.Mix) == 0 {
		opts.Mix = DefaultMix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opts.Workers
	l := &Load{opts: opts, client: &http.Client{Transport: tr, Timeout: opts.Timeout}, stats: map[Kind]*KindStats{}}
	for _, k := range Kinds {
		l.stats[k] = &KindStats{Statuses: map[int]int{}}
	}
	if seed != "" {
		l.recent = append(l.recent, seed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for w := range opts.Workers {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.work(ctx, w) }()
	}
	return l
}

func (l *Load) work(ctx context.Context, w int) {
	var tick <-chan time.Time
	if l.opts.Rate > 0 {
		every := time.Duration(float64(time.Second) * float64(l.opts.Workers) / l.opts.Rate)
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
		// Spread the workers over the period.
		select {
		case <-ctx.Done():
			return
		case <-time.After(every * time.Duration(w) / time.Duration(l.opts.Workers)):
		}
	}
	mix := l.opts.Mix
	for i := w * len(mix) / l.opts.Workers; ; i++ {
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		}
		if ctx.Err() != nil {
			return
		}
		kind := mix[i%len(mix)]
		if kind == KindAPIWrite && w != 0 {
			kind = KindAPIRead
		}
		// A request under way when Stop is called runs to its end: its
		// context is not the workers'.
		l.record(l.do(context.WithoutCancel(ctx), w, kind))
	}
}

// do sends one request.
func (l *Load) do(ctx context.Context, w int, kind Kind) *Result {
	o := l.opts
	var (
		method, path, contentType, body string
		header                          = http.Header{}
		written                         string
	)
	tok := l.token()
	if tok == "" && (kind == KindIntrospect || kind == KindCheckToken) {
		kind = KindToken // nothing to introspect yet
	}
	switch kind {
	case KindToken:
		method, path, contentType, body = http.MethodPost, "/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials"
		header.Set("Authorization", basic(o.Creds.ClientID, o.Creds.ClientSecret))
	case KindIntrospect:
		method, path, contentType = http.MethodPost, "/oauth/introspect", "application/x-www-form-urlencoded"
		body = url.Values{"token": {tok}}.Encode()
		header.Set("Authorization", basic(o.Creds.ClientID, o.Creds.ClientSecret))
	case KindCheckToken:
		method, path = http.MethodGet, "/auth/check"
		header.Set("Authorization", "Bearer "+tok)
	case KindCheckKey:
		method, path = http.MethodGet, "/auth/check"
		header.Set("X-API-Key", o.Creds.APIKey)
	case KindAPIRead:
		method, path = http.MethodGet, "/api/v1/clients?limit=5"
		header.Set("Authorization", "Bearer "+o.Creds.AdminToken)
	case KindAPIWrite:
		l.mu.Lock()
		l.writes++
		written = fmt.Sprintf("load write %d", l.writes)
		l.mu.Unlock()
		method, path, contentType = http.MethodPatch, "/api/v1/clients/"+strconv.FormatInt(o.Creds.TargetID, 10), "application/json"
		b, _ := json.Marshal(map[string]string{"description": written})
		body = string(b)
		header.Set("Authorization", "Bearer "+o.Creds.AdminToken)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.Target+path, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header = header
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	r := send(l.client, req, kind, false)
	r.Worker, r.Written = w, written
	if kind == KindToken && r.token != "" {
		l.addToken(r.token)
	}
	return &r
}

// Send makes one request and reads its answer as the load does; kind says
// how to read it.
func Send(ctx context.Context, kind Kind, method, url, bearer, contentType, body string) Result {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return Result{Kind: kind, Start: time.Now(), Err: err.Error()}
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return send(&http.Client{Transport: ownTransport, Timeout: 10 * time.Second}, req, kind, true)
}

// ownTransport carries the fleet's one-off requests: not
// http.DefaultTransport, whose idle connections every httptest.Server's Close
// shuts, which can break a request that has just picked one.
var ownTransport = http.DefaultTransport.(*http.Transport).Clone()

func send(client *http.Client, req *http.Request, kind Kind, raw bool) Result {
	r := Result{Kind: kind, Start: time.Now()}
	res, err := client.Do(req)
	if err != nil {
		r.Latency = time.Since(r.Start)
		r.Err = err.Error()
		return r
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close() // the body is read; nothing to report
	r.Latency = time.Since(r.Start)
	if err != nil {
		r.Err = "reading the body: " + err.Error()
		return r
	}
	r.Status = res.StatusCode
	if raw {
		r.Raw = string(b)
	}
	r.ContentType = res.Header.Get("Content-Type")
	r.RetryAfter = res.Header.Get("Retry-After")
	if strings.HasPrefix(r.ContentType, "application/problem+json") {
		r.Code = "problem"
	}
	var parsed struct {
		Error       string `json:"error"`
		Active      *bool  `json:"active"`
		AccessToken string `json:"access_token"`
	}
	if len(b) > 0 && json.Unmarshal(b, &parsed) == nil {
		if parsed.Error != "" {
			r.Code = parsed.Error
		}
		if kind == KindIntrospect && r.Status == http.StatusOK {
			r.Active = parsed.Active
			if r.Active == nil {
				f := false
				r.Active = &f
			}
		}
		r.token = parsed.AccessToken
	}
	if !r.OK() {
		r.Body = string(b[:min(len(b), 300)])
	}
	return r
}

func (l *Load) record(r *Result) {
	if r == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats[r.Kind]
	s.Requests++
	s.Statuses[r.Status]++
	if !r.OK() {
		s.Errors++
		if len(l.failures) < maxFailures {
			l.failures = append(l.failures, *r)
		}
	}
	if r.Status != 0 {
		s.Latencies = append(s.Latencies, r.Latency)
	}
	if l.opts.Record {
		l.results = append(l.results, *r)
	}
}

const recentTokens = 256

func (l *Load) addToken(tok string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recent) < recentTokens {
		l.recent = append(l.recent, tok)
	} else {
		l.recent[l.next] = tok
		l.next = (l.next + 1) % recentTokens
	}
	if l.opts.KeepTokens {
		l.tokens = append(l.tokens, tok)
	}
}

func (l *Load) token() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recent) == 0 {
		return ""
	}
	return l.recent[rand.IntN(len(l.recent))]
}

// Stop stops the workers, waits for the requests under way to be answered
// and closes the idle connections.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

// Results answers a copy of the results so far (with Record).
func (l *Load) Results() []Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

const maxFailures = 20

// Failures answers the first results that were not a success.
func (l *Load) Failures() []Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failures)
}

// Tokens answers every token the load got (with KeepTokens).
func (l *Load) Tokens() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.tokens)
}

// Stats answers a copy of the figures per kind.
func (l *Load) Stats() map[Kind]*KindStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[Kind]*KindStats, len(l.stats))
	for k, s := range l.stats {
		c := *s
		c.Latencies = slices.Clone(s.Latencies)
		c.Statuses = make(map[int]int, len(s.Statuses))
		for st, n := range s.Statuses {
			c.Statuses[st] = n
		}
		out[k] = &c
	}
	return out
}

// Report writes a table of the statistics: requests, errors, statuses and
// latency percentiles per kind.
func Report(w io.Writer, stats map[Kind]*KindStats) {
	fmt.Fprintf(w, "%-12s %9s %7s %9s %9s %9s %9s  %s\n", "kind", "requests", "errors", "p50", "p99", "p99.9", "max", "statuses")
	for _, k := range Kinds {
		s := stats[k]
		if s == nil || s.Requests == 0 {
			continue
		}
		var statuses []string
		for _, st := range slices.Sorted(maps.Keys(s.Statuses)) {
			statuses = append(statuses, fmt.Sprintf("%d×%d", st, s.Statuses[st]))
		}
		fmt.Fprintf(w, "%-12s %9d %7d %9s %9s %9s %9s  %s\n", k, s.Requests, s.Errors,
			ms(s.Percentile(50)), ms(s.Percentile(99)), ms(s.Percentile(99.9)), ms(s.Percentile(100)), strings.Join(statuses, " "))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func basic(id int64, secret string) string {
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(strconv.FormatInt(id, 10), secret)
	return req.Header.Get("Authorization")
}

// Introspect introspects every token through base with the credentials'
// client and answers how many are not active, with the first failure.
func Introspect(ctx context.Context, base string, c Credentials, tokens []string) (inactive int, err error) {
	client := &http.Client{Transport: ownTransport, Timeout: 10 * time.Second}
	for _, tok := range tokens {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/introspect",
			bytes.NewBufferString(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic(c.ClientID, c.ClientSecret))
		res, err := client.Do(req)
		if err != nil {
			return inactive, err
		}
		var body struct {
			Active bool `json:"active"`
		}
		derr := json.NewDecoder(res.Body).Decode(&body)
		_ = res.Body.Close() // the body is read; nothing to report
		if res.StatusCode != http.StatusOK || derr != nil {
			return inactive, errors.New("introspect: status " + strconv.Itoa(res.StatusCode))
		}
		if !body.Active {
			inactive++
		}
	}
	return inactive, nil
}
