package reqctx

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys the LogHandler adds.
const (
	KeyRequestID = "request_id"
	KeyClientID  = "client_id"
	KeyTraceID   = "trace_id"
	KeySpanID    = "span_id"
)

// LogHandler wraps a slog.Handler: a record logged with a request's context
// (logger.InfoContext(ctx, …) and the like) gets the request's id and, once
// the request has named its client, the client's id, after its own
// attributes (so a line reads as before, with the two added at its end),
// unless the line carries them already (the access log line writes its
// own). Records logged without a request's context pass as
// they are. When the context carries a sampled span of this process
// (tracing is on and the request sampled), the line also gets the trace's id and the span's, so a log line
// leads to its trace. Inside a group (WithGroup), the attributes land in the group,
// as every attribute added there does.
type LogHandler struct {
	inner slog.Handler
	// hasID and hasClient note that WithAttrs added the attribute already.
	hasID, hasClient bool
	grouped          bool
}

var _ slog.Handler = (*LogHandler)(nil)

// NewLogHandler returns h wrapped.
func NewLogHandler(h slog.Handler) *LogHandler { return &LogHandler{inner: h} }

// Enabled implements slog.Handler.
func (h *LogHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle implements slog.Handler.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	// A sampled span of this process: a recording one, or its context
	// carried past a library's spans (tracing.WithoutLibrarySpans).
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() && !sc.IsRemote() {
		// Adding to a record shares its attributes' storage with the
		// caller's copy: a clone first, as for the request id below.
		r = r.Clone()
		r.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
	}
	rq := from(ctx)
	if rq == nil {
		return h.inner.Handle(ctx, r)
	}
	clientID := PrincipalOf(ctx).ClientID
	wantID, wantClient := !h.hasID, !h.hasClient && clientID != 0
	if wantID || wantClient {
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case KeyRequestID:
				wantID = false
			case KeyClientID:
				wantClient = false
			}
			return wantID || wantClient
		})
	}
	if !wantID && !wantClient {
		return h.inner.Handle(ctx, r)
	}
	r = r.Clone()
	if wantID {
		r.AddAttrs(slog.String(KeyRequestID, rq.id))
	}
	if wantClient {
		r.AddAttrs(slog.Int64(KeyClientID, clientID))
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	if !h.grouped {
		for _, a := range attrs {
			switch a.Key {
			case KeyRequestID:
				c.hasID = true
			case KeyClientID:
				c.hasClient = true
			}
		}
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.grouped = true
	return &c
}
