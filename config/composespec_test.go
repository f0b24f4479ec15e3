package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeSecrets are placeholders for the variables docker-compose.yml
// requires from the shell.
var composeSecrets = []string{
	"TOLLGATE_TOKEN_SECRET=compose-check-not-a-secret",
	"TOLLGATE_PEPPER=compose-check-not-a-secret",
	"TOLLGATE_KEY_ENCRYPTION_KEY=" + strings.Repeat("0c", 32),
}

// loadComposeSpec loads the compose file at path as Compose v2 does (the
// compose-spec loader: interpolation, the compose-spec JSON schema,
// normalisation, consistency checks), with env as the shell's environment.
func loadComposeSpec(t *testing.T, path string, env []string, profiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithName("tollgate"),
		cli.WithWorkingDirectory(filepath.Dir(path)),
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	return opts.LoadProject(t.Context())
}

// TestComposeSpec: docker-compose.yml loads with the loader of Compose v2
// (what `docker compose` and `make up` run), which validates it against the
// current compose-spec schema; docker-compose 1.29 (make check-compose)
// knows an older one. The observability services run only under their
// profile, and every file they mount exists where Compose resolves it.
func TestComposeSpec(t *testing.T) {
	t.Parallel()
	path, err := filepath.Abs("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		profiles       []string
		active, asleep []string
	}{
		{nil, []string{"postgres", "redis", "tollgate"}, []string{"grafana", "prometheus"}},
		{[]string{"observability"}, []string{"grafana", "postgres", "prometheus", "redis", "tollgate"}, nil},
	} {
		p, err := loadComposeSpec(t, path, composeSecrets, c.profiles...)
		if err != nil {
			t.Fatalf("load docker-compose.yml with profiles %v: %v", c.profiles, err)
		}
		active := slices.Sorted(slices.Values(p.ServiceNames()))
		asleep := slices.Sorted(func(yield func(string) bool) {
			for name := range p.DisabledServices {
				if !yield(name) {
					return
				}
			}
		})
		if !slices.Equal(active, c.active) || !slices.Equal(asleep, c.asleep) {
			t.Errorf("profiles %v: services %v, disabled %v; want %v and %v", c.profiles, active, asleep, c.active, c.asleep)
		}
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeBind {
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s, which does not exist: %v", s.Name, v.Source, err)
				}
			}
		}
	}
}

// TestComposeSpecRefuses: the loader is no rubber stamp: a missing secret,
// an unknown key and a dependency on no service are refused.
func TestComposeSpecRefuses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		from, to string
		env      []string
		want     string
	}{
		{"no pepper", "", "", composeSecrets[:1], "TOLLGATE_PEPPER"},
		{"unknown key", "    restart: unless-stopped\n", "    restrat: unless-stopped\n", composeSecrets, "restrat"},
		{"missing dependency", "      tollgate:\n        condition: service_started", "      tolgate:\n        condition: service_started", composeSecrets, "tolgate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			broken := string(data)
			if c.from != "" {
				if !strings.Contains(broken, c.from) {
					t.Fatalf("docker-compose.yml has no %q to break", c.from)
				}
				broken = strings.Replace(broken, c.from, c.to, 1)
			}
			path := filepath.Join(t.TempDir(), "docker-compose.yml")
			if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadComposeSpec(t, path, c.env, "observability")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("load: %v, want an error naming %q", err, c.want)
			}
		})
	}
}
