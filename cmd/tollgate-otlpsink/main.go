// Command tollgate-otlpsink accepts OpenTelemetry trace exports over
// OTLP/HTTP and discards them: the collector of the load test's tracing-on
// runs (make bench-otel), so that the cost measured is Tollgate's own.
// SIGTERM or SIGINT stops it; it prints how many exports and bytes it took.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/internal/otlpsink"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4318", "address to listen on (OTLP/HTTP)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-otlpsink:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var rc otlpsink.Receiver
	srv := &http.Server{Handler: &rc, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("listening on http://%s%s\n", ln.Addr(), otlpsink.PathTraces)
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	n, b := rc.Requests()
	fmt.Printf("exports %d bytes %d\n", n, b)
	return nil
}
