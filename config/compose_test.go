package config_test

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tollgate/tollgate/config"
)

// composeFile is the part of the compose specification these tests read.
type composeFile struct {
	Version  *string                   `yaml:"version"`
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     any            `yaml:"command"`     // string or list
	Environment any            `yaml:"environment"` // map or list of NAME=value
	Ports       []any          `yaml:"ports"`       // short strings or long-form maps
	DependsOn   map[string]any `yaml:"depends_on"`
	Healthcheck map[string]any `yaml:"healthcheck"`
	Volumes     []any          `yaml:"volumes"` // short strings or long-form maps
	Profiles    []string       `yaml:"profiles"`
}

// binds returns a service's bind mounts (host path → container path), the
// host paths relative to the compose file as written.
func (s composeService) binds(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range s.Volumes {
		switch v := v.(type) {
		case string:
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && (strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/")) {
				out[parts[1]] = parts[0]
			}
		case map[string]any:
			if v["type"] == "bind" {
				out[fmt.Sprint(v["target"])] = fmt.Sprint(v["source"])
			}
		default:
			t.Fatalf("volume has unexpected type %T", v)
		}
	}
	return out
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("parse docker-compose.yml: %v", err)
	}
	return f
}

// environment returns a service's environment as written (uninterpolated).
func (s composeService) environment(t *testing.T) map[string]string {
	t.Helper()
	env := make(map[string]string)
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			if v == nil {
				env[k] = ""
				continue
			}
			env[k] = fmt.Sprint(v)
		}
	case []any:
		for _, item := range e {
			k, v, _ := strings.Cut(fmt.Sprint(item), "=")
			env[k] = v
		}
	default:
		t.Fatalf("environment has unexpected type %T", e)
	}
	return env
}

func (s composeService) command() string {
	switch c := s.Command.(type) {
	case string:
		return c
	case []any:
		parts := make([]string, len(c))
		for i, p := range c {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, " ")
	}
	return ""
}

// containerPorts returns the container side of every published port.
func (s composeService) containerPorts(t *testing.T) []string {
	t.Helper()
	var ports []string
	for _, p := range s.Ports {
		switch p := p.(type) {
		case string:
			// [host_ip:][host_port:]container_port[/protocol]
			p, _, _ = strings.Cut(p, "/")
			ports = append(ports, p[strings.LastIndex(p, ":")+1:])
		case map[string]any:
			ports = append(ports, fmt.Sprint(p["target"]))
		default:
			t.Fatalf("port %v has unexpected type %T", p, p)
		}
	}
	slices.Sort(ports)
	return ports
}

var composeVar = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate expands compose variables: $$, $VAR, ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?error} and ${VAR?error}.
func interpolate(s string, vars map[string]string) (string, error) {
	var err error
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := composeVar.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		if name == "" {
			name = sub[4]
		}
		v, set := vars[name]
		empty := !set || (strings.HasPrefix(op, ":") && v == "")
		switch op {
		case ":-", "-":
			if empty {
				return arg
			}
		case ":?", "?":
			if empty {
				err = fmt.Errorf("required variable %s is missing: %s", name, arg)
			}
		}
		return v
	})
	return out, err
}

func TestInterpolate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"SET": "v", "EMPTY": ""}
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"a$$b", "a$b", false},
		{"$SET/${SET}", "v/v", false},
		{"${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}|${SET:-d}", "d|d||v", false},
		{"${SET:?need it}", "v", false},
		{"${UNSET:?need it}", "", true},
		{"${EMPTY:?need it}", "", true},
		{"${EMPTY?need it}", "", false},
	}
	for _, tt := range tests {
		got, err := interpolate(tt.in, vars)
		if (err != nil) != tt.wantErr {
			t.Errorf("interpolate(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("interpolate(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// composeShell is the shell environment `docker compose up` is run from in
// these tests: only the two required secrets, as dummy 32-byte values.
var composeShell = map[string]string{
	"TOLLGATE_TOKEN_SECRET":       strings.Repeat("t", 32),
	"TOLLGATE_PEPPER":             strings.Repeat("p", 32),
	"TOLLGATE_KEY_ENCRYPTION_KEY": strings.Repeat("0c", 32),
}

func tollgateEnv(t *testing.T, f composeFile, shell map[string]string) (map[string]string, error) {
	t.Helper()
	raw := f.Services["tollgate"].environment(t)
	env := make(map[string]string, len(raw))
	var errs []error
	for k, v := range raw {
		got, err := interpolate(v, shell)
		if err != nil {
			errs = append(errs, err)
		}
		env[k] = got
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%v", errs)
	}
	return env, nil
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return port
}

func TestCompose(t *testing.T) {
	t.Parallel()
	f := readCompose(t)
	if f.Version != nil {
		t.Errorf("docker-compose.yml has a version key %q; the compose specification has none", *f.Version)
	}
	for _, name := range []string{"postgres", "redis", "tollgate"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %s service", name)
		}
	}
	tg, pg, rd := f.Services["tollgate"], f.Services["postgres"], f.Services["redis"]

	t.Run("services", func(t *testing.T) {
		if !strings.HasPrefix(pg.Image, "postgres:") || !strings.HasPrefix(rd.Image, "redis:") {
			t.Errorf("images = %q, %q, want postgres:… and redis:…", pg.Image, rd.Image)
		}
		if got := pg.environment(t)["POSTGRES_DB"]; got != "tollgate" {
			t.Errorf("postgres POSTGRES_DB = %q, want tollgate", got)
		}
		for name, s := range map[string]composeService{"postgres": pg, "redis": rd} {
			if len(s.Healthcheck) == 0 {
				t.Errorf("%s has no healthcheck", name)
			}
			cond := fmt.Sprint(tg.DependsOn[name])
			if !strings.Contains(cond, "service_healthy") {
				t.Errorf("tollgate depends_on %s = %s, want condition service_healthy", name, cond)
			}
		}
		if tg.Build == nil {
			t.Error("tollgate is not built from the Dockerfile")
		}
		if got := tg.command(); got != "serve --migrate" {
			t.Errorf("tollgate command = %q, want %q", got, "serve --migrate")
		}
	})

	t.Run("redis persistence", func(t *testing.T) {
		cmd := rd.command()
		for _, want := range []string{"--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("redis command = %q, want it to contain %q", cmd, want)
			}
		}
	})

	t.Run("environment names", func(t *testing.T) {
		known := config.EnvNames()
		for name := range tg.environment(t) {
			if !slices.Contains(known, name) {
				t.Errorf("tollgate environment sets %s, which config does not know", name)
			}
		}
	})

	t.Run("secrets are required from the shell", func(t *testing.T) {
		raw := tg.environment(t)
		for _, name := range []string{"TOLLGATE_TOKEN_SECRET", "TOLLGATE_PEPPER", "TOLLGATE_KEY_ENCRYPTION_KEY"} {
			if v := raw[name]; !strings.HasPrefix(v, "${"+name+":?") {
				t.Errorf("tollgate %s is not ${%s:?…}: compose would start without it", name, name)
			}
		}
		if _, err := tollgateEnv(t, f, nil); err == nil {
			t.Error("interpolating without the secrets succeeded, want compose to refuse")
		}
	})

	env, err := tollgateEnv(t, f, composeShell)
	if err != nil {
		t.Fatalf("interpolate tollgate environment: %v", err)
	}

	t.Run("published ports match the listeners", func(t *testing.T) {
		want := []string{portOf(t, env["TOLLGATE_HTTP_ADDR"]), portOf(t, env["TOLLGATE_OPS_ADDR"])}
		slices.Sort(want)
		if got := tg.containerPorts(t); !slices.Equal(got, want) {
			t.Errorf("tollgate container ports = %v, want %v (from TOLLGATE_HTTP_ADDR and TOLLGATE_OPS_ADDR)", got, want)
		}
	})

	t.Run("stores point at the services", func(t *testing.T) {
		for name, service := range map[string]string{"TOLLGATE_DATABASE_URL": "postgres", "TOLLGATE_REDIS_URL": "redis"} {
			u, err := url.Parse(env[name])
			if err != nil {
				t.Errorf("%s does not parse", name)
				continue
			}
			if u.Hostname() != service {
				t.Errorf("%s host = %q, want the %s service", name, u.Hostname(), service)
			}
		}
	})

	t.Run("config from compose validates", func(t *testing.T) {
		c, err := config.Load("", envMap(env))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Validate() = %v, want nil", err)
		}
		if c.Embedded() {
			t.Error("Embedded() = true, want the production shape")
		}
		if _, err := c.LoadKeys(); err != nil {
			t.Errorf("LoadKeys() = %v, want nil", err)
		}
	})
}

// dockerfile holds the instructions of the final stage, continuation lines
// joined.
type dockerfile struct {
	from         []string // every FROM line
	instructions [][2]string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var d dockerfile
	var line strings.Builder
	for raw := range strings.Lines(string(data)) {
		raw = strings.TrimSpace(raw)
		if strings.HasPrefix(raw, "#") || (raw == "" && line.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(raw, `\`); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(raw)
		keyword, args, _ := strings.Cut(strings.TrimSpace(line.String()), " ")
		line.Reset()
		keyword = strings.ToUpper(keyword)
		if keyword == "FROM" {
			d.from = append(d.from, args)
			d.instructions = nil // keep only the final stage
			continue
		}
		d.instructions = append(d.instructions, [2]string{keyword, strings.TrimSpace(args)})
	}
	return d
}

func (d dockerfile) all(keyword string) []string {
	var out []string
	for _, in := range d.instructions {
		if in[0] == keyword {
			out = append(out, in[1])
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	d := readDockerfile(t)
	if len(d.from) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(d.from))
	}
	if final := d.from[len(d.from)-1]; !strings.Contains(final, "distroless") || !strings.Contains(final, "nonroot") {
		t.Errorf("final stage FROM %s, want a distroless nonroot image", final)
	}

	var exposed []string
	for _, args := range d.all("EXPOSE") {
		for _, p := range strings.Fields(args) {
			p, _, _ = strings.Cut(p, "/")
			exposed = append(exposed, p)
		}
	}
	slices.Sort(exposed)
	if got, want := exposed, readCompose(t).Services["tollgate"].containerPorts(t); !slices.Equal(got, want) {
		t.Errorf("Dockerfile EXPOSE %v, want the compose container ports %v", got, want)
	}

	users := d.all("USER")
	if len(users) == 0 {
		t.Fatal("final stage has no USER: it would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1], ":")
	if user == "root" || user == "0" {
		t.Errorf("final stage USER %s, want a non-root user", users[len(users)-1])
	}

	env := make(map[string]string)
	for _, args := range d.all("ENV") {
		for _, kv := range strings.Fields(args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Errorf("ENV %s: want NAME=value form", args)
				continue
			}
			env[k] = v
		}
	}
	for name := range env {
		if strings.HasPrefix(name, "TOLLGATE_") && !slices.Contains(config.EnvNames(), name) {
			t.Errorf("Dockerfile sets %s, which config does not know", name)
		}
	}
	if got := env["TOLLGATE_DATA_DIR"]; got != "/data" {
		t.Errorf("TOLLGATE_DATA_DIR = %q, want /data", got)
	}
	if addr := env["TOLLGATE_HTTP_ADDR"]; addr != "" && !slices.Contains(exposed, portOf(t, addr)) {
		t.Errorf("TOLLGATE_HTTP_ADDR %s is not exposed (%v)", addr, exposed)
	}
	if addr := env["TOLLGATE_OPS_ADDR"]; addr != "" && !slices.Contains(exposed, portOf(t, addr)) {
		t.Errorf("TOLLGATE_OPS_ADDR %s is not exposed (%v)", addr, exposed)
	}
	if got := d.all("ENTRYPOINT"); !slices.Equal(got, []string{`["/tollgate"]`}) {
		t.Errorf("ENTRYPOINT %v, want [\"/tollgate\"]", got)
	}
}

// TestComposeObservability: the observability profile's Prometheus and
// Grafana run pinned images, only under the profile, and every file they
// mount exists in the repository and is where their configuration looks
// for it.
func TestComposeObservability(t *testing.T) {
	t.Parallel()
	f := readCompose(t)
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:v?[0-9]+\.[0-9]+\.[0-9]+$`)
	for _, name := range []string{"prometheus", "grafana"} {
		s, ok := f.Services[name]
		if !ok {
			t.Fatalf("docker-compose.yml has no %s service", name)
		}
		if !pinned.MatchString(s.Image) {
			t.Errorf("%s image %q is not pinned to a release (name:x.y.z)", name, s.Image)
		}
		if !slices.Equal(s.Profiles, []string{"observability"}) {
			t.Errorf("%s profiles = %v, want [observability]", name, s.Profiles)
		}
	}
	for _, name := range []string{"postgres", "redis", "tollgate"} {
		if p := f.Services[name].Profiles; len(p) != 0 {
			t.Errorf("%s has profiles %v, want none: it runs by default", name, p)
		}
	}
	for name, s := range f.Services {
		for target, source := range s.binds(t) {
			if _, err := os.Stat(filepath.Join("..", source)); err != nil {
				t.Errorf("%s mounts %s at %s, which does not exist: %v", name, source, target, err)
			}
		}
	}
	prom, graf := f.Services["prometheus"].binds(t), f.Services["grafana"].binds(t)

	// Prometheus reads its configuration and the rule files it names.
	var promCfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAMLFile(t, prom["/etc/prometheus/prometheus.yml"], &promCfg)
	for _, rules := range promCfg.RuleFiles {
		if prom[rules] != "./deploy/prometheus/alerts.yml" {
			t.Errorf("prometheus.yml reads rules from %s, where compose mounts %q, want ./deploy/prometheus/alerts.yml", rules, prom[rules])
		}
	}
	if len(promCfg.RuleFiles) == 0 {
		t.Error("prometheus.yml names no rule file")
	}
	env, err := tollgateEnv(t, f, composeShell)
	if err != nil {
		t.Fatalf("interpolate tollgate environment: %v", err)
	}
	wantTarget := "tollgate:" + portOf(t, env["TOLLGATE_OPS_ADDR"])
	var scraped bool
	for _, sc := range promCfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			scraped = scraped || slices.Contains(st.Targets, wantTarget)
		}
	}
	if !scraped {
		t.Errorf("prometheus.yml does not scrape %s, the tollgate service's ops listener", wantTarget)
	}

	// Grafana's dashboard provider reads the directory the dashboard is
	// mounted in; its data source is the prometheus service.
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAMLFile(t, filepath.Join(graf["/etc/grafana/provisioning/dashboards"], "tollgate.yml"), &providers)
	if len(providers.Providers) != 1 ||
		graf[providers.Providers[0].Options.Path+"/tollgate.json"] != "./deploy/grafana/tollgate.json" {
		t.Errorf("the dashboard provider reads %+v, where compose does not mount ./deploy/grafana/tollgate.json", providers.Providers)
	}
	var sources struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAMLFile(t, filepath.Join(graf["/etc/grafana/provisioning/datasources"], "prometheus.yml"), &sources)
	if len(sources.Datasources) != 1 || sources.Datasources[0].Type != "prometheus" ||
		sources.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana data sources = %+v, want the prometheus service", sources.Datasources)
	}
}

// readYAMLFile reads the file at path, relative to the compose file, into v.
func readYAMLFile(t *testing.T, path string, v any) {
	t.Helper()
	if path == "" {
		t.Fatal("compose mounts no such file")
	}
	data, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}
