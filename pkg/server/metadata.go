package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// metadata is the RFC 8414 authorization server metadata document.
type metadata struct {
	Issuer                        string   `json:"issuer"`
	TokenEndpoint                 string   `json:"token_endpoint"`
	IntrospectionEndpoint         string   `json:"introspection_endpoint"`
	RevocationEndpoint            string   `json:"revocation_endpoint"`
	GrantTypesSupported           []string `json:"grant_types_supported"`
	ResponseTypesSupported        []string `json:"response_types_supported"`
	TokenEndpointAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuth     []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods []string `json:"revocation_endpoint_auth_methods_supported"`
	// The algorithms of private_key_jwt assertions, at each endpoint that
	// authenticates clients (RFC 8414 §2).
	TokenEndpointAuthAlgs         []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	IntrospectionEndpointAuthAlgs []string `json:"introspection_endpoint_auth_signing_alg_values_supported,omitempty"`
	RevocationEndpointAuthAlgs    []string `json:"revocation_endpoint_auth_signing_alg_values_supported,omitempty"`
	JWKSURI                       string   `json:"jwks_uri,omitempty"`
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// handleMetadata serves GET /.well-known/oauth-authorization-server. It lists
// exactly what the server does: no authorization endpoint (so no response
// types), the enabled grants, the two secret-based auth methods and, when
// assertions are accepted, private_key_jwt with its algorithms.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimSuffix(s.opts.Issuer, "/")
	methods := []string{"client_secret_basic", "client_secret_post"}
	algs := s.opts.AssertionAlgorithms
	if len(algs) > 0 {
		methods = append(methods, "private_key_jwt")
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	var jwksURI string
	if s.opts.JWKS != nil {
		jwksURI = base + PathJWKS
	}
	var dpopAlgs []string
	if s.opts.DPoP != nil {
		dpopAlgs = s.opts.DPoP.Algorithms()
	}
	writeJSON(w, http.StatusOK, metadata{
		Issuer:                        s.opts.Issuer,
		TokenEndpoint:                 base + PathToken,
		IntrospectionEndpoint:         base + PathIntrospect,
		RevocationEndpoint:            base + PathRevoke,
		GrantTypesSupported:           s.opts.GrantTypes,
		ResponseTypesSupported:        []string{},
		TokenEndpointAuthMethods:      methods,
		IntrospectionEndpointAuth:     methods,
		RevocationEndpointAuthMethods: methods,
		JWKSURI:                       jwksURI,
		TokenEndpointAuthAlgs:         algs,
		IntrospectionEndpointAuthAlgs: algs,
		RevocationEndpointAuthAlgs:    algs,
		DPoPSigningAlgValuesSupported: dpopAlgs,
	})
}

// handleJWKS serves GET /.well-known/jwks.json: the public keys that sign
// JWT access tokens (RFC 7517 §5), cacheable for JWKSMaxAge, which is
// shorter than a new key is published before it signs.
func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(s.opts.JWKSMaxAge/time.Second)))
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.opts.JWKS())
}
