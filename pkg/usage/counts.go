package usage

import (
	"context"
	"strconv"
	"time"
)

// Outcomes a counted call ends with.
const (
	OutcomeAllowed       = "allowed"
	OutcomeRateLimited   = "rate_limited"
	OutcomeQuotaExceeded = "quota_exceeded"
	OutcomeUnauthorized  = "unauthorized"
	OutcomeForbidden     = "forbidden"
)

// Outcomes lists every outcome, in the order charts stack them.
var Outcomes = []string{OutcomeAllowed, OutcomeRateLimited, OutcomeQuotaExceeded, OutcomeUnauthorized, OutcomeForbidden}

// Count is how many calls one credential made in one minute, in one rate
// class, that ended with one outcome.
type Count struct {
	Minute       time.Time // UTC, truncated to the minute
	CredentialID int64
	Class        string
	Outcome      string
	N            int64
}

// Counter counts calls per minute, under the root account of the
// credential's account tree (the unit the counts are stored and rolled up
// by). The check endpoint counts inside its one decision script instead;
// Counter is for the paths that take no limit decision there (token
// issuance, key sessions, refusals before a credential is known to be good).
type Counter interface {
	Add(ctx context.Context, root int64, c Count) error
}

// MinuteReader reads back the counts of one root account's minute.
type MinuteReader interface {
	ReadMinute(ctx context.Context, root int64, minute time.Time) ([]Count, error)
}

// Counts in Redis, shared by the check's decision script (which writes them)
// and the Redis Counter and MinuteReader:
//
//	key   tg:u:{a<root>}:<unix minute>   (a hash; the {a<root>} hash tag puts
//	                                     every key of a root account, the
//	                                     rate, quota and budget keys too, in
//	                                     one Redis Cluster slot)
//	field <credential id>:<class>:<outcome>
//	value the count
//
// Each key expires CountTTL after its minute's first count.
const (
	CountKeyPrefix = "tg:u:"
	CountTTL       = 48 * time.Hour
)

// HashTag is the Redis Cluster hash tag of a root account: every Redis key
// the decisions of its tree touch carries it.
func HashTag(root int64) string { return "{a" + strconv.FormatInt(root, 10) + "}" }

// CountKey is the Redis key of root's counts of minute.
func CountKey(root int64, minute time.Time) string {
	return CountKeyPrefix + HashTag(root) + ":" + strconv.FormatInt(minute.Unix()/60, 10)
}

// CountField is the hash field of one credential, class and outcome.
func CountField(credentialID int64, class, outcome string) string {
	return strconv.FormatInt(credentialID, 10) + ":" + class + ":" + outcome
}
