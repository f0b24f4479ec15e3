package main

import (
	"context"
	"fmt"
	"log/slog"
)

// redisLog sends go-redis's internal messages (dial failures, pool events)
// to the structured logger instead of the standard logger.
type redisLog struct{ logger *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.logger.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
