// Package otlpsink is an OpenTelemetry trace receiver speaking OTLP over
// HTTP (POST /v1/traces, protobuf bodies) and over gRPC (the collector's
// TraceService): the end-to-end tests keep what it receives to inspect the
// spans Tollgate exports, and the load test (cmd/tollgate-otlpsink) runs it
// to accept and discard them.
package otlpsink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// PathTraces is the path of the OTLP/HTTP trace export.
const PathTraces = "/v1/traces"

// maxBody caps an export's body (the SDK's batches are far smaller).
const maxBody = 32 << 20

// Receiver receives trace exports. The zero value discards them, counting
// requests and bytes; with Keep it decodes and keeps every export.
type Receiver struct {
	coltracepb.UnimplementedTraceServiceServer

	// Keep keeps every export, decoded (Exports) and as the bytes it came
	// in (Raw).
	Keep bool

	requests, bytes atomic.Int64

	mu      sync.Mutex
	raw     [][]byte
	exports []*coltracepb.ExportTraceServiceRequest
}

var (
	_ http.Handler                  = (*Receiver)(nil)
	_ coltracepb.TraceServiceServer = (*Receiver)(nil)
)

// ServeHTTP implements OTLP/HTTP with protobuf bodies: POST /v1/traces.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != PathTraces {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := rc.receive(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Export implements the OTLP/gRPC TraceService.
func (rc *Receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	body, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("otlpsink: re-encode: %w", err)
	}
	if err := rc.receive(body); err != nil {
		return nil, err
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// receive counts one export and keeps it when asked.
func (rc *Receiver) receive(body []byte) error {
	rc.requests.Add(1)
	rc.bytes.Add(int64(len(body)))
	if !rc.Keep {
		return nil
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("otlpsink: not an ExportTraceServiceRequest: %w", err)
	}
	if len(req.GetResourceSpans()) == 0 {
		return errors.New("otlpsink: an export without resource spans")
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.raw = append(rc.raw, body)
	rc.exports = append(rc.exports, &req)
	return nil
}

// Requests returns how many exports came in, and how many bytes they held.
func (rc *Receiver) Requests() (requests, bytes int64) { return rc.requests.Load(), rc.bytes.Load() }

// Raw returns the bytes of every export kept.
func (rc *Receiver) Raw() [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]byte(nil), rc.raw...)
}

// Exports returns every export kept.
func (rc *Receiver) Exports() []*coltracepb.ExportTraceServiceRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*coltracepb.ExportTraceServiceRequest(nil), rc.exports...)
}

// Span is a received span with the resource and scope it came under.
type Span struct {
	*tracepb.Span
	// Resource holds the resource's string attributes (service.name…).
	Resource map[string]string
	// Scope is the instrumentation scope's name.
	Scope string
}

// Spans returns every span of every export kept.
func (rc *Receiver) Spans() []Span {
	var out []Span
	for _, ex := range rc.Exports() {
		for _, rs := range ex.GetResourceSpans() {
			res := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					out = append(out, Span{Span: s, Resource: res, Scope: ss.GetScope().GetName()})
				}
			}
		}
	}
	return out
}
