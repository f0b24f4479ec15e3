package app

import (
	"github.com/tollgate/tollgate/grants"
	"github.com/tollgate/tollgate/grants/apikeysession"
	"github.com/tollgate/tollgate/grants/clientcredentials"
	"github.com/tollgate/tollgate/grants/eskimidsp"
	"github.com/tollgate/tollgate/grants/tokenexchange"
	"github.com/tollgate/tollgate/pkg/secret"
)

// grantRegistry registers every grant Tollgate has, in the order the
// metadata lists them; the configuration (grants.enabled) picks the ones
// served. A new grant is one package under grants/ and one line here.
func grantRegistry(settings grantSettings, db Store, passwords *secret.Passwords, userGuard eskimidsp.Guard, toks tokenexchange.Tokens) *grants.Registry {
	r := &grants.Registry{}
	r.Register(clientcredentials.GrantType, grants.TokenEndpoint, func() grants.Grant { return clientcredentials.New(settings) })
	r.Register(settings.EskimiDSPGrantName(), grants.TokenEndpoint, func() grants.Grant {
		return eskimidsp.New(settings, db, passwords, userGuard)
	})
	r.Register(apikeysession.GrantType, grants.OwnEndpoint, func() grants.Grant { return apikeysession.New(settings) })
	r.Register(tokenexchange.GrantType, grants.TokenEndpoint, func() grants.Grant { return tokenexchange.New(settings, toks, db) })
	return r
}
