package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/internal/app"
)

// newServeLogger answers the logger of `serve`: app.NewLogger's, with its lines
// batched every cfg.FlushInterval (see logWriter). The function it answers
// writes out what is left; call it last.
func newServeLogger(cfg config.Log, w io.Writer) (*slog.Logger, func()) {
	if cfg.FlushInterval <= 0 {
		return app.NewLogger(cfg, w), func() {}
	}
	lw := newLogWriter(w, cfg.FlushInterval)
	inner := app.NewLogger(cfg, lw).Handler()
	return slog.New(flushingHandler{Handler: inner, w: lw}), lw.Close
}

// logBufferSize is the most a logWriter holds before writing it out.
const logBufferSize = 64 << 10

// logWriter batches log lines: it writes them out every interval, when
// logBufferSize is reached, on Flush and on Close. Under load a line per
// request is a write(2) per request, which costs more than encoding it;
// batched, it is a few writes a second. Lines of level Warn and above are
// written at once (see flushingHandler), so only routine request lines wait,
// and for at most the interval. Safe for concurrent use.
type logWriter struct {
	mu  sync.Mutex
	buf *bufio.Writer

	stop chan struct{}
	done chan struct{}
}

// newLogWriter answers a logWriter writing to w every interval, and starts
// the goroutine that does it; Close stops it.
func newLogWriter(w io.Writer, interval time.Duration) *logWriter {
	l := &logWriter{buf: bufio.NewWriterSize(w, logBufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop(interval)
	return l
}

func (l *logWriter) loop(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.Flush()
		case <-l.stop:
			return
		}
	}
}

// Write buffers p, a whole log line: slog handlers write one line per call.
// A line larger than the buffer is written through.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Available() < len(p) {
		// Keep lines whole: write out what is buffered first.
		if err := l.buf.Flush(); err != nil {
			return 0, err
		}
	}
	return l.buf.Write(p)
}

// Flush writes out what is buffered.
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.buf.Flush() // nowhere to report a failing log output
}

// Close stops the periodic flushing and writes out what is left.
func (l *logWriter) Close() {
	close(l.stop)
	<-l.done
	l.Flush()
}

// flushingHandler writes a logWriter out after every record of level Warn or
// above, so that warnings and errors are never held back.
type flushingHandler struct {
	slog.Handler
	w *logWriter
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.w.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{Handler: h.Handler.WithGroup(name), w: h.w}
}
