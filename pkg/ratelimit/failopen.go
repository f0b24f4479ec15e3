package ratelimit

import (
	"context"
	"log/slog"
)

// FailOpen returns l that lets a request through when l fails (Redis is
// down, say) instead of reporting the error: the Result allows it, shows
// the whole burst remaining, and is marked FailedOpen; each failure is
// logged at level Warn with the request's context. Credentials are still
// checked by the callers: only the limit is waived. A nil logger logs
// nothing.
func FailOpen(l Limiter, logger *slog.Logger) Limiter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return failOpen{Limiter: l, logger: logger}
}

type failOpen struct {
	Limiter
	logger *slog.Logger
}

// Allow implements Limiter.
func (f failOpen) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	res, err := f.Limiter.Allow(ctx, key, limit)
	if err == nil {
		return res, nil
	}
	f.logger.WarnContext(ctx, "rate limiter unavailable; failing open", "err", err)
	return Result{Allowed: true, Limit: limit, Remaining: limit.Burst, FailedOpen: true}, nil
}
