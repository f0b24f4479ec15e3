// Package client is Tollgate's Go SDK: a typed client of the management API
// (/api/v1, described in docs/openapi.yaml) for accounts, users, API clients
// and keys, account policies, client tokens and the audit trail.
//
// A Client authenticates with a Bearer token the caller holds
// (WithToken) or as a management client, exchanging its id and secret for a
// client_credentials token that it fetches again before it expires
// (WithClientCredentials). Every call takes a context.
//
// Token exchange (RFC 8693): ExchangeToken trades the management client's
// token for one that can do no more than it, optionally acting on one
// descendant account only; ForAccount returns a Client whose every call
// uses such a token (renewed before it expires), so a parent account's
// client manages one child account with nothing above or beside it in
// reach; ExchangeAPIKey turns an API key into a key token.
//
// Error answers are *Error values (the problem+json's status, type, title,
// detail and invalid fields): test them with errors.As or with IsNotFound,
// IsConflict, IsInvalid, IsPreconditionFailed, IsForbidden and
// IsUnauthorized. Secrets the server shows once (a new client's secret, a
// key string, a client token) are fields of the result. Changes take an
// IfMatch version, refused with 412 when the record changed since it was
// read.
package client
