package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	tgredis "github.com/tollgate/tollgate/storage/redis"
)

// startTimeout bounds starting a private server, a cluster or a Sentinel.
const startTimeout = 30 * time.Second

// needBinaries answers the paths of the named programs, skipping the test
// when one is missing, except under CI=true, where it fails it.
func needBinaries(tb testing.TB, names ...string) []string {
	tb.Helper()
	paths := make([]string, len(names))
	for i, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("redistest: %s not found: %v", name, err)
			}
			tb.Skipf("redistest: %s not found, skipping: %v", name, err)
		}
		paths[i] = p
	}
	return paths
}

// freePort answers a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs redis-server with args until the test ends: first the
// configuration file when there is one (Sentinel), then the options for
// port, address, directory and log, then the rest of args. It waits until
// the server answers ping. The server's log goes to <dir>/<name>.log, and
// what it prints to <dir>/<name>.out; a failure shows both.
func startServer(tb testing.TB, server, dir, name string, port int, ping func(context.Context) error, conf string, args ...string) {
	tb.Helper()
	logPath, outPath := filepath.Join(dir, name+".log"), filepath.Join(dir, name+".out")
	var argv []string
	if conf != "" {
		argv = append(argv, conf, "--sentinel")
	}
	argv = append(argv, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--logfile", logPath)
	argv = append(argv, args...)
	out, err := os.Create(outPath) // #nosec G304 -- a file of the test's temporary directory
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	defer out.Close()                    // the process holds its own descriptor
	cmd := exec.Command(server, argv...) // #nosec G204 -- redis-server from PATH, arguments of this package
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("redistest: start %s: %v", name, err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)     // #nosec G304 -- the server's log in the test's directory
			printed, _ := os.ReadFile(outPath) // #nosec G304 -- likewise
			tb.Fatalf("redistest: %s does not answer on port %d: %v\n%s%s", name, port, err, printed, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startRedis starts a redis-server (startServer) without persistence.
func startRedis(tb testing.TB, server, dir, name string, port int, password string, args ...string) {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr(port), Password: password, MaxRetries: -1})
	defer c.Close()
	args = append([]string{"--save", "", "--appendonly", "no"}, args...)
	startServer(tb, server, dir, name, port, func(ctx context.Context) error { return c.Ping(ctx).Err() }, "", args...)
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// StartServer starts a private redis-server on a free port, without
// persistence, until the test ends, and answers its redis:// URL: for tests
// that measure the server or stop it, which the shared Redis must never
// be. A missing redis-server skips the test, except under CI=true, where it
// fails it.
func StartServer(tb testing.TB) string {
	tb.Helper()
	server := needBinaries(tb, "redis-server")[0]
	port := freePort(tb)
	startRedis(tb, server, tb.TempDir(), "redis", port, "")
	return "redis://" + addr(port) + "/0"
}

// StartCluster starts a Redis Cluster of three masters without replicas:
// three private redis-server processes on free ports, joined by
// redis-cli --cluster create. It answers their addresses once every node
// reports cluster_state:ok, and stops them when the test ends. Nothing of
// the shared Redis is touched.
//
// A missing redis-server or redis-cli skips the test, except under
// CI=true, where it fails it.
func StartCluster(tb testing.TB) []string {
	tb.Helper()
	bins := needBinaries(tb, "redis-server", "redis-cli")
	server, cli := bins[0], bins[1]
	dir := tb.TempDir()
	addrs := make([]string, 3)
	for i := range addrs {
		port, busPort := freePort(tb), freePort(tb)
		name := fmt.Sprintf("node-%d", port)
		startRedis(tb, server, dir, name, port, "",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, name+".conf"),
			"--cluster-port", strconv.Itoa(busPort),
			"--cluster-node-timeout", "5000")
		addrs[i] = addr(port)
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	// #nosec G204 -- redis-cli from PATH, with the addresses of the servers started above
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a, MaxRetries: -1})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if ctx.Err() != nil {
				_ = c.Close()
				tb.Fatalf("redistest: cluster node %s not ready after %s: %v\n%s", a, startTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
	}
	return addrs
}

// NewCluster starts a cluster (StartCluster) and answers a client of it,
// made as Tollgate makes one, and a key prefix, as New does. The client is
// closed when the test ends.
func NewCluster(tb testing.TB) (client goredis.UniversalClient, prefix string) {
	tb.Helper()
	client, err := tgredis.NewUniversalClient(tgredis.Topology{Addrs: StartCluster(tb)}, tgredis.ClientOptions{})
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	return client, Prefix()
}

// Sentinel is a master watched by one Sentinel, both private processes.
type Sentinel struct {
	// Addr is the Sentinel's host:port.
	Addr string
	// MasterName is the name the Sentinel monitors the master under.
	MasterName string
	// MasterAddr is the master's host:port.
	MasterAddr string
	// Password is the requirepass of both the master and the Sentinel.
	Password string
}

// StartSentinel starts a master (redis-server) and a Sentinel watching it
// (redis-server --sentinel, with a generated sentinel.conf), both requiring
// a password, and answers them once the Sentinel reports the master. They
// stop when the test ends. A missing redis-server skips the test, except
// under CI=true, where it fails it.
func StartSentinel(tb testing.TB) Sentinel {
	tb.Helper()
	server := needBinaries(tb, "redis-server")[0]
	dir := tb.TempDir()
	s := Sentinel{MasterName: "tollgate", Password: randomHex(16)}
	masterPort, sentinelPort := freePort(tb), freePort(tb)
	s.MasterAddr, s.Addr = addr(masterPort), addr(sentinelPort)
	startRedis(tb, server, dir, "master", masterPort, s.Password, "--requirepass", s.Password)

	// Sentinel rewrites its configuration file, so it must be one of its
	// own; options after the file name override it.
	conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n"+
		"sentinel auth-pass %s %s\n"+
		"sentinel down-after-milliseconds %s 5000\n"+
		"requirepass %s\n", s.MasterName, masterPort, s.MasterName, s.Password, s.MasterName, s.Password)
	confPath := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		tb.Fatalf("redistest: write sentinel.conf: %v", err)
	}
	c := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr, Password: s.Password, MaxRetries: -1})
	defer c.Close()
	startServer(tb, server, dir, "sentinel", sentinelPort, func(ctx context.Context) error { return c.Ping(ctx).Err() }, confPath)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		got, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
		if err == nil && len(got) == 2 && addr(masterPort) == net.JoinHostPort(got[0], got[1]) {
			return s
		}
		if ctx.Err() != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log")) // #nosec G304 -- the Sentinel's log in the test's directory
			tb.Fatalf("redistest: Sentinel does not report master %s: %v (%q)\n%s", s.MasterName, err, got, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
