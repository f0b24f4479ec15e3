package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tollgate/tollgate/pkg/server"
)

// TestOpenAPIPublicRoutes keeps docs/openapi.yaml in step with what the
// wired public listener serves, outside the management API (whose every
// route pkg/admin's TestOpenAPIRoutes compares): every route is documented
// under its method, and every documented path is served.
func TestOpenAPIPublicRoutes(t *testing.T) {
	raw, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse docs/openapi.yaml: %v", err)
	}
	documented := func(path, method string) bool { return doc.Paths[path][strings.ToLower(method)] != nil }

	f := newFixture(t, "embedded")
	routes := f.app.Routes()
	if len(routes) == 0 {
		t.Fatal("the public listener serves no routes")
	}
	// The console serves HTML pages to people, not an API: it is described
	// in docs/console.md instead.
	notAPI := map[string]bool{"console": true}
	var prefixes []string
	for _, r := range routes {
		switch {
		case notAPI[r.Endpoint]:
			continue
		case r.Method != "":
			if !documented(r.Path, r.Method) {
				t.Errorf("%s %s (%s) is served but not documented", r.Method, r.Path, r.Endpoint)
			}
		case strings.HasSuffix(r.Path, "/"):
			// Every path under a prefix: the management API's own test
			// compares its routes; the check endpoint takes any suffix.
			prefixes = append(prefixes, r.Path)
			if r.Endpoint == "check" && !documented(r.Path+"{path}", "GET") {
				t.Errorf("%s… (check) is served but %s{path} is not documented", r.Path, r.Path)
			}
		default:
			// Any method: GET and POST at least, the description says the rest.
			for _, m := range []string{"GET", "POST"} {
				if !documented(r.Path, m) {
					t.Errorf("%s %s (%s, any method) is served but not documented", m, r.Path, r.Endpoint)
				}
			}
		}
	}
	for path := range doc.Paths {
		served := slices.ContainsFunc(routes, func(r server.Route) bool { return r.Path == path }) ||
			slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(path, p) })
		if !served {
			t.Errorf("%s is documented but not served", path)
		}
	}
}
