package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"golang.org/x/term"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/pkg/client"
)

// The management commands (accounts, users, clients, keys, audit) are
// clients of a running server's management API: they never load the server
// configuration, and read only these variables.
const (
	cliDefaultServer = "http://127.0.0.1:8080"
	cliTimeout       = 30 * time.Second
)

// errFailed reports that a command failed and has already said why on
// stderr; the process exits with status 1.
var errFailed = errors.New("command failed")

// exitStatus is the process exit status for an error of run.
func exitStatus(err error) int {
	if errors.Is(err, errFailed) {
		return 1
	}
	return 2
}

// cliVerb is one verb of a management command, e.g. `keys rotate`.
type cliVerb struct {
	name    string
	args    string // the positional arguments, "" or "ID"
	usage   string // the flags, for the command list
	summary string
	// ownAuth marks a verb that authenticates at the token endpoint with
	// credentials of its own flags (tokens exchange): it reads no Bearer
	// token, and the cliClient it gets has no api.
	ownAuth bool
	// setup defines the verb's own flags on fs and returns what runs once
	// they are parsed.
	setup func(fs *flag.FlagSet) func(ctx context.Context, c *cliClient, id int64) error
}

// cliResource is a management command: a resource and its verbs.
type cliResource struct {
	name    string
	summary string
	verbs   []cliVerb
}

func findResource(name string) (cliResource, bool) {
	i := slices.IndexFunc(cliResources(), func(r cliResource) bool { return r.name == name })
	if i < 0 {
		return cliResource{}, false
	}
	return cliResources()[i], true
}

func (r cliResource) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: tollgate %s <verb> [flags]\n\n%s\n\nVerbs:\n", r.name, r.summary)
	for _, v := range r.verbs {
		fmt.Fprintf(&b, "  %s\n      %s\n", joinNonEmpty(v.name, v.args, v.usage), v.summary)
	}
	common := cliCommonUsage
	if !slices.ContainsFunc(r.verbs, func(v cliVerb) bool { return !v.ownAuth }) {
		// Verbs that authenticate on their own read no Bearer token.
		common = cliOwnAuthUsage
	}
	b.WriteString(common)
	fmt.Fprintf(&b, "\nRun 'tollgate %s <verb> -h' for a verb's flags.\n", r.name)
	return b.String()
}

const cliCommonUsage = `
Every verb takes:
  --server URL       the server (default $` + config.CLIServerEnv + `, else the address in
                     $` + config.HTTPAddrEnv + `, else ` + cliDefaultServer + `)
  --insecure-http    send the token over plain http to a host that is not this machine
  --token-file FILE  file holding a Bearer token of the server (default $` + config.CLITokenEnv + `)
  --token TOKEN      the token itself (visible in ps: prefer the file or the variable)
  -o table|json      output: aligned columns, or the API's JSON as is (default table)
`

const cliOwnAuthUsage = `
Every verb takes:
  --server URL       the server (default $` + config.CLIServerEnv + `, else the address in
                     $` + config.HTTPAddrEnv + `, else ` + cliDefaultServer + `)
  --insecure-http    send credentials over plain http to a host that is not this machine
  -o table|json      output: aligned columns, or JSON (default table)
`

func joinNonEmpty(parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), " ")
}

// runCLI runs management command resource with args.
func runCLI(ctx context.Context, resource string, args []string, e env) error {
	res, _ := findResource(resource)
	if len(args) == 0 {
		_, _ = fmt.Fprint(e.stderr, res.usage()) // errUsage tells the caller; a failing stderr has no better place
		return errUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		_, _ = fmt.Fprint(e.stdout, res.usage()) // help text: nothing to do if the terminal is gone
		return nil
	}
	i := slices.IndexFunc(res.verbs, func(v cliVerb) bool { return v.name == args[0] })
	if i < 0 {
		fmt.Fprintf(e.stderr, "tollgate %s: unknown verb %q\n\n%s", resource, args[0], res.usage())
		return errUsage
	}
	verb := res.verbs[i]
	name := "tollgate " + resource + " " + verb.name
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\n%s\n\nFlags:\n", joinNonEmpty(name, verb.args, "[flags]"), verb.summary)
		fs.PrintDefaults()
	}
	var o cliOptions
	o.define(fs, !verb.ownAuth)
	runVerb := verb.setup(fs)
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return errUsage
	}
	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(e.stderr, "%s: %s\n", name, fmt.Sprintf(format, a...))
		return errUsage
	}
	var id int64
	switch {
	case verb.args == "" && len(pos) > 0:
		return usageErr("unexpected arguments %q", pos)
	case verb.args != "" && len(pos) != 1:
		return usageErr("want exactly one %s argument", verb.args)
	case verb.args != "":
		if id, err = strconv.ParseInt(pos[0], 10, 64); err != nil || id <= 0 {
			return usageErr("%s must be a positive integer, got %q", verb.args, pos[0])
		}
	}
	c, err := o.client(fs, e, !verb.ownAuth)
	if err != nil {
		return usageErr("%v", err)
	}
	err = runVerb(ctx, c, id)
	var ue cliUsageError
	switch {
	case err == nil, errors.Is(err, errFailed):
		return err
	case errors.As(err, &ue):
		return usageErr("%v", ue.error)
	default:
		fmt.Fprintf(e.stderr, "error: %v\n", err)
		return errFailed
	}
}

// cliUsageError is a mistake in the command line found while running it.
type cliUsageError struct{ error }

func usageErrorf(format string, a ...any) error {
	return cliUsageError{fmt.Errorf(format, a...)}
}

// parseInterleaved parses fs from args, letting positional arguments and
// flags come in any order (`keys get 12 -o json`); after "--" everything
// is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// cliOptions are the flags every verb takes.
type cliOptions struct {
	server, token, tokenFile, output string
	insecureHTTP                     bool
}

// define defines the flags; the token flags only withToken.
func (o *cliOptions) define(fs *flag.FlagSet, withToken bool) {
	fs.StringVar(&o.server, "server", "", "URL of the server (default $"+config.CLIServerEnv+", else the address in $"+config.HTTPAddrEnv+", else "+cliDefaultServer+")")
	fs.BoolVar(&o.insecureHTTP, "insecure-http", false, "send credentials over plain http to a host other than this machine")
	if withToken {
		fs.StringVar(&o.token, "token", "", "Bearer token (shows up in ps: prefer --token-file or $"+config.CLITokenEnv+")")
		fs.StringVar(&o.tokenFile, "token-file", "", "file holding the Bearer token (default $"+config.CLITokenEnv+")")
	}
	fs.StringVar(&o.output, "o", "table", "output format: table or json")
	fs.StringVar(&o.output, "output", "table", "output format: table or json")
}

// client checks the options and returns the API client they describe;
// without withToken it reads no token and makes no api, for a verb that
// authenticates on its own (see cliClient.connect).
func (o *cliOptions) client(fs *flag.FlagSet, e env, withToken bool) (*cliClient, error) {
	if o.output != "table" && o.output != "json" {
		return nil, fmt.Errorf("-o must be table or json, got %q", o.output)
	}
	server := o.server
	if server == "" {
		server, _ = e.lookupEnv(config.CLIServerEnv)
	}
	if server == "" {
		server = serverFromListenAddr(e)
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the server must be an http:// or https:// URL, got %q", server)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// A transport of its own: http.DefaultTransport is shared with whatever
	// else the process does (in the tests, every httptest.Server's Close
	// closes its idle connections, which broke a command's request that had
	// just picked one).
	transport, _ := http.DefaultTransport.(*http.Transport)
	hc := &http.Client{Timeout: cliTimeout}
	if transport != nil {
		hc.Transport = transport.Clone()
	}
	c := &cliClient{
		server: u.String(),
		opts:   []client.Option{client.WithUserAgent("tollgate-cli/" + version), client.WithHTTPClient(hc)},
		shown:  u.Redacted(),
		host:   u.Host,
		json:   o.output == "json",
		set:    set,
		e:      e,
	}
	if o.insecureHTTP {
		c.opts = append(c.opts, client.WithPlainHTTP())
	}
	if !withToken {
		return c, nil
	}
	token, err := o.readToken(e)
	if err != nil {
		return nil, err
	}
	if c.api, err = c.connect(client.WithToken(token)); err != nil {
		return nil, err
	}
	return c, nil
}

// readToken returns the Bearer token of --token-file, --token or
// $TOLLGATE_TOKEN.
func (o *cliOptions) readToken(e env) (string, error) {
	var token string
	switch {
	case o.token != "" && o.tokenFile != "":
		return "", errors.New("give --token or --token-file, not both")
	case o.tokenFile != "":
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("read the token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	case o.token != "":
		token = o.token
	default:
		token, _ = e.lookupEnv(config.CLITokenEnv)
		token = strings.TrimSpace(token)
	}
	if token == "" {
		return "", fmt.Errorf("no token: set %s, or give --token-file", config.CLITokenEnv)
	}
	return token, nil
}

// connect returns an SDK client of the server authenticating with creds.
func (c *cliClient) connect(creds client.Option) (*client.Client, error) {
	api, err := client.New(c.server, append(slices.Clone(c.opts), creds)...)
	if errors.Is(err, client.ErrPlainHTTP) {
		// The SDK refuses plain http to another machine.
		return nil, fmt.Errorf("refusing to send the token over plain http to %s: use https, or give --insecure-http", c.host)
	}
	return api, err
}

// serverFromListenAddr returns the URL of the server this machine runs
// with the same environment: the address of TOLLGATE_HTTP_ADDR (https
// when TOLLGATE_HTTP_TLS_CERT_FILE is set), an unspecified host read as
// 127.0.0.1; else cliDefaultServer.
func serverFromListenAddr(e env) string {
	addr, _ := e.lookupEnv(config.HTTPAddrEnv)
	host, port, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil || port == "" {
		return cliDefaultServer
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cert, _ := e.lookupEnv(config.HTTPTLSCertEnv); cert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// cliClient calls the management API through the Go SDK and prints its
// answers.
type cliClient struct {
	api    *client.Client // nil for a verb with ownAuth
	server string
	opts   []client.Option // the SDK options of every client of the command, but credentials
	shown  string          // the server URL for messages, any password in it masked
	host   string
	json   bool
	set    map[string]bool // the flags given on the command line
	e      env
}

// fail prints why a call failed and returns errFailed: an error answer as
// its status, OAuth error code and detail and one line per invalid field, an answer that is
// not the API's as a hint to check --server, anything else (the server
// unreachable) as it is.
func (c *cliClient) fail(err error) error {
	var apiErr *client.Error
	var unexpected *client.UnexpectedAnswerError
	switch {
	case errors.As(err, &apiErr):
		msg := clean(apiErr.Message())
		if apiErr.Code != "" && apiErr.Detail == "" {
			// An OAuth error of the token endpoint: its code says most.
			msg = clean(apiErr.Code) + ": " + msg
		}
		fmt.Fprintf(c.e.stderr, "error: %d %s\n", apiErr.StatusCode, msg)
		for _, fe := range apiErr.Fields {
			fmt.Fprintf(c.e.stderr, "  %s: %s\n", clean(fe.Field), clean(fe.Detail))
		}
	case errors.As(err, &unexpected):
		// A web page, a proxy's error page, another service on the port:
		// printing it as an empty table would pass for success.
		fmt.Fprintf(c.e.stderr, "error: %s did not answer as Tollgate's management API (%d, Content-Type %q): check --server\n",
			c.shown, unexpected.StatusCode, clean(unexpected.ContentType))
	default:
		// A URL error names the server, never the token.
		fmt.Fprintf(c.e.stderr, "error: %v\n", err)
	}
	return errFailed
}

// asksOnlyPassword reports whether err is invalid fields naming password
// and nothing else: the server asking for the caller's own password (an
// account policy).
func asksOnlyPassword(err error) bool {
	var apiErr *client.Error
	if !client.IsInvalid(err) || !errors.As(err, &apiErr) || len(apiErr.Fields) == 0 {
		return false
	}
	for _, fe := range apiErr.Fields {
		if fe.Field != "password" {
			return false
		}
	}
	return true
}

// clean makes text from the server safe to print in one table cell: no
// control characters (terminal escapes, tabs, line breaks).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// cliView says how a resource prints as a table.
type cliView struct {
	noun string
	// columns of a list, as JSON member names.
	columns []string
	// fields of one record, in this order; other members follow sorted.
	fields []string
}

// decodeObject reads a JSON object keeping numbers as they are.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("the server's answer is not a JSON object: %w", err)
	}
	return m, nil
}

// secretFields are shown once, apart from the record, with a warning.
var secretFields = []string{"client_secret", "key", "access_token", "secret"}

// printRecord prints one record, given as the JSON the server sent: as is,
// or as a two-column table.
func (c *cliClient) printRecord(raw []byte, v cliView) error {
	if c.json {
		return c.printJSON(raw)
	}
	m, err := decodeObject(raw)
	if err != nil {
		return err
	}
	names := slices.Clone(v.fields)
	var rest []string
	for k := range m {
		if !slices.Contains(names, k) && !slices.Contains(secretFields, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	tw := tabwriter.NewWriter(c.e.stdout, 0, 0, 2, ' ', 0)
	for _, k := range append(names, rest...) {
		if _, ok := m[k]; ok || slices.Contains(v.fields, k) {
			fmt.Fprintf(tw, "%s\t%s\n", k, cell(m[k], false))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var secrets []string
	for _, k := range secretFields {
		if s, ok := m[k].(string); ok && s != "" {
			secrets = append(secrets, k)
		}
	}
	if len(secrets) == 0 {
		return nil
	}
	fmt.Fprintf(c.e.stdout, "\nShown once — store it now; it cannot be shown again:\n")
	tw = tabwriter.NewWriter(c.e.stdout, 0, 0, 2, ' ', 0)
	for _, k := range secrets {
		fmt.Fprintf(tw, "%s\t%s\n", k, clean(m[k].(string)))
	}
	return tw.Flush()
}

// printList prints a page of records, given as the JSON the server sent:
// as is, or as a table with a hint for the next page.
func (c *cliClient) printList(raw []byte, v cliView) error {
	if c.json {
		return c.printJSON(raw)
	}
	m, err := decodeObject(raw)
	if err != nil {
		return err
	}
	items, _ := m["items"].([]any)
	tw := tabwriter.NewWriter(c.e.stdout, 0, 0, 2, ' ', 0)
	headers := make([]string, len(v.columns))
	for i, col := range v.columns {
		headers[i] = strings.ToUpper(strings.ReplaceAll(strings.TrimSuffix(col, "_at"), "_", " "))
	}
	_, _ = fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, it := range items {
		row, _ := it.(map[string]any)
		cells := make([]string, len(v.columns))
		for i, col := range v.columns {
			cells[i] = cell(row[col], true)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next, ok := m["next"]; ok && next != nil {
		fmt.Fprintf(c.e.stderr, "(more %s: add --after %v)\n", v.noun, next)
	}
	return nil
}

func (c *cliClient) printJSON(b []byte) error {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	_, err := c.e.stdout.Write(b)
	return err
}

// printDone reports a change that answers no body (204), in table mode.
func (c *cliClient) printDone(format string, a ...any) {
	if !c.json {
		fmt.Fprintf(c.e.stdout, format+"\n", a...)
	}
}

// maxCell bounds a list cell; the record view shows everything.
const maxCell = 40

// cell formats one JSON value for a table.
func cell(v any, short bool) string {
	var s string
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		s = v
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			s = t.UTC().Format(time.RFC3339)
		}
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		s = strings.Join(parts, " ")
	case map[string]any:
		// An object (an account's policies): name=value in name order,
		// null shown as "-".
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, k+"="+cell(v[k], false))
		}
		s = strings.Join(parts, " ")
	default:
		s = fmt.Sprint(v)
	}
	s = clean(s)
	if s == "" {
		return "-"
	}
	if r := []rune(s); short && len(r) > maxCell {
		s = string(r[:maxCell-1]) + "…"
	}
	return s
}

// readPassword returns a password: from file, else from
// $TOLLGATE_PASSWORD, else typed on the terminal (twice when confirm is
// set). It is never a flag value.
func readPassword(e env, file, prompt string, confirm bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file) // #nosec G304 G703 -- the user names their own password file on the command line
		if err != nil {
			return "", fmt.Errorf("read the password file: %w", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return "", errors.New("the password file is empty")
		}
		return p, nil
	}
	if p, ok := e.lookupEnv(config.CLIPasswordEnv); ok && p != "" {
		return p, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", usageErrorf("no password: give --password-file, set %s, or run on a terminal", config.CLIPasswordEnv)
	}
	read := func(prompt string) (string, error) {
		_, _ = fmt.Fprint(e.stderr, prompt) // the read that follows fails on its own if the terminal is gone
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		return string(b), nil
	}
	p, err := read(prompt + ": ")
	if err != nil {
		return "", err
	}
	if confirm {
		again, err := read("Again: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", usageErrorf("the passwords differ")
		}
	}
	if p == "" {
		return "", usageErrorf("the password is empty")
	}
	return p, nil
}

// seconds parses a duration flag: a Go duration (90s, 24h) or a number of
// seconds.
func seconds(flagName, s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d%time.Second != 0 {
		return 0, usageErrorf("--%s must be a duration in whole seconds (e.g. 3600, 90m, 24h), got %q", flagName, s)
	}
	return int64(d / time.Second), nil
}

// words splits a list flag given as "a b" or "a,b".
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}
