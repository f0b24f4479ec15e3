// Package grants holds Tollgate's token endpoint grants, one small type per
// grant in its own sub-package: clientcredentials (RFC 6749 §4.4) and
// eskimidsp (the password-style grant platforms already use). Each declares
// the few settings it reads and the narrow storage it needs; client
// authentication, scope syntax and response writing happen outside them.
package grants
