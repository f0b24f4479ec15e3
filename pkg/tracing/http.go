package tracing

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of Tollgate's own on the server span; values come from
// fixed sets (endpoint, outcome, grant type) or are ids Tollgate made.
const (
	KeyEndpoint  = attribute.Key("tollgate.endpoint")
	KeyOutcome   = attribute.Key("tollgate.outcome")
	KeyGrantType = attribute.Key("tollgate.grant_type")
	KeyClientID  = attribute.Key("tollgate.client_id")
	KeyRequestID = attribute.Key("tollgate.request_id")
)

// Middleware returns next with every request served inside a server span
// whose parent is the caller's W3C traceparent, when it sends one. The span
// is named by the method alone until a router names the route it matched
// (NameRoute): never by the raw path, which may carry an id. With tracing
// off the request passes as it is.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !Enabled() {
			next.ServeHTTP(w, r)
			return
		}
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		method := spanMethod(r.Method)
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		ctx, span := otel.Tracer(ScopeName).Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.URLScheme(scheme)))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// NameRoute is a gorilla/mux middleware (Router.Use) that names the
// request's server span by the template of the route it matched, "POST
// /oauth/token" or "GET /api/v1/clients/{id}", and sets http.route. A router
// mounted under another's route names it again, more precisely.
func NameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			if route := mux.CurrentRoute(r); route != nil {
				if tpl, err := route.GetPathTemplate(); err == nil {
					tpl = bareTemplate(tpl)
					span.SetName(spanMethod(r.Method) + " " + tpl)
					span.SetAttributes(semconv.HTTPRoute(tpl))
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Answer records on the request's server span how it was answered: status,
// endpoint and outcome (fixed sets), the grant type (an enabled one, or
// ""), the client's id (0: none) and the request id. A 5xx marks the span
// failed. It does nothing when no span records.
func Answer(span trace.Span, status int, endpoint, outcome, grantType string, clientID int64, requestID string) {
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs,
		semconv.HTTPResponseStatusCode(status),
		KeyEndpoint.String(endpoint),
		KeyOutcome.String(outcome),
		KeyRequestID.String(requestID),
	)
	if grantType != "" {
		attrs = append(attrs, KeyGrantType.String(grantType))
	}
	if clientID != 0 {
		attrs = append(attrs, KeyClientID.Int64(clientID))
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		span.SetStatus(codes.Error, outcome)
	}
}

// bareTemplate drops the patterns of a mux template's variables:
// "/users/{id:[0-9]+}" is "/users/{id}".
func bareTemplate(tpl string) string {
	if !strings.Contains(tpl, ":") {
		return tpl
	}
	var b strings.Builder
	depth := 0 // inside a variable's braces, including those of its pattern
	skip := false
	for _, c := range tpl {
		switch {
		case c == '{':
			depth++
			if depth == 1 {
				b.WriteRune(c)
				continue
			}
		case c == '}':
			depth--
			if depth == 0 {
				skip = false
				b.WriteRune(c)
				continue
			}
		case c == ':' && depth == 1:
			skip = true
		}
		if !skip {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// spanMethod is the method as a span names it: one of the standard
// methods, or "_OTHER" (OpenTelemetry's HTTP conventions), so a caller
// cannot put arbitrary text in a span name.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
