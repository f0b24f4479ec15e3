package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// The exported methods of API are its service layer: every rule of who may
// read and change what lives there, and the HTTP handlers of /api/v1 are
// thin wrappers around them. Other front ends (the web console) call them
// directly, so both answer the same way to the same person.

// Actor is who calls a service method.
type Actor struct{ p *principal }

// UserActor answers user u acting from address remote (for the audit
// trail). The caller has authenticated u (a password, a session) and
// checked that u and their account are active: the service methods trust
// it.
func UserActor(u storage.User, remote string) Actor {
	return Actor{&principal{user: &u, human: &u, accountID: u.AccountID, admin: u.Role == storage.RoleAdmin, remote: remote}}
}

// AccountID answers the account act belongs to: the root of what an admin
// manages.
func (act Actor) AccountID() int64 { return act.p.accountID }

// Admin reports whether act manages their account's subtree (or only what
// they own).
func (act Actor) Admin() bool { return act.p.admin }

// ClientInput is what a create or an edit of a credential sets; nil fields
// are left as they are (or take their defaults on create).
type ClientInput = clientInput

// UserInput is what creating a user sets.
type UserInput = userInput

// UserUpdate is what changing a user sets; nil fields are left as they
// are.
type UserUpdate = userUpdate

// FieldError names one invalid field of a service call, by its JSON name in
// the management API.
type FieldError struct {
	Field  string
	Detail string
}

// Refusal is why a service method refused: the HTTP status the management
// API answers with, a sentence for people, the invalid fields if any, and
// when to retry after a brute-force block.
type Refusal struct {
	Status     int
	Detail     string
	Fields     []FieldError
	RetryAfter time.Duration
	// Cause is what failed behind a 5xx, for the log; never shown.
	Cause error
}

// RefusalOf describes the error of a service method. An error that is no
// refusal (it should not happen) answers as a 503 outage, which is also how
// the service methods report a backend failure.
func RefusalOf(err error) Refusal {
	var pr problem
	if !errors.As(err, &pr) {
		pr = unavailable(err)
	}
	out := Refusal{Status: pr.Status, Detail: pr.Detail, RetryAfter: pr.RetryAfter, Cause: pr.cause}
	if out.Status == 0 {
		out.Status = http.StatusInternalServerError
	}
	for _, f := range pr.Errors {
		out.Fields = append(out.Fields, FieldError(f))
	}
	return out
}
