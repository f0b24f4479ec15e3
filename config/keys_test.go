package config_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/config"
)

var (
	secretA = strings.Repeat("a", 32)
	secretB = strings.Repeat("b", 40)
	secretC = strings.Repeat("c", 33)
	secretD = strings.Repeat("d", 64)
)

func TestLoadKeys(t *testing.T) {
	t.Parallel()
	file := func(name, content string) string { return writeFile(t, name, content) }
	tests := []struct {
		name string
		env  map[string]string
		want config.Keys
	}{
		{
			name: "none configured",
			want: config.Keys{PepperID: "1"},
		},
		{
			name: "values from env",
			env:  map[string]string{"TOLLGATE_TOKEN_SECRET": secretA, "TOLLGATE_PEPPER": secretB, "TOLLGATE_PEPPER_ID": "7"},
			want: config.Keys{TokenSecret: []byte(secretA), PepperID: "7", Pepper: []byte(secretB)},
		},
		{
			name: "files, trailing newline trimmed",
			env: map[string]string{
				"TOLLGATE_TOKEN_SECRET_FILE": file("token", secretA+"\n"),
				"TOLLGATE_PEPPER_FILE":       file("pepper", secretB+"\r\n"),
			},
			want: config.Keys{TokenSecret: []byte(secretA), PepperID: "1", Pepper: []byte(secretB)},
		},
		{
			name: "inner whitespace kept",
			env:  map[string]string{"TOLLGATE_TOKEN_SECRET_FILE": file("token", " "+secretA+" \n")},
			want: config.Keys{TokenSecret: []byte(" " + secretA + " "), PepperID: "1"},
		},
		{
			name: "rotation",
			env: map[string]string{
				"TOLLGATE_TOKEN_SECRET":               secretA,
				"TOLLGATE_ROTATED_TOKEN_SECRET_FILES": file("t1", secretB) + "," + file("t0", secretC+"\n"),
				"TOLLGATE_PEPPER_ID":                  "3",
				"TOLLGATE_PEPPER_FILE":                file("p3", secretD),
				"TOLLGATE_RETIRED_PEPPER_FILES":       "2=" + file("p2", secretC) + ",1=" + file("p1", secretB),
			},
			want: config.Keys{
				TokenSecret:         []byte(secretA),
				RotatedTokenSecrets: [][]byte{[]byte(secretB), []byte(secretC)},
				PepperID:            "3",
				Pepper:              []byte(secretD),
				RetiredPeppers:      map[string][]byte{"1": []byte(secretB), "2": []byte(secretC)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Load("", envMap(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got, err := c.LoadKeys()
			if err != nil {
				t.Fatalf("LoadKeys: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				// Test values are not secrets; show them.
				t.Errorf("LoadKeys() =\n%#v\nwant\n%#v", dump(got), dump(tt.want))
			}
		})
	}
}

// dump renders Keys with its bytes, which Keys' own formatting hides.
func dump(k config.Keys) map[string]any {
	rotated := make([]string, len(k.RotatedTokenSecrets))
	for i, b := range k.RotatedTokenSecrets {
		rotated[i] = string(b)
	}
	retired := make(map[string]string)
	for id, b := range k.RetiredPeppers {
		retired[id] = string(b)
	}
	return map[string]any{
		"TokenSecret": string(k.TokenSecret), "Rotated": rotated, "PepperID": k.PepperID,
		"Pepper": string(k.Pepper), "Retired": retired,
	}
}

func TestLoadKeysErrors(t *testing.T) {
	t.Parallel()
	const shortValue = "short-secret-value"
	shortFile := writeFile(t, "short", shortValue+"\n")
	goodFile := writeFile(t, "good", secretA)
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name    string
		sources config.KeySources
		wants   []string
		notFS   bool // the error must not wrap fs.ErrNotExist
	}{
		{"short env token secret", config.KeySources{PepperID: "1", TokenSecret: shortValue}, []string{"token secret", "TOLLGATE_TOKEN_SECRET", "too short"}, true},
		{"short env pepper", config.KeySources{PepperID: "1", Pepper: shortValue}, []string{"pepper", "TOLLGATE_PEPPER", "too short"}, true},
		{"short token secret file", config.KeySources{PepperID: "1", TokenSecretFile: shortFile}, []string{"token secret", shortFile, "too short"}, true},
		{"short pepper file", config.KeySources{PepperID: "1", PepperFile: shortFile}, []string{"pepper", "too short"}, true},
		{"short rotated file", config.KeySources{PepperID: "1", TokenSecret: config.Secret(secretA), RotatedTokenSecretFiles: []string{shortFile}}, []string{"rotated token secret", "too short"}, true},
		{"short retired pepper", config.KeySources{PepperID: "2", Pepper: config.Secret(secretA), RetiredPepperFiles: map[string]string{"1": shortFile}}, []string{`retired pepper "1"`, "too short"}, true},
		{"empty file", config.KeySources{PepperID: "1", TokenSecretFile: writeFile(t, "empty", "\n")}, []string{"too short"}, true},
		{"missing file", config.KeySources{PepperID: "1", TokenSecretFile: missing}, []string{"token secret", missing}, false},
		{"value and file", config.KeySources{PepperID: "1", TokenSecret: config.Secret(secretA), TokenSecretFile: goodFile}, []string{"TOLLGATE_TOKEN_SECRET", "only one"}, true},
		{"rotated without current", config.KeySources{PepperID: "1", RotatedTokenSecretFiles: []string{goodFile}}, []string{"without a current token secret"}, true},
		{"retired without current", config.KeySources{PepperID: "2", RetiredPepperFiles: map[string]string{"1": goodFile}}, []string{"without a current pepper"}, true},
		{"retired id is current", config.KeySources{PepperID: "1", Pepper: config.Secret(secretA), RetiredPepperFiles: map[string]string{"1": goodFile}}, []string{"current pepper id"}, true},
		{"every problem reported", config.KeySources{PepperID: "1", TokenSecret: shortValue, PepperFile: shortFile}, []string{"TOLLGATE_TOKEN_SECRET", "pepper in file"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.Keys = tt.sources
			got, err := c.LoadKeys()
			if err == nil {
				t.Fatalf("LoadKeys() = %v, nil; want an error", got)
			}
			if !reflect.DeepEqual(got, config.Keys{}) {
				t.Errorf("LoadKeys() returned keys %v with an error, want zero Keys", got)
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("LoadKeys() error = %q, want it to contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), shortValue) || strings.Contains(err.Error(), secretA) {
				t.Errorf("LoadKeys() error = %q reveals a secret", err)
			}
			if got := errors.Is(err, fs.ErrNotExist); got == tt.notFS {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, !tt.notFS)
			}
		})
	}
}

func TestKeysString(t *testing.T) {
	t.Parallel()
	k := config.Keys{
		TokenSecret:    []byte(secretA),
		PepperID:       "2",
		Pepper:         []byte(secretB),
		RetiredPeppers: map[string][]byte{"1": []byte(secretC), "0": []byte(secretD)},
	}
	got := k.String()
	want := `config.Keys{TokenSecret:[redacted] RotatedTokenSecrets:0 PepperID:"2" Pepper:[redacted] RetiredPeppers:[0 1] KeyEncryptionKey:unset}`
	if got != want {
		t.Errorf("Keys.String() = %s, want %s", got, want)
	}
	if empty := (config.Keys{}).String(); !strings.Contains(empty, "TokenSecret:unset") {
		t.Errorf("zero Keys.String() = %s, want TokenSecret:unset", empty)
	}
}

func TestParseKeyEncryptionKey(t *testing.T) {
	t.Parallel()
	raw := make([]byte, config.KeyEncryptionKeyBytes)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"hex", hex.EncodeToString(raw), true},
		{"hex upper case with newline", strings.ToUpper(hex.EncodeToString(raw)) + "\n", true},
		{"base64", base64.StdEncoding.EncodeToString(raw), true},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(raw), true},
		{"hex of 31 bytes", hex.EncodeToString(raw[:31]), false},
		{"base64 of 33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), false},
		{"a 32-character password", strings.Repeat("p", 32), false},
		{"empty", "", false},
	} {
		got, err := config.ParseKeyEncryptionKey([]byte(tc.text))
		switch {
		case tc.ok && (err != nil || !bytes.Equal(got, raw)):
			t.Errorf("%s: got %x, %v, want the key", tc.name, got, err)
		case !tc.ok && err == nil:
			t.Errorf("%s: got %x, want an error", tc.name, got)
		case !tc.ok && tc.text != "" && strings.Contains(err.Error(), tc.text):
			t.Errorf("%s: the error quotes the value: %v", tc.name, err)
		}
	}
}

func TestLoadKeyEncryptionKey(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("5e", 32)
	path := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString(key)
	for _, tc := range []struct {
		name string
		src  config.KeySources
	}{
		{"value", config.KeySources{KeyEncryptionKey: config.Secret(key)}},
		{"file", config.KeySources{KeyEncryptionKeyFile: path}},
	} {
		c := config.Default()
		c.Keys = tc.src
		k, err := c.LoadKeys()
		if err != nil || !bytes.Equal(k.KeyEncryptionKey, want) {
			t.Errorf("%s: got %x, %v, want %x", tc.name, k.KeyEncryptionKey, err, want)
		}
	}
	c := config.Default()
	c.Keys.KeyEncryptionKey = config.Secret(strings.Repeat("5e", 31))
	if _, err := c.LoadKeys(); err == nil || strings.Contains(err.Error(), strings.Repeat("5e", 31)) {
		t.Errorf("a 31-byte key: got %v, want an error that does not quote it", err)
	}
}
