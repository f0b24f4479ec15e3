package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e"
)

// testCert is a self-signed certificate for 127.0.0.1 and its PEM files.
type testCert struct {
	cert     *x509.Certificate
	certPEM  []byte
	keyPEM   []byte
	certFile string
	keyFile  string
}

func newTestCert(t *testing.T, serial int64) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "tollgate test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

// writeTo writes the PEM files into dir (replacing what is there).
func (c *testCert) writeTo(t *testing.T, dir string) {
	t.Helper()
	c.certFile, c.keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFileAtomic(t, c.certFile, c.certPEM)
	writeFileAtomic(t, c.keyFile, c.keyPEM)
}

// writeFileAtomic replaces path by a rename, as certificate renewal tools
// do, so a reload never reads half a file.
func writeFileAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsClient trusts the certificates in roots and speaks only TLS versions
// min to max.
func tlsClient(min, max uint16, roots ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: min, MaxVersion: max},
			DisableKeepAlives: true,
		},
	}
}

// servedSerial answers the serial number of the certificate addr presents.
func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only reads the served certificate
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// runServeLogs is runServe that also answers the server's log output.
func runServeLogs(t *testing.T, vars map[string]string) (public, ops string, logs *e2e.LockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	logs = &e2e.LockedBuffer{}
	go func() {
		done <- run(ctx, []string{"serve"}, env{stdout: io.Discard, stderr: logs, lookupEnv: environ(vars),
			ready: func(public, ops string) { ready <- [2]string{public, ops} }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addrs := <-ready:
		return addrs[0], addrs[1], logs
	case err := <-done:
		done <- err
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	return "", "", nil
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	first := newTestCert(t, 1)
	first.writeTo(t, dir)
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":           t.TempDir(),
		"TOLLGATE_HTTP_ADDR":          "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":           "127.0.0.1:0",
		"TOLLGATE_HTTP_TLS_CERT_FILE": first.certFile,
		"TOLLGATE_HTTP_TLS_KEY_FILE":  first.keyFile,
		"TOLLGATE_OPS_TLS_CERT_FILE":  first.certFile,
		"TOLLGATE_OPS_TLS_KEY_FILE":   first.keyFile,
	}
	addr, ops, logs := runServeLogs(t, vars)
	metadataURL := "https://" + addr + "/.well-known/oauth-authorization-server"

	t.Run("TLS 1.2 and 1.3 served, with HSTS", func(t *testing.T) {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			res, err := tlsClient(v, v, first.cert).Get(metadataURL)
			if err != nil {
				t.Fatalf("%s: %v", tls.VersionName(v), err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || res.TLS.Version != v {
				t.Errorf("%s: status %d over %s, want 200", tls.VersionName(v), res.StatusCode, tls.VersionName(res.TLS.Version))
			}
			if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
				t.Errorf("%s: Strict-Transport-Security = %q, want max-age=31536000", tls.VersionName(v), got)
			}
			if !strings.Contains(string(body), `"issuer":"https://`) {
				t.Errorf("metadata %s: want an https issuer", body)
			}
		}
	})
	t.Run("TLS 1.0 and 1.1 refused", func(t *testing.T) {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			res, err := tlsClient(v, v, first.cert).Get(metadataURL)
			if err == nil {
				res.Body.Close()
				t.Fatalf("%s: handshake succeeded (status %d), want refused", tls.VersionName(v), res.StatusCode)
			}
			if !strings.Contains(err.Error(), "protocol version") {
				t.Errorf("%s: error %v, want a protocol version refusal", tls.VersionName(v), err)
			}
		}
	})
	t.Run("plain HTTP refused", func(t *testing.T) {
		res, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/.well-known/oauth-authorization-server")
		if err != nil {
			return // the connection was closed: refused
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: status %d, want 400 (HTTP request to an HTTPS server)", res.StatusCode)
		}
	})
	t.Run("ops listener", func(t *testing.T) {
		res, err := tlsClient(tls.VersionTLS12, tls.VersionTLS13, first.cert).Get("https://" + ops + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("ops /healthz over TLS: status %d", res.StatusCode)
		}
	})
	t.Run("SIGHUP reloads the certificate", func(t *testing.T) {
		// A broken file is refused; the served certificate stays.
		writeFileAtomic(t, first.certFile, []byte("not a certificate"))
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return strings.Count(logs.String(), "TLS certificate reload failed") >= 2 })
		if got := servedSerial(t, addr); got != 1 {
			t.Errorf("after a failed reload the served serial is %d, want 1", got)
		}

		second := newTestCert(t, 2)
		second.writeTo(t, dir)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return servedSerial(t, addr) == 2 && servedSerial(t, ops) == 2 })
		res, err := tlsClient(tls.VersionTLS12, tls.VersionTLS13, second.cert).Get(metadataURL)
		if err != nil {
			t.Fatalf("with the renewed certificate: %v", err)
		}
		res.Body.Close()
		if strings.Contains(logs.String(), string(second.keyPEM)) || strings.Contains(logs.String(), "PRIVATE KEY") {
			t.Error("the private key appears in the logs")
		}
	})
}

func TestServeTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	c := newTestCert(t, 1)
	c.writeTo(t, dir)
	other := newTestCert(t, 2)
	mismatched := filepath.Join(dir, "other.key")
	writeFileAtomic(t, mismatched, other.keyPEM)
	tests := []struct {
		name       string
		cert, key  string
		wantInErr  string
		listenerIn string
	}{
		{"missing certificate", filepath.Join(dir, "absent.crt"), c.keyFile, "absent.crt", "public"},
		{"key of another certificate", c.certFile, mismatched, "private key does not match", "public"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{
				"TOLLGATE_DATA_DIR":           t.TempDir(),
				"TOLLGATE_HTTP_ADDR":          "127.0.0.1:0",
				"TOLLGATE_OPS_ADDR":           "127.0.0.1:0",
				"TOLLGATE_HTTP_TLS_CERT_FILE": tt.cert,
				"TOLLGATE_HTTP_TLS_KEY_FILE":  tt.key,
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err := run(ctx, []string{"serve"}, env{stdout: io.Discard, stderr: io.Discard, lookupEnv: environ(vars)})
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) || !strings.Contains(err.Error(), tt.listenerIn) {
				t.Errorf("serve with %s: err = %v, want a refusal naming %q", tt.name, err, tt.wantInErr)
			}
		})
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
