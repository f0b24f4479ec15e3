package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate/tollgate/config"
)

// runEnv runs the tollgate command line in-process with only vars as its
// environment.
func runEnv(t *testing.T, vars map[string]string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, env{stdout: &stdout, stderr: &stderr, lookupEnv: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}})
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// TestServerCommandsHelp: -h prints the command's own help on stdout and
// exits 0, not flag's bare "Usage of serve:" with exit 2.
func TestServerCommandsHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantErr  error
		wantOut  string // on stdout
		wantDiag string // on stderr
	}{
		{[]string{"serve", "-h"}, nil, "Usage: tollgate serve [flags]", ""},
		{[]string{"serve", "--help"}, nil, "-migrate", ""},
		{[]string{"migrate", "-h"}, nil, "Usage: tollgate migrate [flags]", ""},
		{[]string{"bootstrap", "-h"}, nil, "-password-file", ""},
		{[]string{"bootstrap", "--help"}, nil, "Usage: tollgate bootstrap [flags]", ""},
		{[]string{"serve", "--no-such-flag"}, errUsage, "", "flag provided but not defined: -no-such-flag"},
		{[]string{"migrate", "--config"}, errUsage, "", "flag needs an argument: -config"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			res := runEnv(t, nil, tt.args...)
			if !errors.Is(res.err, tt.wantErr) && !(tt.wantErr == nil && res.err == nil) {
				t.Fatalf("run(%v) error = %v, want %v", tt.args, res.err, tt.wantErr)
			}
			if tt.wantErr == nil {
				if res.err != nil {
					t.Fatalf("run(%v) error = %v, want nil (exit 0)", tt.args, res.err)
				}
				if !strings.Contains(res.stdout, tt.wantOut) || !strings.Contains(res.stdout, "Flags:") {
					t.Errorf("run(%v) stdout = %q, want the command's help with %q", tt.args, res.stdout, tt.wantOut)
				}
				if res.stderr != "" {
					t.Errorf("run(%v) stderr = %q, want nothing", tt.args, res.stderr)
				}
				return
			}
			if got := exitStatus(res.err); got != 2 {
				t.Errorf("run(%v) exit status = %d, want 2", tt.args, got)
			}
			if !strings.Contains(res.stderr, tt.wantDiag) || !strings.Contains(res.stderr, "Usage: tollgate "+tt.args[0]) {
				t.Errorf("run(%v) stderr = %q, want %q and the command's help", tt.args, res.stderr, tt.wantDiag)
			}
		})
	}
}

// TestCLIRefusesAnswersNotFromTheAPI: a --server that is not Tollgate's
// management API (a web page with 200, say) fails the command; it must not
// print an empty table and exit 0.
func TestCLIRefusesAnswersNotFromTheAPI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
	}{
		{"HTML page", http.StatusOK, "text/html; charset=utf-8", "<!doctype html><title>hello</title>"},
		{"JSON without content type", http.StatusOK, "", `{"items":[]}`},
		{"proxy error page", http.StatusBadGateway, "text/html", "<h1>502 Bad Gateway</h1>"},
		{"empty 200", http.StatusOK, "text/plain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header()["Content-Type"] = []string{tt.contentType}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			// A password in the URL is never printed.
			server := strings.Replace(srv.URL, "http://", "http://ops:pw-in-url@", 1)
			res := runEnv(t, map[string]string{config.CLITokenEnv: "tok"}, "keys", "list", "--server", server)
			if !errors.Is(res.err, errFailed) || exitStatus(res.err) != 1 {
				t.Fatalf("keys list against %s: error = %v, want errFailed (exit 1); stdout %q", tt.name, res.err, res.stdout)
			}
			if !strings.Contains(res.stderr, "did not answer as Tollgate's management API") {
				t.Errorf("stderr = %q, want it to say the server is not the management API", res.stderr)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
			if strings.Contains(res.stderr, "pw-in-url") {
				t.Errorf("stderr = %q, shows the password of the server URL", res.stderr)
			}
		})
	}
}

// nonLoopbackAddr returns an address of this machine that is not loopback.
func nonLoopbackAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no non-loopback IPv4 address on this machine (CI=true, not skipping)")
	}
	t.Skip("no non-loopback IPv4 address on this machine")
	return ""
}

// TestCLIPlainHTTPOnlyToLoopback: the admin token goes over plain http only
// to this machine's own server, unless --insecure-http says otherwise.
func TestCLIPlainHTTPOnlyToLoopback(t *testing.T) {
	t.Parallel()
	ip := nonLoopbackAddr(t)
	var got atomic.Value
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"items":[]}`)
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	vars := map[string]string{config.CLITokenEnv: "secret-admin-token"}

	res := runEnv(t, vars, "keys", "list", "--server", srv.URL)
	if !errors.Is(res.err, errUsage) {
		t.Fatalf("keys list --server %s: error = %v, want a usage error", srv.URL, res.err)
	}
	if !strings.Contains(res.stderr, "refusing to send the token over plain http") {
		t.Errorf("stderr = %q, want the refusal", res.stderr)
	}
	if v := got.Load(); v != nil {
		t.Fatalf("the server received Authorization %q, want no request at all", v)
	}

	res = runEnv(t, vars, "keys", "list", "--server", srv.URL, "--insecure-http")
	if res.err != nil {
		t.Fatalf("keys list --insecure-http: %v\n%s", res.err, res.stderr)
	}
	if v, _ := got.Load().(string); v != "Bearer secret-admin-token" {
		t.Errorf("with --insecure-http the server received Authorization %q, want the token", v)
	}
	if strings.Contains(res.stdout+res.stderr, "secret-admin-token") {
		t.Error("the token was printed")
	}
}

func TestServerFromListenAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		vars map[string]string
		want string
	}{
		{nil, cliDefaultServer},
		{map[string]string{config.HTTPAddrEnv: "127.0.0.1:9000"}, "http://127.0.0.1:9000"},
		{map[string]string{config.HTTPAddrEnv: ":9001"}, "http://127.0.0.1:9001"},
		{map[string]string{config.HTTPAddrEnv: "0.0.0.0:9002"}, "http://127.0.0.1:9002"},
		{map[string]string{config.HTTPAddrEnv: "[::]:9003"}, "http://127.0.0.1:9003"},
		{map[string]string{config.HTTPAddrEnv: "[::1]:9004"}, "http://[::1]:9004"},
		{map[string]string{config.HTTPAddrEnv: "localhost:9005", config.HTTPTLSCertEnv: "/etc/tls.crt"}, "https://localhost:9005"},
		{map[string]string{config.HTTPAddrEnv: "not an address"}, cliDefaultServer},
	}
	for _, tt := range tests {
		e := env{lookupEnv: func(k string) (string, bool) { v, ok := tt.vars[k]; return v, ok }}
		if got := serverFromListenAddr(e); got != tt.want {
			t.Errorf("serverFromListenAddr(%v) = %q, want %q", tt.vars, got, tt.want)
		}
	}
}

// TestCLIFollowsHTTPAddr: without TOLLGATE_SERVER the management commands
// reach the server at TOLLGATE_HTTP_ADDR, as `serve` does in the same shell.
func TestCLIFollowsHTTPAddr(t *testing.T) {
	f := newFixture(t, "embedded")
	tok := f.TokenDSP(f.DSP(), "alice")
	addr := strings.TrimPrefix(f.URL(), "http://")
	res := runEnv(t, map[string]string{config.HTTPAddrEnv: addr, config.CLITokenEnv: tok}, "keys", "list", "-o", "json")
	if res.err != nil {
		t.Fatalf("keys list with %s=%s: %v\n%s", config.HTTPAddrEnv, addr, res.err, res.stderr)
	}
	if !strings.Contains(res.stdout, `"items"`) {
		t.Errorf("keys list stdout = %q, want the API's list", res.stdout)
	}
}

// The constants name real settings of the server.
func TestCLIServerEnvNamesAreSettings(t *testing.T) {
	t.Parallel()
	names := strings.Join(config.EnvNames(), " ") + " "
	for _, n := range []string{config.HTTPAddrEnv, config.HTTPTLSCertEnv} {
		if !strings.Contains(names, n+" ") {
			t.Errorf("%s is not a configuration variable (config.EnvNames)", n)
		}
	}
}
