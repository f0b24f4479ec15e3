package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	envPrefix     = "TOLLGATE_"
	testEnvPrefix = "TOLLGATE_TEST_"
)

// BootstrapPasswordEnv names the variable that may carry the admin password
// of `tollgate bootstrap`. It is read by that command, not by Load, but is a
// known name all the same.
const BootstrapPasswordEnv = "TOLLGATE_BOOTSTRAP_PASSWORD" // #nosec G101 -- the name of a variable, not a password

// Variables of the management commands (tollgate accounts|users|clients|
// keys|audit|tokens), which talk to a running server and never call Load.
// They are known names, so a shell that sets them can still run
// `tollgate serve`.
const (
	CLIServerEnv       = "TOLLGATE_SERVER"        // URL of the server
	CLITokenEnv        = "TOLLGATE_TOKEN"         // #nosec G101 -- the name of the variable with the Bearer token for the management API
	CLIPasswordEnv     = "TOLLGATE_PASSWORD"      // #nosec G101 -- the name of the variable with the password for users create|reset-password, clients token and, where an account asks for it, clients|keys create
	CLIClientSecretEnv = "TOLLGATE_CLIENT_SECRET" // #nosec G101 -- the name of the variable with the client secret of tokens exchange --client-id
	CLIAPIKeyEnv       = "TOLLGATE_API_KEY"       // #nosec G101 -- the name of the variable with the API key tokens exchange exchanges
)

// Settings of the server that the management commands also read: without
// TOLLGATE_SERVER they talk to the address the server on this machine
// listens on.
const (
	HTTPAddrEnv    = "TOLLGATE_HTTP_ADDR"          // http.addr
	HTTPTLSCertEnv = "TOLLGATE_HTTP_TLS_CERT_FILE" // http.tls_cert_file
)

// leaf is one configurable setting: a struct field carrying an `env` tag.
type leaf struct {
	env      string // environment variable name
	yamlPath string // dotted YAML key, "" for env-only settings
	index    []int  // field index path from Config
}

// leaves lists the settings of Config in declaration order. It walks the
// struct once per call; Config is small and this runs at start-up only.
func leaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, yamlPrefix string, index []int)
	walk = func(t reflect.Type, yamlPrefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(slices.Clone(index), i)
			yamlKey, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			path := ""
			if yamlKey != "-" && yamlKey != "" {
				path = yamlKey
				if yamlPrefix != "" {
					path = yamlPrefix + "." + yamlKey
				}
			}
			if name, ok := f.Tag.Lookup("env"); ok {
				out = append(out, leaf{env: name, yamlPath: path, index: idx})
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, path, idx)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// EnvNames returns the name of every environment variable Load reads, in the
// order the settings are declared.
func EnvNames() []string {
	ls := leaves()
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.env
	}
	return names
}

// envLabel names a setting for error messages by its YAML key and its
// environment variable, e.g. "http.addr (TOLLGATE_HTTP_ADDR)".
func envLabel(yamlPath string) string {
	for _, l := range leaves() {
		if l.yamlPath == yamlPath {
			return fmt.Sprintf("%s (%s)", yamlPath, l.env)
		}
	}
	return yamlPath
}

// applyEnv overrides c with every known variable lookupEnv reports as set.
// All parse failures are reported together, each naming its variable.
func applyEnv(c *Config, lookupEnv func(string) (string, bool)) error {
	root := reflect.ValueOf(c).Elem()
	var errs []error
	for _, l := range leaves() {
		raw, ok := lookupEnv(l.env)
		if !ok {
			continue
		}
		if err := setFromString(root.FieldByIndex(l.index), raw); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s: %w", l.env, err))
		}
	}
	return errors.Join(errs...)
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[Secret]()
)

// setFromString parses raw into v according to v's type. Error messages may
// quote raw, so it must never be called to parse a Secret in a way that can
// fail; Secret values are taken verbatim.
func setFromString(v reflect.Value, raw string) error {
	switch {
	case v.Type() == secretType:
		v.SetString(raw)
		return nil
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid duration %q (want e.g. 500ms, 30s, 1h)", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %q", raw)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", raw)
		}
		v.SetBool(b)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported setting type %s", v.Type())
		}
		v.Set(reflect.ValueOf(splitList(raw)))
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported setting type %s", v.Type())
		}
		m, err := parsePairs(raw)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

// splitList parses "a, b,c" into [a b c]; empty items are dropped, so an
// empty value clears the list.
func splitList(raw string) []string {
	var out []string
	for item := range strings.SplitSeq(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parsePairs parses "k1=v1,k2=v2" into a map; an empty value clears it.
func parsePairs(raw string) (map[string]string, error) {
	var out map[string]string
	for _, item := range splitList(raw) {
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("invalid item %q (want id=path)", item)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("duplicate id %q", k)
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = v
	}
	return out, nil
}

// checkUnknownEnv reports every TOLLGATE_* name in environ ("NAME=value"
// entries) that is not a known setting and that lookupEnv also sees. Names
// starting with TOLLGATE_TEST_ are left to tests. Values are never echoed.
func checkUnknownEnv(environ []string, lookupEnv func(string) (string, bool)) error {
	known := make(map[string]bool)
	for _, name := range EnvNames() {
		known[name] = true
	}
	for _, name := range []string{BootstrapPasswordEnv, CLIServerEnv, CLITokenEnv, CLIPasswordEnv, CLIClientSecretEnv, CLIAPIKeyEnv} {
		known[name] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || strings.HasPrefix(name, testEnvPrefix) || known[name] {
			continue
		}
		if _, ok := lookupEnv(name); !ok {
			continue
		}
		if !slices.Contains(unknown, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("unknown environment variables %s (misspelled? the known names are listed in docs/configuration.md)", strings.Join(unknown, ", "))
}
