package usage

import (
	"context"
	"time"

	"github.com/tollgate/tollgate/storage"
)

// QuotaThreshold says that the use of a quota crossed Percent (80 or 100)
// of its limit in the period starting at PeriodStart: a credential's quota
// when CredentialID is set, else the budget quota of AccountID.
type QuotaThreshold struct {
	AccountID    int64 // the credential's account, or the budget's
	CredentialID int64 // 0 for an account budget
	Percent      int   // 80 or 100
	Limit        int64
	Used         int64
	Period       storage.QuotaPeriod
	PeriodStart  time.Time // UTC
}

// QuotaEvents hears of quota thresholds crossed. The check endpoint calls it
// on its hot path: it must not block (queue and return).
type QuotaEvents interface {
	QuotaThreshold(ctx context.Context, e QuotaThreshold)
}
