package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/retryafter"
	"github.com/tollgate/tollgate/pkg/strictjson"
)

// problem is an RFC 9457 problem detail.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []fieldError `json:"errors,omitempty"`
	// RetryAfter, when positive, is answered in Retry-After (whole
	// seconds).
	RetryAfter time.Duration `json:"-"`
	// cause is logged by the caller's wrapper, never shown.
	cause error
}

// fieldError names one invalid field of a request body.
type fieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (p problem) Error() string { return fmt.Sprintf("%d %s", p.Status, p.Detail) }

// causeKey holds a *error where writeProblem leaves a 5xx's cause.
type causeKey struct{}

func writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	if p.cause != nil {
		if c, ok := r.Context().Value(causeKey{}).(*error); ok {
			*c = p.cause
		}
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Status >= 500 && r.Context().Err() != nil {
		w.WriteHeader(499) // the caller went away
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="tollgate"`)
	}
	if p.Status == http.StatusServiceUnavailable {
		retryafter.Set(h, retryafter.Outage)
	}
	if p.RetryAfter > 0 {
		retryafter.Set(h, p.RetryAfter)
	}
	b, _ := json.Marshal(p)
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func badRequest(detail string, errs ...fieldError) problem {
	return problem{Status: http.StatusBadRequest, Detail: detail, Errors: errs}
}

// problemOf maps an error of the management service to its answer: the
// code gives the status, the service's sentence the detail.
func problemOf(err error) problem {
	e := manage.ErrorOf(err)
	pr := problem{Detail: e.Detail, RetryAfter: e.RetryAfter, cause: e.Err}
	switch e.Code {
	case manage.Invalid:
		pr.Status, pr.Title = http.StatusUnprocessableEntity, "Invalid fields"
	case manage.NotFound:
		pr.Status = http.StatusNotFound
	case manage.Conflict:
		pr.Status = http.StatusConflict
	case manage.Forbidden:
		pr.Status = http.StatusForbidden
	case manage.PreconditionFailed:
		pr.Status = http.StatusPreconditionFailed
	case manage.Blocked:
		pr.Status = http.StatusTooManyRequests
	case manage.Unavailable:
		pr.Status = http.StatusServiceUnavailable
	default:
		pr.Status = http.StatusInternalServerError
	}
	for _, f := range e.Fields {
		pr.Errors = append(pr.Errors, fieldError(f))
	}
	return pr
}

func unavailable(cause error) problem {
	return problem{Status: http.StatusServiceUnavailable, Detail: "A backend is temporarily unavailable; try again.", cause: cause}
}

// decode reads a JSON object body into v: the content type must be JSON,
// the body at most max bytes, one object, no unknown fields, no trailing
// data, valid UTF-8.
func decode(r *http.Request, max int64, v any) *problem {
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/json" {
		p := problem{Status: http.StatusUnsupportedMediaType, Detail: "The body must be application/json."}
		return &p
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		p := badRequest("The body could not be read.")
		return &p
	}
	if int64(len(body)) > max {
		p := problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("The body exceeds %d bytes.", max)}
		return &p
	}
	if !utf8.Valid(body) {
		p := badRequest("The body is not valid UTF-8.")
		return &p
	}
	if trimmed := strings.TrimSpace(string(body)); !strings.HasPrefix(trimmed, "{") {
		p := badRequest("The body must be a JSON object.")
		return &p
	}
	// encoding/json keeps the last of two equal members; refuse them, as
	// the token endpoint does, with the same rule.
	var dup *strictjson.DuplicateError
	if err := strictjson.CheckDuplicatesFold(body); errors.As(err, &dup) {
		p := badRequest("The body names a member twice.", fieldError{Field: dup.Path, Detail: "is given more than once"})
		return &p
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		p := badRequest("The body is not a valid JSON object for this resource.", jsonFieldError(err)...)
		return &p
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		p := badRequest("The body has data after the JSON object.")
		return &p
	}
	return nil
}

// jsonFieldError names the field a decoding error is about, when it can.
func jsonFieldError(err error) []fieldError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return []fieldError{{Field: typeErr.Field, Detail: "must be of type " + typeErr.Type.String()}}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		name, _ := strconv.Unquote(strings.TrimPrefix(msg, "json: unknown field "))
		return []fieldError{{Field: name, Detail: "is not a field of this resource"}}
	}
	return nil
}

// page reads ?after= and ?limit= (1–100, default 20).
//
// params are the other query parameters the list takes: any parameter
// neither they nor after and limit name is refused, so a misspelt filter
// is an error instead of a list that silently ignores it.
func page(r *http.Request, params ...string) (after int64, limit int, p *problem) {
	q := r.URL.Query()
	limit = 20
	var errs []fieldError
	known := append([]string{"after", "limit"}, params...)
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(known, name) {
			errs = append(errs, fieldError{Field: name, Detail: "is not a parameter of this list (it takes " + strings.Join(known, ", ") + ")"})
		}
	}
	if errs != nil {
		pr := badRequest("Unknown query parameter.", errs...)
		return 0, 0, &pr
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100 {
			errs = append(errs, fieldError{Field: "limit", Detail: "must be an integer from 1 to 100"})
		} else {
			limit = n
		}
	}
	if raw := q.Get("after"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fieldError{Field: "after", Detail: "must be a non-negative integer (an id from the previous page)"})
		} else {
			after = n
		}
	}
	if errs != nil {
		pr := badRequest("Invalid pagination.", errs...)
		return 0, 0, &pr
	}
	return after, limit, nil
}

// list is a page of results.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  *int64 `json:"next,omitempty"` // pass as ?after= for the next page
}

func newList[T any](items []T, limit int, id func(T) int64) list[T] {
	l := list[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if len(items) == limit && limit > 0 {
		n := id(items[len(items)-1])
		l.Next = &n
	}
	return l
}

// etag is a record's entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads If-Match: 0 when absent (no precondition).
func ifMatch(r *http.Request) (int64, *problem) {
	raw := r.Header.Get("If-Match")
	if raw == "" || raw == "*" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(raw, "W/"), `"`), 10, 64)
	if err != nil || v <= 0 {
		p := badRequest("If-Match must be an ETag this API returned.")
		return 0, &p
	}
	return v, nil
}
