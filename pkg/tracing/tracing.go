// Package tracing owns Tollgate's OpenTelemetry traces: the tracer provider
// the standard OTEL_* environment variables describe (off unless
// OTEL_TRACES_EXPORTER names an exporter), the server span of every public
// request named by its route template, the W3C trace context taken from the
// caller and handed on, and the spans the other packages start.
//
// Nothing here ever records a credential: span names are route templates
// and fixed operation names, and attributes come from small fixed sets or
// are numeric ids. While tracing is off the global tracer provider is
// OpenTelemetry's no-op one, and the middleware passes requests through
// untouched.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of Tollgate's own spans.
const ScopeName = "github.com/tollgate/tollgate"

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) names another.
const DefaultServiceName = "tollgate"

// The environment variables that turn tracing on and off.
const (
	EnvExporter    = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled = "OTEL_SDK_DISABLED"
)

// Options are what Setup takes besides the environment.
type Options struct {
	// ServiceVersion is service.version.
	ServiceVersion string
	// Logger receives the exporter's errors (an unreachable collector);
	// nil discards them.
	Logger *slog.Logger
}

// propagator is the one trace context format Tollgate reads and writes:
// W3C traceparent and tracestate.
var propagator = propagation.TraceContext{}

// noopSpan is the span Start returns while tracing is off.
var noopSpan = trace.SpanFromContext(context.Background())

// newSpanExporter builds the exporter the environment names; a variable so
// that a test can see whether Setup built one.
var newSpanExporter = autoexport.NewSpanExporter

// On reports whether env asks for traces: OTEL_TRACES_EXPORTER names an
// exporter other than "none" and OTEL_SDK_DISABLED is not "true". env is
// os.Getenv in production.
func On(env func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(env(EnvSDKDisabled)), "true") {
		return false
	}
	exp := strings.TrimSpace(env(EnvExporter))
	return exp != "" && exp != "none"
}

// Setup installs, when the environment asks for traces (On), the tracer
// provider OTEL_* describe as the global one — the exporter
// (OTEL_TRACES_EXPORTER: otlp or console; OTEL_EXPORTER_OTLP_PROTOCOL
// http/protobuf or grpc, OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_EXPORTER_OTLP_TRACES_*), the sampler (OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG; parent-based always-on by default), the batch
// span processor (OTEL_BSP_*) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES) — with W3C trace context as the propagator.
// It returns the function that flushes the spans still buffered and puts
// the no-op provider back; when tracing is off it installs nothing and that
// function does nothing.
func Setup(ctx context.Context, o Options) (shutdown func(context.Context) error, err error) {
	if !On(os.Getenv) {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := newSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	// Later detectors win: the environment's service name over the default.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName), semconv.ServiceVersion(o.ServiceVersion)),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx) // the resource error is the one to report
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// Our batcher, not the SDK's: see batcher.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(newBatcher(exp, os.Getenv)), sdktrace.WithResource(res))
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing: spans not sent", "err", err)
	}))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagator)
	return func(ctx context.Context) error {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("tracing: shut down: %w", err)
		}
		return nil
	}, nil
}

// Enabled reports whether Setup installed a tracer provider: the Redis and
// database instrumentations are only added when it did, so that tracing
// off costs nothing.
func Enabled() bool {
	_, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	return ok
}

// Start starts a span of Tollgate's own (the grant, the check decision, the
// password hash) as a child of the span in ctx. With tracing off it returns
// ctx and a span that records nothing, without allocating.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noopSpan
	}
	return otel.Tracer(ScopeName).Start(ctx, name, trace.WithAttributes(attrs...))
}

// WithoutLibrarySpans returns ctx whose span is a copy of its span's
// context that records nothing. A library that starts its spans from the
// span in the context (fosite takes the tracer provider of
// trace.SpanFromContext) then starts none, while Tollgate's own spans and
// the Redis and SQL spans, which take their tracers elsewhere, are still
// children of the request's span. With no recording span in ctx it returns
// ctx.
func WithoutLibrarySpans(ctx context.Context) context.Context {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return ctx
	}
	return trace.ContextWithSpanContext(ctx, span.SpanContext())
}

// Fail marks span as failed with a fixed description (never an error's
// text, which may quote a caller's input).
func Fail(span trace.Span, description string) {
	span.SetStatus(codes.Error, description)
}

// Inject writes the trace context of ctx's span (traceparent, tracestate)
// into h, for a caller that continues the trace: the check endpoint hands it
// back to the gateway. Nothing is written when no span records.
func Inject(ctx context.Context, h http.Header) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}
