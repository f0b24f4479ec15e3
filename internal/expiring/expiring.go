// Package expiring holds what the in-process tables whose entries expire
// share: how one makes room.
package expiring

import "time"

// samples is how many entries EvictOne looks at.
const samples = 8

// EvictOne deletes from m, of up to eight entries taken where map
// iteration starts (a random place), the one that expires first: close to
// LRU for a table whose entries all live the same time, without
// bookkeeping on the read path. expires reads an entry's expiry.
func EvictOne[K comparable, V any](m map[K]V, expires func(V) time.Time) {
	var (
		victim K
		oldest time.Time
		n      int
	)
	for k, v := range m {
		if e := expires(v); n == 0 || e.Before(oldest) {
			victim, oldest = k, e
		}
		if n++; n == samples {
			break
		}
	}
	if n > 0 {
		delete(m, victim)
	}
}
