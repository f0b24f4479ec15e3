// Package failing holds fuzz targets for the runner's own tests: one that
// the fuzzer breaks within a few hundred executions, one that never fails.
// It is a module of its own, so `go test ./...` of Tollgate never sees it.
package failing

import "testing"

// FuzzBreaks panics on any input of three bytes or more: mutating the empty
// seed gets there quickly.
func FuzzBreaks(f *testing.F) {
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) >= 3 {
			panic("deliberate finding")
		}
	})
}

// FuzzHolds never fails.
func FuzzHolds(f *testing.F) {
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_ = len(s)
	})
}
