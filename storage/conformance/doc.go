// Package conformance holds one test suite per storage contract. Every
// backend runs them from a test file of a few lines:
//
//	func TestClients(t *testing.T) {
//		conformance.RunClients(t, func(t *testing.T) conformance.ClientsStore {
//			return openStore(t)
//		})
//	}
//
// The suites call newStore once per subtest. It may return a fresh store or
// the same one every time: the suites only read rows they created and give
// every username a random suffix, so they pass on a shared, non-empty store.
//
// The suites pin down what storage.go leaves to the backends:
//
//   - Create assigns the ID, and sets CreatedAt and UpdatedAt when zero.
//   - Times come back in UTC, equal to what was stored to the microsecond.
//   - Optional references (ParentID, OwnerID, CreatedBy) and optional times
//     (ExpiresAt, LastUsedAt) round-trip their zero value.
//   - Lists come back in the order stored; an empty or nil list comes back
//     with length 0.
//   - A reference to a row that does not exist fails the create.
//   - UpdatedAt moves forward on every UpdateClient.
package conformance

import (
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// unknownID is an id no test creates.
const unknownID int64 = 1<<62 + 12345

// micro is how a time comes back from storage.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// uniqueName returns prefix with a random suffix, so that suites can share a
// store.
func uniqueName(prefix string) string {
	return prefix + "-" + strings.ToLower(rand.Text()[:12])
}

// diff compares two storage records field by field and describes every
// difference. Times compare with Equal and must come back in UTC; a nil and
// an empty slice are equal.
func diff[T any](got, want T) []string {
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	var out []string
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		switch g := g.(type) {
		case time.Time:
			w := w.(time.Time)
			if !g.Equal(w) {
				out = append(out, fmt.Sprintf("%s: got %v, want %v", name, g, w))
			} else if g.Location() != time.UTC {
				out = append(out, fmt.Sprintf("%s: got location %v, want UTC", name, g.Location()))
			}
		case []string:
			w := w.([]string)
			if len(g) != len(w) || (len(g) > 0 && !reflect.DeepEqual(g, w)) {
				out = append(out, fmt.Sprintf("%s: got %q, want %q", name, g, w))
			}
		default:
			if !reflect.DeepEqual(g, w) {
				out = append(out, fmt.Sprintf("%s: got %#v, want %#v", name, g, w))
			}
		}
	}
	return out
}

// checkDiff reports the differences between got and want, if any.
func checkDiff[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if d := diff(got, want); len(d) > 0 {
		t.Errorf("%s differs:\n\t%s", what, strings.Join(d, "\n\t"))
	}
}

// checkStamp checks a time the store set between before and after.
func checkStamp(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Before(micro(before)) || got.After(after) {
		t.Errorf("%s = %v, want between %v and %v", what, got, micro(before), after)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
	if !got.Equal(got.Truncate(time.Microsecond)) {
		t.Errorf("%s = %v, want microsecond precision", what, got)
	}
}
