// Command tollgate-assert signs client assertions (private_key_jwt,
// RFC 7523) ahead of a load test: each is single-use, and a wrk script
// cannot sign, so .ci/bench.sh has them made before the runs and sends one
// per request. It is load tooling, not part of the server.
//
//	tollgate-assert -key client.pem -jwks jwks.json            # make the key, write its public JWK Set
//	tollgate-assert -key client.pem -client 12 -aud ISSUER -n 200000 -out bodies.txt
//
// Each line of -out is a whole form body of a client_credentials token
// request: grant_type, client_assertion_type and a fresh ES256 assertion
// (iss = sub = the client, aud, iat, exp = now + -lifetime, a random jti).
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

func main() {
	keyFile := flag.String("key", "", "PEM file of the client's P-256 private key (made if absent)")
	jwksFile := flag.String("jwks", "", "write the key's public JWK Set here")
	client := flag.String("client", "", "the client id (iss and sub)")
	aud := flag.String("aud", "", "the assertions' aud: the issuer or the token endpoint")
	n := flag.Int("n", 0, "how many request bodies to write")
	out := flag.String("out", "", "file of the request bodies, one a line")
	lifetime := flag.Duration("lifetime", 5*time.Minute, "exp - iat (the server accepts at most 5m)")
	flag.Parse()
	if err := run(*keyFile, *jwksFile, *client, *aud, *out, *n, *lifetime); err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-assert:", err)
		os.Exit(1)
	}
}

func run(keyFile, jwksFile, client, aud, out string, n int, lifetime time.Duration) error {
	if keyFile == "" {
		return errors.New("-key is required")
	}
	key, err := loadKey(keyFile)
	if err != nil {
		return err
	}
	kid := "bench"
	if jwksFile != "" {
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}}}
		b, err := json.Marshal(set)
		if err != nil {
			return err
		}
		if err := os.WriteFile(jwksFile, b, 0o600); err != nil {
			return err
		}
	}
	if n == 0 {
		return nil
	}
	if client == "" || aud == "" || out == "" {
		return errors.New("-client, -aud and -out are required with -n")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return err
	}
	f, err := os.Create(out) // #nosec G304 -- the operator names the output file
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	prefix := "grant_type=client_credentials&client_assertion_type=" + url.QueryEscape(assertionType) + "&client_assertion="
	now := time.Now()
	for range n {
		claims, err := json.Marshal(map[string]any{"iss": client, "sub": client, "aud": aud,
			"iat": now.Unix(), "exp": now.Add(lifetime).Unix(), "jti": rand.Text()})
		if err != nil {
			return err
		}
		jws, err := signer.Sign(claims)
		if err != nil {
			return err
		}
		compact, err := jws.CompactSerialize()
		if err != nil {
			return err
		}
		if _, err := w.WriteString(prefix + compact + "\n"); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// loadKey reads a PKCS #8 P-256 key from name, or makes one there.
func loadKey(name string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(name) // #nosec G304 -- the operator names the key file
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		return key, os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not a P-256 key", name)
	}
	return key, nil
}
