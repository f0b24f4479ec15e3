package grants

import (
	"fmt"
	"slices"

	"github.com/ory/fosite"

	"github.com/tollgate/tollgate/pkg/tokens"
)

// Endpoint is where a grant is served.
type Endpoint int

const (
	// TokenEndpoint grants are served at POST /oauth/token and listed in
	// the metadata's grant_types_supported.
	TokenEndpoint Endpoint = iota
	// OwnEndpoint grants have an endpoint of their own (the key session's
	// POST /auth/access/session); they are not grant_type values of the
	// token endpoint.
	OwnEndpoint
)

// Factory builds a grant.
type Factory func() Grant

// Registry names every grant the server has, each with where it is served
// and the factory that builds it. The wiring registers them and builds the
// enabled ones (Enable); adding a grant is one package and one
// registration.
type Registry struct {
	entries []entry
}

type entry struct {
	name     string
	endpoint Endpoint
	build    Factory
}

// Register adds the grant named name, served at endpoint and built by f.
// Registration order is the order of the metadata's grant_types_supported.
// Registering a name twice panics: it is a wiring mistake.
func (r *Registry) Register(name string, endpoint Endpoint, f Factory) {
	if slices.ContainsFunc(r.entries, func(e entry) bool { return e.name == name }) {
		panic(fmt.Sprintf("grants: %q registered twice", name))
	}
	r.entries = append(r.entries, entry{name: name, endpoint: endpoint, build: f})
}

// Names returns the registered grants' names, in registration order.
func (r *Registry) Names() []string {
	names := make([]string, len(r.entries))
	for i, e := range r.entries {
		names[i] = e.name
	}
	return names
}

// Enable builds the grants named in enabled; it fails on a name that is
// not registered.
func (r *Registry) Enable(enabled []string) (*Set, error) {
	for _, name := range enabled {
		if !slices.Contains(r.Names(), name) {
			return nil, fmt.Errorf("grant %q is not one of %v", name, r.Names())
		}
	}
	s := &Set{}
	for _, e := range r.entries {
		if !slices.Contains(enabled, e.name) {
			continue
		}
		g := e.build()
		if g.Name() != e.name {
			return nil, fmt.Errorf("grant registered as %q is named %q", e.name, g.Name())
		}
		s.grants = append(s.grants, enabledGrant{Grant: g, endpoint: e.endpoint})
	}
	return s, nil
}

// Set is the enabled grants, in registration order.
type Set struct {
	grants []enabledGrant
}

type enabledGrant struct {
	Grant
	endpoint Endpoint
}

// Names returns the names of every enabled grant.
func (s *Set) Names() []string {
	var names []string
	for _, g := range s.grants {
		names = append(names, g.Name())
	}
	return names
}

// Assignable returns the names of the enabled grants a client's grant
// types may list: every one but the universal ones (Policy.Universal),
// which every client has.
func (s *Set) Assignable() []string {
	var names []string
	for _, g := range s.grants {
		if !g.Policy().Universal {
			names = append(names, g.Name())
		}
	}
	return names
}

// TokenEndpointNames returns the grant_type values the token endpoint
// serves: the metadata's grant_types_supported.
func (s *Set) TokenEndpointNames() []string {
	var names []string
	for _, g := range s.grants {
		if g.endpoint == TokenEndpoint {
			names = append(names, g.Name())
		}
	}
	return names
}

// Get returns the enabled grant named name, or nil when it is not enabled.
func (s *Set) Get(name string) Grant {
	for _, g := range s.grants {
		if g.Name() == name {
			return g.Grant
		}
	}
	return nil
}

// Handlers returns fosite's handlers of the token endpoint's grants,
// minting through svc.
func (s *Set) Handlers(svc *tokens.Service) fosite.TokenEndpointHandlers {
	var hs fosite.TokenEndpointHandlers
	for _, g := range s.grants {
		if g.endpoint == TokenEndpoint {
			hs = append(hs, NewHandler(g.Grant, svc))
		}
	}
	return hs
}
