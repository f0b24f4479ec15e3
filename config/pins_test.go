package config_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
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
			if problem := goImageProblem(image, goMod); problem != "" {
				t.Errorf("Dockerfile FROM %s: %s", image, problem)
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

var (
	goImage     = regexp.MustCompile(`^golang:(\d+)\.(\d+)\.(\d+)(-[a-z0-9]+)?$`)
	goDirective = regexp.MustCompile(`(?m)^go (\d+)\.(\d+)(?:\.(\d+))?$`)
	toolchain   = regexp.MustCompile(`(?m)^toolchain go(\d+)\.(\d+)\.(\d+)$`)
)

// goImageProblem returns what is wrong with the Dockerfile's Go image given
// go.mod, or "": it must name a patch release of go.mod's Go line no older
// than go.mod's go directive, patch included, and exactly go.mod's toolchain
// when there is one. Comparing the line alone let an image older than
// go.mod's patch through (golang:1.26.8 with go 1.26.9).
func goImageProblem(image, goMod string) string {
	v := goImage.FindStringSubmatch(image)
	if v == nil {
		return "want a Go patch release (golang:1.N.P) or a digest"
	}
	g := goDirective.FindStringSubmatch(goMod)
	if g == nil {
		return "go.mod has no go directive"
	}
	img, mod := version(v[1:4]), version(g[1:4])
	if img[0] != mod[0] || img[1] != mod[1] {
		return fmt.Sprintf("go.mod says go %d.%d", mod[0], mod[1])
	}
	if img[2] < mod[2] {
		return fmt.Sprintf("older than go.mod's go %d.%d.%d", mod[0], mod[1], mod[2])
	}
	if tc := toolchain.FindStringSubmatch(goMod); tc != nil && version(tc[1:4]) != img {
		return fmt.Sprintf("go.mod's toolchain is go%s.%s.%s", tc[1], tc[2], tc[3])
	}
	return ""
}

// version reads major, minor and patch; a missing patch is 0.
func version(parts []string) [3]int {
	var out [3]int
	for i, p := range parts {
		out[i], _ = strconv.Atoi(p) // digits by the regexp, or "" for 0
	}
	return out
}

func TestGoImageProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		image, goMod string
		want         string
	}{
		{"golang:1.26.8", "go 1.26.0\n", ""},
		{"golang:1.26.8", "go 1.26\n", ""},
		{"golang:1.26.8-bookworm", "go 1.26.8\n", ""},
		{"golang:1.26.8", "go 1.26.9\n", "older than go.mod's go 1.26.9"},
		{"golang:1.26.10", "go 1.26.9\n", ""},
		{"golang:1.25.12", "go 1.26.0\n", "go.mod says go 1.26"},
		{"golang:1.27.0", "go 1.26.0\n", "go.mod says go 1.26"},
		{"golang:1.26", "go 1.26.0\n", "want a Go patch release (golang:1.N.P) or a digest"},
		{"golang:1.26.8", "go 1.26.0\ntoolchain go1.26.8\n", ""},
		{"golang:1.26.8", "go 1.26.0\ntoolchain go1.26.9\n", "go.mod's toolchain is go1.26.9"},
		{"golang:1.26.8", "module x\n", "go.mod has no go directive"},
	}
	for _, tt := range tests {
		if got := goImageProblem(tt.image, tt.goMod); got != tt.want {
			t.Errorf("goImageProblem(%q, %q) = %q, want %q", tt.image, tt.goMod, got, tt.want)
		}
	}
}
