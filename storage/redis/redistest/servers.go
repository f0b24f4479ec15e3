package redistest

import (
	"context"
	"errors"
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
	defer func() { _ = l.Close() }() // only the port number was wanted
	return l.Addr().(*net.TCPAddr).Port
}

// startAttempts is how often a server is started on fresh ports when it
// exits at once: a port found free may be taken before the server binds it.
const startAttempts = 3

// startServer runs redis-server until the test ends, on a port of its own
// and with the arguments args gives for it: first the configuration file
// conf(port) writes when conf is not nil (Sentinel), then the options for
// port, address, directory and log, then args(port). It waits until ping(port) succeeds,
// and answers the port. A server that exits before answering is started
// again on other ports. The server's log goes to <dir>/<name>-<port>.log,
// and what it prints to <dir>/<name>-<port>.out; a failure shows both.
func startServer(tb testing.TB, server, dir, name string, conf func(port int) string, args func(port int) []string, ping func(ctx context.Context, port int) error) int {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(tb)
		base := filepath.Join(dir, fmt.Sprintf("%s-%d", name, port))
		logPath, outPath := base+".log", base+".out"
		var argv []string
		if conf != nil {
			argv = append(argv, conf(port), "--sentinel")
		}
		argv = append(argv, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--logfile", logPath)
		argv = append(argv, args(port)...)
		out, err := os.Create(outPath) // #nosec G304 -- a file of the test's temporary directory
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		cmd := exec.Command(server, argv...) // #nosec G204 -- redis-server from PATH, arguments of this package
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = sysProcAttr()
		err = cmd.Start()
		_ = out.Close() // the process holds its own descriptor
		if err != nil {
			tb.Fatalf("redistest: start %s: %v", name, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		tb.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		failure := func(err error) string {
			log, _ := os.ReadFile(logPath)     // #nosec G304 -- the server's log in the test's directory
			printed, _ := os.ReadFile(outPath) // #nosec G304 -- likewise
			return fmt.Sprintf("redistest: %s on port %d: %v\n%s%s", name, port, err, printed, log)
		}
		deadline := time.Now().Add(startTimeout)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := ping(ctx, port)
			cancel()
			if err == nil {
				return port
			}
			select {
			case <-exited:
				if attempt == startAttempts {
					tb.Fatal(failure(fmt.Errorf("exited at once %d times, last: %w", attempt, err)))
				}
				tb.Logf("%s; starting it again on other ports", failure(errors.New("exited at once")))
			default:
				if time.Now().After(deadline) {
					tb.Fatal(failure(fmt.Errorf("does not answer: %w", err)))
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break
		}
	}
}

// startRedis starts a redis-server (startServer) without persistence,
// requiring password unless it is empty, and answers its port.
func startRedis(tb testing.TB, server, dir, name, password string, args func(port int) []string) int {
	tb.Helper()
	return startServer(tb, server, dir, name, nil, func(port int) []string {
		return append([]string{"--save", "", "--appendonly", "no"}, args(port)...)
	}, func(ctx context.Context, port int) error {
		c := goredis.NewClient(&goredis.Options{Addr: addr(port), Password: password, MaxRetries: -1})
		defer func() { _ = c.Close() }() // a one-PING client: the PING's error is the one that matters
		return c.Ping(ctx).Err()
	})
}

// noArgs is the args of a server that needs none beyond startServer's.
func noArgs(int) []string { return nil }

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// StartServer starts a private redis-server on a free port, without
// persistence, until the test ends, and answers its redis:// URL: for tests
// that measure the server or stop it, which the shared Redis must never
// be. A missing redis-server skips the test, except under CI=true, where it
// fails it.
func StartServer(tb testing.TB) string {
	tb.Helper()
	server := needBinaries(tb, "redis-server")[0]
	port := startRedis(tb, server, tb.TempDir(), "redis", "", noArgs)
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
		port := startRedis(tb, server, dir, "node", "", func(port int) []string {
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)),
				"--cluster-port", strconv.Itoa(freePort(tb)),
				"--cluster-node-timeout", "5000",
			}
		})
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
	masterPort := startRedis(tb, server, dir, "master", s.Password, func(int) []string {
		return []string{"--requirepass", s.Password}
	})
	s.MasterAddr = addr(masterPort)

	// Sentinel rewrites its configuration file, so each start gets a new
	// one; options after the file name override it.
	conf := func(port int) string {
		path := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
		conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n"+
			"sentinel auth-pass %s %s\n"+
			"sentinel down-after-milliseconds %s 5000\n"+
			"requirepass %s\n", s.MasterName, masterPort, s.MasterName, s.Password, s.MasterName, s.Password)
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			tb.Fatalf("redistest: write sentinel.conf: %v", err)
		}
		return path
	}
	sentinelPort := startServer(tb, server, dir, "sentinel", conf, noArgs, func(ctx context.Context, port int) error {
		c := goredis.NewSentinelClient(&goredis.Options{Addr: addr(port), Password: s.Password, MaxRetries: -1})
		defer func() { _ = c.Close() }() // as above
		return c.Ping(ctx).Err()
	})
	s.Addr = addr(sentinelPort)
	c := goredis.NewSentinelClient(&goredis.Options{Addr: s.Addr, Password: s.Password, MaxRetries: -1})
	defer func() { _ = c.Close() }() // as above
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		got, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
		if err == nil && len(got) == 2 && addr(masterPort) == net.JoinHostPort(got[0], got[1]) {
			return s
		}
		if ctx.Err() != nil {
			log, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("sentinel-%d.log", sentinelPort))) // #nosec G304 -- the Sentinel's log in the test's directory
			tb.Fatalf("redistest: Sentinel does not report master %s: %v (%q)\n%s", s.MasterName, err, got, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
