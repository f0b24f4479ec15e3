package config_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestToolsAndImagesPinned: what CI and the release build run is pinned,
// so a build today and a build next month use the same tools and base
// images: every `go run tool@version` of the Makefile names an exact
// version, the Dockerfile's Go image a patch release no older than go.mod's,
// and CI runs the security checks.
func TestToolsAndImagesPinned(t *testing.T) {
	t.Parallel()
	read := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	makefile := read("../Makefile")
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+) :?= (\S+)\s*$`).FindAllStringSubmatch(makefile, -1) {
		vars[m[1]] = m[2]
	}
	exact := regexp.MustCompile(`^v\d+\.\d+\.\d+$`)
	runs := regexp.MustCompile(`go run ([^\s@]+)@(\S+)|\$\(GO\) run ([^\s@]+)@(\S+)`).FindAllStringSubmatch(makefile, -1)
	if len(runs) < 3 {
		t.Fatalf("the Makefile runs %d pinned tools, want govulncheck, gosec and golangci-lint", len(runs))
	}
	for _, m := range runs {
		tool, version := m[1]+m[3], m[2]+m[4]
		if v := regexp.MustCompile(`^\$\(([A-Z_]+)\)$`).FindStringSubmatch(version); v != nil {
			version = vars[v[1]]
		}
		if !exact.MatchString(version) {
			t.Errorf("Makefile runs %s@%s, want an exact vX.Y.Z version", tool, version)
		}
	}

	goMod := read("../go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)(?:\.(\d+))?$`).FindStringSubmatch(goMod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if strings.Contains(goMod, "replace ") {
		t.Error("go.mod replaces a module: builds would depend on what is next to the checkout")
	}
	if sum := read("../go.sum"); len(sum) == 0 {
		t.Error("go.sum is empty")
	}

	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(read("../Dockerfile"), -1)
	for _, m := range froms {
		image := m[1]
		switch {
		case strings.Contains(image, "@sha256:"):
		case strings.HasPrefix(image, "golang:"):
			v := regexp.MustCompile(`^golang:(\d+)\.(\d+)\.(\d+)(-[a-z0-9]+)?$`).FindStringSubmatch(image)
			if v == nil {
				t.Errorf("Dockerfile FROM %s: want a Go patch release (golang:1.N.P) or a digest", image)
			} else if v[1] != goVersion[1] || v[2] != goVersion[2] {
				t.Errorf("Dockerfile FROM %s, go.mod says go %s.%s", image, goVersion[1], goVersion[2])
			}
		case strings.HasPrefix(image, "gcr.io/distroless/"):
			if !regexp.MustCompile(`-debian\d+:`).MatchString(image) {
				t.Errorf("Dockerfile FROM %s: want a distroless image of a named Debian release", image)
			}
		default:
			t.Errorf("Dockerfile FROM %s: want a pinned tag or digest", image)
		}
	}

	ci := read("../.ci/run")
	for _, step := range []string{"make test", "make fuzz", "make sec", "make vuln"} {
		if !strings.Contains(ci, step) {
			t.Errorf(".ci/run does not run %s", step)
		}
	}
}
