package usage

import (
	"time"

	"github.com/tollgate/tollgate/storage"
)

// RollupTestOptions are the roll-up options of the tests.
func RollupTestOptions(counts BatchReader, store storage.Usage, now func() time.Time) RollupOptions {
	return RollupOptions{Counts: counts, Store: store, Now: now}
}
