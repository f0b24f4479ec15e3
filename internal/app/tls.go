package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// certificate is a listener's TLS certificate, read from its PEM files at
// start and again on reload, so a renewed certificate is served without a
// restart. Handshakes read the current one.
type certificate struct {
	listener          string // "public" or "ops", for the logs
	certFile, keyFile string
	current           atomic.Pointer[tls.Certificate]
}

// loadCertificate reads a certificate and its key; an unreadable or
// mismatched pair is an error, so serve refuses to start with it.
func loadCertificate(listener, certFile, keyFile string) (*certificate, error) {
	c := &certificate{listener: listener, certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again. On failure the certificate in use stays.
func (c *certificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// The error names the files, never their contents.
		return fmt.Errorf("%s listener TLS certificate: %w", c.listener, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("%s listener TLS certificate %s: %w", c.listener, c.certFile, err)
		}
	}
	c.current.Store(&pair)
	return nil
}

// notAfter is the expiry of the certificate in use.
func (c *certificate) notAfter() time.Time { return c.current.Load().Leaf.NotAfter }

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// tlsConfig is the server side of every TLS listener: TLS 1.2 at least,
// only forward-secret AEAD cipher suites for TLS 1.2 (TLS 1.3 has nothing
// else), and the certificate read at handshake time.
func (c *certificate) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.get,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
		},
	}
}

// listenerCertificates loads the certificates of the listeners that have
// TLS files configured; a listener without them is absent from the map.
func listenerCertificates(files map[string][2]string) (map[string]*certificate, error) {
	out := map[string]*certificate{}
	var errs []error
	for listener, f := range files {
		if f[0] == "" {
			continue
		}
		c, err := loadCertificate(listener, f[0], f[1])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[listener] = c
	}
	return out, errors.Join(errs...)
}

// reloadOnHangup reloads every certificate on each signal from hup, until
// ctx is done. A certificate that fails to load is logged and the previous
// one stays in use.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, certs map[string]*certificate, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reloadCertificates(certs, logger)
		}
	}
}

func reloadCertificates(certs map[string]*certificate, logger *slog.Logger) {
	for _, c := range certs {
		if err := c.reload(); err != nil {
			logger.Error("TLS certificate reload failed; the previous certificate stays in use", "listener", c.listener, "err", err)
			continue
		}
		logger.Info("TLS certificate reloaded", "listener", c.listener, "not_after", c.notAfter().UTC().Format(time.RFC3339))
	}
}
