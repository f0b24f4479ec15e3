// Package secretscan serves GitHub's secret-scanning partner endpoint,
// POST /hooks/github/secret-scanning: GitHub finds strings shaped like
// Tollgate API keys in public repositories, gists and packages, and posts
// them in a batch signed with one of its published ECDSA P-256 keys. The
// signature over the raw body is verified before anything of the body is
// read beyond its size; each string is then handed to the management
// service (manage.Service.ReportLeaked), which tells a working key
// (true_positive: disabled or only reported, per its account's
// leaked_key_action) from a lookalike (false_positive). The answer is
// GitHub's feedback format: one {token_hash, token_type, label} per entry.
// A reported string is never logged.
package secretscan

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/tollgate/tollgate/pkg/apikey"
	"github.com/tollgate/tollgate/pkg/manage"
	"github.com/tollgate/tollgate/pkg/reqctx"
	"github.com/tollgate/tollgate/pkg/retryafter"
	"github.com/tollgate/tollgate/pkg/strictjson"
)

// Path is where GitHub posts its reports.
const Path = "/hooks/github/secret-scanning"

// Bounds of a report.
const (
	// MaxBodyBytes bounds a report's body: 1 MiB.
	MaxBodyBytes = 1 << 20
	// MaxEntries bounds the entries of one report.
	MaxEntries = 1000
	// maxSignatureLength bounds the base64 signature header (an ASN.1
	// P-256 signature is at most 72 bytes, 96 characters).
	maxSignatureLength = 256
	// maxTokenLength bounds one reported string: longer ones are answered
	// false_positive without a look.
	maxTokenLength = 1024
)

// Headers of a report.
const (
	HeaderKeyID     = "Github-Public-Key-Identifier"
	HeaderSignature = "Github-Public-Key-Signature"
)

// partner names the reporter in the audit trail.
const partner = "GitHub secret scanning"

// Reporter acts on one reported string (*manage.Service).
type Reporter interface {
	ReportLeaked(ctx context.Context, r manage.LeakReport) (manage.LeakLabel, error)
}

// KeySource returns the public key of an identifier (*Keys).
type KeySource interface {
	Key(ctx context.Context, id string) (*ecdsa.PublicKey, error)
}

// Options configure a Handler.
type Options struct {
	Keys     KeySource
	Reporter Reporter
	Logger   *slog.Logger
}

// Handler serves the partner endpoint.
type Handler struct{ opts Options }

// New returns the handler.
func New(opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{opts: opts}
}

// entry is one reported match.
type entry struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// verdict is the answer about one entry.
type verdict struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// ServeHTTP verifies and acts on one report.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, http.StatusMethodNotAllowed, "The HTTP method must be POST.")
		return
	}
	if !isJSON(r.Header.Values("Content-Type")) {
		writeProblem(w, http.StatusUnsupportedMediaType, "The report must be application/json.")
		return
	}
	keyID, sig, msg := signatureHeaders(r.Header)
	if msg != "" {
		writeProblem(w, http.StatusBadRequest, msg)
		return
	}
	if r.ContentLength > MaxBodyBytes {
		writeProblem(w, http.StatusRequestEntityTooLarge, "The report exceeds 1 MiB.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeProblem(w, http.StatusRequestEntityTooLarge, "The report exceeds 1 MiB.")
		return
	case err != nil:
		writeProblem(w, http.StatusBadRequest, "The report could not be read.")
		return
	}
	ctx := r.Context()
	// Nothing of the body is parsed before its signature verifies.
	key, err := h.opts.Keys.Key(ctx, keyID)
	switch {
	case errors.Is(err, ErrUnknownKey):
		h.opts.Logger.WarnContext(ctx, "secret-scanning report refused: unknown key identifier")
		writeProblem(w, http.StatusUnauthorized, "The key identifier names no current GitHub secret-scanning key.")
		return
	case err != nil:
		h.opts.Logger.WarnContext(ctx, "secret-scanning report: GitHub's keys unavailable; asking for a retry", "err", err)
		writeProblem(w, http.StatusServiceUnavailable, "GitHub's signing keys could not be fetched; retry later.")
		return
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(key, digest[:], sig) {
		h.opts.Logger.WarnContext(ctx, "secret-scanning report refused: bad signature")
		writeProblem(w, http.StatusUnauthorized, "The signature does not verify.")
		return
	}
	entries, msg := parseReport(body)
	if msg != "" {
		writeProblem(w, http.StatusBadRequest, msg)
		return
	}
	out := make([]verdict, 0, len(entries))
	positives := 0
	for _, e := range entries {
		label := manage.FalsePositive
		if apikey.Looks(e.Token) && len(e.Token) <= maxTokenLength {
			label, err = h.opts.Reporter.ReportLeaked(ctx, manage.LeakReport{Key: e.Token, Source: e.URL,
				Partner: partner, Remote: reqctx.Addr(ctx)})
			if err != nil {
				// The whole batch again: acting on a report is idempotent.
				h.opts.Logger.WarnContext(ctx, "secret-scanning report: cannot act on it; asking for a retry", "err", err)
				writeProblem(w, http.StatusServiceUnavailable, "The report could not be processed; retry later.")
				return
			}
		}
		if label == manage.TruePositive {
			positives++
		}
		sum := sha256.Sum256([]byte(e.Token))
		out = append(out, verdict{TokenHash: hex.EncodeToString(sum[:]), TokenType: e.Type, Label: string(label)})
	}
	h.opts.Logger.InfoContext(ctx, "secret-scanning report", "entries", len(entries), "true_positives", positives)
	b, err := json.Marshal(out)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// signatureHeaders reads the key identifier and the signature, or says
// what is wrong with them.
func signatureHeaders(h http.Header) (string, []byte, string) {
	ids, sigs := h.Values(HeaderKeyID), h.Values(HeaderSignature)
	if len(ids) != 1 || len(sigs) != 1 {
		return "", nil, "The report needs exactly one " + HeaderKeyID + " and one " + HeaderSignature + " header."
	}
	id := strings.TrimSpace(ids[0])
	if id == "" || len(id) > maxKeyIDLength || !printable(id) {
		return "", nil, "The " + HeaderKeyID + " header is malformed."
	}
	raw := strings.TrimSpace(sigs[0])
	sig, err := base64.StdEncoding.DecodeString(raw)
	if raw == "" || len(raw) > maxSignatureLength || err != nil {
		return "", nil, "The " + HeaderSignature + " header is not base64."
	}
	return id, sig, ""
}

// isJSON reports whether the one Content-Type is application/json, in
// UTF-8 if it names a charset.
func isJSON(values []string) bool {
	if len(values) != 1 {
		return false
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseReport reads a verified body: a JSON array of 1 to MaxEntries
// objects whose token and type are strings. Members GitHub may add later
// are ignored (the body is signed by GitHub); repeated members, trailing
// data and invalid UTF-8 are not.
func parseReport(body []byte) ([]entry, string) {
	if !utf8.Valid(body) {
		return nil, "The report is not valid UTF-8."
	}
	if err := strictjson.CheckDuplicates(body); err != nil {
		var dup *strictjson.DuplicateError
		if errors.As(err, &dup) {
			return nil, "The report repeats the member " + dup.Path + "."
		}
		return nil, "The report is not well-formed JSON."
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var entries []entry
	if err := dec.Decode(&entries); err != nil {
		return nil, "The report must be a JSON array of {token, type, url, source} objects."
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, "The report has data after its JSON array."
	}
	switch {
	case entries == nil:
		return nil, "The report must be a JSON array of {token, type, url, source} objects."
	case len(entries) == 0:
		return nil, "The report is empty."
	case len(entries) > MaxEntries:
		return nil, "The report holds more than 1000 entries."
	}
	for _, e := range entries {
		if e.Token == "" {
			return nil, "Every entry needs a token."
		}
	}
	return entries, ""
}

// writeProblem answers an RFC 9457 problem.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		retryafter.Set(h, retryafter.Outage)
	}
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail,omitempty"`
	}{"about:blank", http.StatusText(status), status, detail})
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
