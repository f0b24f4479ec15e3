package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/config"
	"github.com/tollgate/tollgate/e2e"
)

func TestServeLoggerBatchesRoutineLines(t *testing.T) {
	var out e2e.LockedBuffer
	// An interval long enough that only Flush, a warning or Close writes.
	logger, closeLog := newServeLogger(config.Log{Level: "info", Format: "json", FlushInterval: time.Hour}, &out)
	logger.Info("request", "n", 1)
	if got := out.String(); got != "" {
		t.Fatalf("a routine line was written at once: %q", got)
	}
	logger.With("component", "x").Warn("trouble")
	got := out.String()
	if !strings.Contains(got, `"n":1`) || !strings.Contains(got, `"msg":"trouble","component":"x"`) {
		t.Fatalf("a warning did not write out the lines before it and itself: %q", got)
	}
	// Lines written at once from many goroutines stay whole.
	var wg sync.WaitGroup
	long := strings.Repeat("x", logBufferSize) // larger than the buffer
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				logger.Info("request", "worker", i)
			}
		})
	}
	logger.Info("long", "v", long)
	wg.Wait()
	closeLog()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2+8*200+1 {
		t.Fatalf("got %d lines after Close, want %d", len(lines), 2+8*200+1)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") || !strings.HasSuffix(l, "}") {
			t.Fatalf("a line was torn: %.80q…", l)
		}
	}
}

func TestServeLoggerFlushesEveryInterval(t *testing.T) {
	var out e2e.LockedBuffer
	logger, closeLog := newServeLogger(config.Log{Level: "info", Format: "json", FlushInterval: time.Millisecond}, &out)
	defer closeLog()
	logger.Info("request")
	deadline := time.Now().Add(10 * time.Second)
	for out.String() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the line was not written out by the interval")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServeLoggerUnbuffered(t *testing.T) {
	var out e2e.LockedBuffer
	logger, closeLog := newServeLogger(config.Log{Level: "info", Format: "text"}, &out)
	defer closeLog()
	logger.Info("request")
	if !strings.Contains(out.String(), "msg=request") {
		t.Fatalf("with no interval the line was not written at once: %q", out.String())
	}
}
