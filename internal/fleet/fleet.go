// Package fleet runs real `tollgate serve` processes for the fault-injection
// suite and the soak: it starts and signals them, reads their vitals
// (goroutines from /metrics, resident memory from /proc), runs private
// PostgreSQL and Redis servers that can be stopped without disturbing
// anyone, puts a round-robin proxy in front of the instances, and drives a
// mixed load (issuance, introspection, gateway checks, management calls)
// whose every answer it records.
//
// It is test equipment: nothing in the server imports it.
package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles the tollgate command of the module at moduleDir into dir
// and answers the binary's path; extra are further go build flags ("-race").
func Build(ctx context.Context, moduleDir, dir string, extra ...string) (string, error) {
	bin := filepath.Join(dir, "tollgate")
	args := append(append([]string{"build"}, extra...), "-o", bin, "./cmd/tollgate")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// Env is a process environment: TOLLGATE_* settings and nothing of the
// caller's own TOLLGATE_* variables.
type Env map[string]string

// With answers a copy of e with kv (name, value, name, value…) set.
func (e Env) With(kv ...string) Env {
	out := make(Env, len(e)+len(kv)/2)
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func (e Env) list() []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

// Run runs a tollgate command to completion (migrate, bootstrap…) and
// answers its standard output.
func Run(ctx context.Context, bin string, env Env, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env.list()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("tollgate %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// Instance is one `tollgate serve` process, listening on fixed ports so that
// a restart comes back at the same address.
type Instance struct {
	Name   string
	Public string // host:port of the public listener
	Ops    string // host:port of the ops listener

	bin     string
	env     Env
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status, once done
}

// NewInstance prepares an instance on free ports, logging to
// <logDir>/<name>.log; Start runs it.
func NewInstance(name, bin string, env Env, logDir string) (*Instance, error) {
	public, err := FreePort()
	if err != nil {
		return nil, err
	}
	ops, err := FreePort()
	if err != nil {
		return nil, err
	}
	i := &Instance{Name: name, bin: bin, logPath: filepath.Join(logDir, name+".log"),
		Public: fmt.Sprintf("127.0.0.1:%d", public), Ops: fmt.Sprintf("127.0.0.1:%d", ops)}
	i.env = env.With("TOLLGATE_HTTP_ADDR", i.Public, "TOLLGATE_OPS_ADDR", i.Ops)
	return i, nil
}

// Start runs the process and waits until /healthz answers.
func (i *Instance) Start(ctx context.Context) error {
	logf, err := os.OpenFile(i.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(i.bin, "serve")
	cmd.Env = i.env.list()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // the start error is the one to report
		return err
	}
	done := make(chan struct{})
	i.mu.Lock()
	i.cmd, i.done, i.err = cmd, done, nil
	i.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = logf.Close() // the process is gone; a lost log tail fails no test
		i.mu.Lock()
		i.err = err
		i.mu.Unlock()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + i.Ops + "/healthz")
		if err == nil {
			_ = res.Body.Close() // only the status is read
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited at start: %w\n%s", i.Name, i.ExitErr(), i.LogTail(4096))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer /healthz within 30 s\n%s", i.Name, i.LogTail(4096))
		}
	}
}

// PID answers the process id, 0 when not running.
func (i *Instance) PID() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd == nil || i.cmd.Process == nil {
		return 0
	}
	return i.cmd.Process.Pid
}

// Signal sends sig to the process.
func (i *Instance) Signal(sig os.Signal) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd == nil {
		return errors.New("not started")
	}
	return i.cmd.Process.Signal(sig)
}

// Done is closed when the process has exited.
func (i *Instance) Done() <-chan struct{} {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.done
}

// ExitErr answers the exit status once the process is done (nil for a
// clean exit).
func (i *Instance) ExitErr() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.err
}

// Stop sends SIGTERM and waits for the exit, killing the process after
// timeout. It answers the exit status.
func (i *Instance) Stop(timeout time.Duration) error {
	done := i.Done()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return i.ExitErr()
	default:
	}
	_ = i.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return i.ExitErr()
	case <-time.After(timeout):
		_ = i.Signal(syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not stop within %v after SIGTERM", i.Name, timeout)
	}
}

// Log answers the instance's whole log, every run of the process included.
func (i *Instance) Log() string {
	b, _ := os.ReadFile(i.logPath)
	return string(b)
}

// LogTail answers at most n bytes of the end of the instance's log.
func (i *Instance) LogTail(n int64) string {
	f, err := os.Open(i.logPath)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read-only
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// LogLines answers the instance's log lines at level (e.g. "ERROR"),
// every run of the process included.
func (i *Instance) LogLines(level string) []string {
	f, err := os.Open(i.logPath)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }() // read-only
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Level string `json:"level"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Level == level {
			out = append(out, sc.Text())
		}
	}
	return out
}

// Vitals are an instance's resource figures.
type Vitals struct {
	Goroutines int   // go_goroutines of /metrics
	RSS        int64 // resident memory in bytes, VmRSS of /proc/<pid>/status
	Heap       int64 // go_memstats_heap_inuse_bytes of /metrics
	FDs        int   // open file descriptors, /proc/<pid>/fd
}

func (v Vitals) String() string {
	return fmt.Sprintf("goroutines %d, RSS %.1f MiB, heap %.1f MiB, fds %d", v.Goroutines, float64(v.RSS)/(1<<20),
		float64(v.Heap)/(1<<20), v.FDs)
}

// Vitals reads the instance's figures.
func (i *Instance) Vitals(ctx context.Context) (Vitals, error) {
	var v Vitals
	g, err := Metric(ctx, "http://"+i.Ops+"/metrics", "go_goroutines")
	if err != nil {
		return v, err
	}
	v.Goroutines = int(g)
	h, err := Metric(ctx, "http://"+i.Ops+"/metrics", "go_memstats_heap_inuse_bytes")
	if err != nil {
		return v, err
	}
	v.Heap = int64(h)
	pid := i.PID()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return v, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return v, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			v.RSS = kb << 10
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return v, err
	}
	v.FDs = len(fds)
	return v, nil
}

// Metric answers the value of an unlabelled metric of the Prometheus text
// exposition at url.
func Metric(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = res.Body.Close() }() // read to the end below; nothing to flush
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no metric %s", url, name)
}
