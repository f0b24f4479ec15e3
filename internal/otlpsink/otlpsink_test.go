package otlpsink

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func export(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "tollgate"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "scope"},
			Spans: []*tracepb.Span{{Name: "POST /oauth/token", TraceId: make([]byte, 16), SpanId: make([]byte, 8)}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func post(rc *Receiver, path, contentType string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	rc.ServeHTTP(w, r)
	return w
}

func TestReceiverKeeps(t *testing.T) {
	rc := &Receiver{Keep: true}
	body := export(t)
	w := post(rc, PathTraces, "application/x-protobuf", body)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
	}
	if err := proto.Unmarshal(w.Body.Bytes(), &coltracepb.ExportTraceServiceResponse{}); err != nil {
		t.Errorf("answer is not an ExportTraceServiceResponse: %v", err)
	}
	spans := rc.Spans()
	if len(spans) != 1 || spans[0].Name != "POST /oauth/token" || spans[0].Resource["service.name"] != "tollgate" || spans[0].Scope != "scope" {
		t.Errorf("spans %v", spans)
	}
	if raw := rc.Raw(); len(raw) != 1 || !bytes.Equal(raw[0], body) {
		t.Error("the raw export is not kept as received")
	}
	if _, err := rc.Export(t.Context(), &coltracepb.ExportTraceServiceRequest{}); err == nil {
		t.Error("an export without resource spans was accepted over gRPC")
	}
}

func TestReceiverRefuses(t *testing.T) {
	rc := &Receiver{Keep: true}
	for _, tt := range []struct {
		name, path, contentType string
		body                    []byte
		want                    int
	}{
		{"another path", "/v1/metrics", "application/x-protobuf", export(t), http.StatusNotFound},
		{"JSON", PathTraces, "application/json", []byte("{}"), http.StatusUnsupportedMediaType},
		{"not protobuf", PathTraces, "application/x-protobuf", []byte{0xff, 0xff, 0xff}, http.StatusBadRequest},
		{"no spans", PathTraces, "application/x-protobuf", nil, http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if w := post(rc, tt.path, tt.contentType, tt.body); w.Code != tt.want {
				t.Errorf("status %d, want %d", w.Code, tt.want)
			}
		})
	}
	if len(rc.Exports()) != 0 {
		t.Error("a refused export was kept")
	}
}

func TestReceiverDiscards(t *testing.T) {
	var rc Receiver
	body := export(t)
	for range 3 {
		if w := post(&rc, PathTraces, "application/x-protobuf", body); w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n, b := rc.Requests(); n != 3 || b != int64(3*len(body)) {
		t.Errorf("requests %d bytes %d, want 3 and %d", n, b, 3*len(body))
	}
	if len(rc.Exports()) != 0 {
		t.Error("exports kept without Keep")
	}
}
