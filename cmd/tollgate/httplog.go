package main

import (
	"log"
	"log/slog"
)

// newHTTPErrorLog sends net/http's own error lines (TLS handshakes, broken
// connections) to the structured logger.
func newHTTPErrorLog(logger *slog.Logger) *log.Logger {
	return slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
}
