package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCheckUnknownEnv(t *testing.T) {
	t.Parallel()
	seesAll := func(string) (string, bool) { return "", true }
	tests := []struct {
		name    string
		environ []string
		lookup  func(string) (string, bool)
		want    []string // names in the error; none means no error
	}{
		{"empty", nil, seesAll, nil},
		{"known names", []string{"TOLLGATE_HTTP_ADDR=x", "TOLLGATE_PEPPER=y"}, seesAll, nil},
		{"other prefixes", []string{"PATH=/bin", "TOLLGATEX=1", "tollgate_http_addr=1", "=C:=C:\\"}, seesAll, nil},
		{"test names", []string{"TOLLGATE_TEST_DATABASE_URL=x"}, seesAll, nil},
		{"typo", []string{"TOLLGATE_HTTP_ADR=x"}, seesAll, []string{"TOLLGATE_HTTP_ADR"}},
		{"several, sorted", []string{"TOLLGATE_ZZZ=1", "TOLLGATE_AAA=2", "TOLLGATE_AAA=3"}, seesAll, []string{"TOLLGATE_AAA, TOLLGATE_ZZZ"}},
		{"bare prefix", []string{"TOLLGATE_=1"}, seesAll, []string{"TOLLGATE_"}},
		{"not seen by lookup", []string{"TOLLGATE_HTTP_ADR=x"}, func(string) (string, bool) { return "", false }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkUnknownEnv(tt.environ, tt.lookup)
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("checkUnknownEnv(%q) = %v, want nil", tt.environ, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkUnknownEnv(%q) = nil, want an error naming %q", tt.environ, tt.want)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("checkUnknownEnv(%q) = %q, want it to contain %q", tt.environ, err, want)
				}
			}
			if strings.Contains(err.Error(), "=") {
				t.Errorf("checkUnknownEnv(%q) = %q, want no values echoed", tt.environ, err)
			}
		})
	}
}

// TestSetFromString covers the parsers, including bool, which no setting
// uses yet.
func TestSetFromString(t *testing.T) {
	t.Parallel()
	var target struct {
		B  bool
		D  time.Duration
		I  int
		I8 int8
		S  Secret
		L  []string
		M  map[string]string
	}
	v := reflect.ValueOf(&target).Elem()
	tests := []struct {
		field   string
		raw     string
		want    any
		wantErr string
	}{
		{"B", "true", true, ""},
		{"B", "0", false, ""},
		{"B", "yes", nil, "invalid boolean"},
		{"D", "1h30m", 90 * time.Minute, ""},
		{"D", "90", nil, "invalid duration"},
		{"I", "-3", -3, ""},
		{"I", "3x", nil, "invalid integer"},
		{"I8", "300", nil, "invalid integer"},
		{"S", " spaced secret ", Secret(" spaced secret "), ""},
		{"L", " a ,b", []string{"a", "b"}, ""},
		{"M", "x=1", map[string]string{"x": "1"}, ""},
		{"M", "=1", nil, "want id=path"},
		{"M", "x=", nil, "want id=path"},
	}
	for _, tt := range tests {
		f := v.FieldByName(tt.field)
		err := setFromString(f, tt.raw)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("setFromString(%s, %q) error = %v, want %q", tt.field, tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("setFromString(%s, %q) error = %v", tt.field, tt.raw, err)
			continue
		}
		if got := f.Interface(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("setFromString(%s, %q) = %#v, want %#v", tt.field, tt.raw, got, tt.want)
		}
	}
}
