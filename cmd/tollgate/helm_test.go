package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// helmRenderEnv names the directory of rendered charts .ci/helm.sh passes:
// one manifests.yaml per values file.
const helmRenderEnv = "TOLLGATE_TEST_HELM_RENDER"

// chartKeysDir is where the chart mounts the key Secrets.
const chartKeysDir = "/run/secrets/tollgate"

// manifest is the part of a rendered Kubernetes object the test reads.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	Containers []struct {
		Args  []string `yaml:"args"`
		Env   []envVar `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			Items []struct {
				Path string `yaml:"path"`
			} `yaml:"items"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

// TestHelmChartConfiguration loads the configuration the Helm chart gives
// the server and the migration Job, as the server would: every TOLLGATE_
// variable known and valid, the key files mounted where the variables point
// and readable, and the listeners on the ports the Service and the probes
// use. .ci/helm.sh renders the chart and runs it; the Secrets' values are
// stand-ins (random keys, unreachable URLs: nothing connects).
func TestHelmChartConfiguration(t *testing.T) {
	dir := os.Getenv(helmRenderEnv)
	if dir == "" {
		t.Skip(helmRenderEnv + " is not set: make helm-check renders the chart and runs this test")
	}
	renders, err := filepath.Glob(filepath.Join(dir, "*", "manifests.yaml"))
	if err != nil || len(renders) == 0 {
		t.Fatalf("no rendered chart under %s (%v)", dir, err)
	}
	for _, render := range renders {
		t.Run(filepath.Base(filepath.Dir(render)), func(t *testing.T) {
			pods := renderedPods(t, render)
			if _, ok := pods["Deployment"]; !ok {
				t.Fatalf("%s: no Deployment", render)
			}
			for kind, pod := range pods {
				t.Run(kind, func(t *testing.T) { checkChartPod(t, kind, pod) })
			}
		})
	}
}

// renderedPods returns the pod specs of the Deployment and of the Job (when
// rendered) of a manifest file.
func renderedPods(t *testing.T, path string) map[string]podSpec {
	t.Helper()
	b, err := os.ReadFile(path) // #nosec G304 -- a render of the test's own chart
	if err != nil {
		t.Fatal(err)
	}
	pods := map[string]podSpec{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m.Kind == "Deployment" || m.Kind == "Job" {
			pods[m.Kind] = m.Spec.Template.Spec
		}
	}
	return pods
}

func checkChartPod(t *testing.T, kind string, pod podSpec) {
	if len(pod.Containers) != 1 {
		t.Fatalf("got %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	wantArgs := map[string]string{"Deployment": "serve", "Job": "migrate"}[kind]
	if len(c.Args) != 1 || c.Args[0] != wantArgs {
		t.Errorf("args: got %q, want [%s]", c.Args, wantArgs)
	}

	// Each key Secret becomes files under a temporary directory standing in
	// for the mount path, holding a random 32-byte key.
	keysDir := t.TempDir()
	secretVolumes := map[string][]string{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			for _, item := range v.Secret.Items {
				secretVolumes[v.Name] = append(secretVolumes[v.Name], item.Path)
			}
		}
	}
	for _, m := range c.VolumeMounts {
		items, ok := secretVolumes[m.Name]
		if !ok {
			continue
		}
		rel, found := strings.CutPrefix(m.MountPath, chartKeysDir+"/")
		if !found {
			t.Fatalf("secret volume %s mounted at %s, outside %s", m.Name, m.MountPath, chartKeysDir)
		}
		for _, item := range items {
			path := filepath.Join(keysDir, rel, item)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(randomHex(t)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}

	vars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			// URLs where nothing listens; any other secret (a Redis
			// password) a random string.
			vars[e.Name] = map[string]string{
				"TOLLGATE_DATABASE_URL": "postgres://tollgate@127.0.0.1:1/tollgate?sslmode=disable",
				"TOLLGATE_REDIS_URL":    "redis://127.0.0.1:1/0",
			}[e.Name]
			if vars[e.Name] == "" {
				vars[e.Name] = randomHex(t)
			}
		case strings.HasPrefix(e.Name, "TOLLGATE_"):
			vars[e.Name] = strings.ReplaceAll(e.Value, chartKeysDir, keysDir)
		}
	}
	cfg, err := loadConfig("", env{lookupEnv: func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}})
	if err != nil {
		t.Fatalf("the chart's configuration does not load: %v", err)
	}
	if cfg.Embedded() {
		t.Error("the chart's configuration is the embedded default, want PostgreSQL and Redis")
	}
	keys, err := resolveKeys(cfg)
	if err != nil {
		t.Fatalf("the chart's key files do not load: %v", err)
	}
	if keys.TokenSecret == nil || keys.Pepper == nil || keys.KeyEncryptionKey == nil {
		t.Error("the chart configures no token secret, pepper or key-encryption key")
	}

	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, addr := range map[string]string{"http": cfg.HTTP.Addr, "ops": cfg.Ops.Addr} {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s listener %q: %v", name, addr, err)
		}
		if kind == "Deployment" && port != strconv.Itoa(ports[name]) {
			t.Errorf("%s listener on port %s, want the container port %d", name, port, ports[name])
		}
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
