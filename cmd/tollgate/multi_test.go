package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/e2e"
	"github.com/tollgate/tollgate/storage/sql/sqltest"
)

// startProcess runs the tollgate binary as `serve` with vars and returns its
// public address once it listens. The process gets SIGTERM at cleanup.
func startProcess(t *testing.T, bin string, vars map[string]string) string {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e2e.StopAtCleanup(t, cmd, 10*time.Second)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg    string `json:"msg"`
				Public string `json:"public"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "tollgate listening" {
				addr <- strings.TrimPrefix(line.Public, "http://")
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("tollgate process did not start")
	}
	return ""
}

// TestLimitsAcrossThreeProcesses: three Tollgate processes share one Redis;
// a key whose class allows a burst of 6 and 1 a second, sending 30 requests
// round robin over them as fast as they answer, gets the burst plus what
// refilled in the time measured, not 6 per process (at least 18), and a client id's
// wrong secrets are counted across the processes.
func TestLimitsAcrossThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "tollgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	vars := map[string]string{
		"TOLLGATE_DATA_DIR":           t.TempDir(),
		"TOLLGATE_HTTP_ADDR":          "127.0.0.1:0",
		"TOLLGATE_OPS_ADDR":           "127.0.0.1:0",
		"TOLLGATE_DATABASE_URL":       sqltest.Postgres(t),
		"TOLLGATE_REDIS_URL":          redisURLForTest(t),
		"TOLLGATE_REDIS_KEY_PREFIX":   redisPrefixForTest(t),
		"TOLLGATE_TOKEN_SECRET":       "three-process-token-secret-0123456789abcdef",
		"TOLLGATE_PEPPER":             "three-process-pepper-0123456789abcdef-xyz",
		"TOLLGATE_KEY_ENCRYPTION_KEY": "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b",
		"TOLLGATE_LOG_LEVEL":          "warn",
		// A burst of 6 at 1 a second: the bound below grows by one request
		// per second the 30 requests take, and stays under what per-process
		// limits would allow (18) unless they take 11 s.
		"TOLLGATE_RATE_CLASSES": "default=1:6",
	}
	if _, err := runCommand(t, vars, "migrate"); err != nil {
		t.Fatal(err)
	}
	b := bootstrapFor(t, vars)
	vars["TOLLGATE_LOG_LEVEL"] = "info" // the listening line is how we learn the port
	var addrs []string
	for range 3 {
		addrs = append(addrs, startProcess(t, bin, vars))
	}

	// An API key, created through the first instance.
	dspBody, _ := json.Marshal(map[string]any{"grant_type": "eskimi_dsp", "username": b.Username, "password": b.Password,
		"client_id": b.ClientID, "client_secret": b.ClientSecret})
	res, err := http.Post("http://"+addrs[0]+"/oauth/token", "application/json", strings.NewReader(string(dspBody)))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addrs[0]+"/api/v1/keys", strings.NewReader(`{"name":"load","access_rights":"events"}`))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var key struct {
		Key string `json:"key"`
	}
	_ = json.NewDecoder(res.Body).Decode(&key)
	res.Body.Close()
	if key.Key == "" {
		t.Fatalf("no key created: %d", res.StatusCode)
	}

	// 30 requests round robin, each one failing the test if it gets no
	// answer. The window is measured, not assumed: a loaded machine only
	// widens the bound, by one request per second.
	const burst, rate, sent = 6, 1, 30
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	allowed, limited := 0, 0
	began := time.Now()
	for i := range sent {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addrs[i%3]+"/auth/check", nil)
		req.Header.Set("X-API-Key", key.Key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		res.Body.Close()
		switch res.StatusCode {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("request %d: status %d", i, res.StatusCode)
		}
	}
	elapsed := time.Since(began)
	// GCRA allows the burst at once and then one request per 1/rate; one
	// more for a refill that lands between the last measurement and Redis'
	// clock. Per-process limits would allow each process's burst: 18.
	hi := burst + int(elapsed.Seconds()*rate) + 1
	const perProcess = 3 * burst
	if hi >= perProcess {
		t.Fatalf("%d requests took %v: too slow to tell a shared limit (at most %d) from per-process ones (%d)", sent, elapsed, hi, perProcess)
	}
	if allowed < burst || allowed > hi {
		t.Errorf("%d of %d requests allowed across three processes in %v, want within [%d, %d] (limited %d)", allowed, sent, elapsed, burst, hi, limited)
	}
	t.Logf("allowed %d, limited %d in %v", allowed, limited, elapsed)

	// The brute-force counters are shared too (docs/adr/0005): wrong
	// secrets for one client id, round robin, reach the threshold across
	// the processes, and then every process holds the client id back.
	// Counters per process would have let each of them see fewer than the
	// threshold and answer 401.
	wrong := func(addr string, i int) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", e2e.FormCT)
		req.Header.Set("Authorization", e2e.Basic(b.ClientID, "wrong-secret-"+strconv.Itoa(i)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("wrong secret %d: %v", i, err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := range bfThreshold {
		if got := wrong(addrs[i%3], i); got != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d on process %d: status %d, want 401", i+1, i%3+1, got)
		}
	}
	for n, addr := range addrs {
		if got := wrong(addr, bfThreshold+n); got != http.StatusTooManyRequests {
			t.Errorf("process %d after %d wrong secrets spread over three processes: status %d, want 429", n+1, bfThreshold, got)
		}
	}
}
