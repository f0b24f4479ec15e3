package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

// FreePort answers a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }() // only the port number was wanted
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// PostgresBin is the directory of the PostgreSQL server programs (initdb,
// pg_ctl); empty means $TOLLGATE_TEST_POSTGRES_BIN, else the newest
// /usr/lib/postgresql/<version>/bin (Debian's layout), else initdb's
// directory on PATH.
var PostgresBin = ""

func postgresBin() (string, error) {
	if PostgresBin != "" {
		return PostgresBin, nil
	}
	if dir := os.Getenv("TOLLGATE_TEST_POSTGRES_BIN"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestVersion := "", -1
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(d))))
		if err == nil && v > bestVersion {
			best, bestVersion = filepath.Dir(d), v
		}
	}
	if best != "" {
		return best, nil
	}
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("no PostgreSQL server programs: install PostgreSQL or set TOLLGATE_TEST_POSTGRES_BIN")
	}
	return filepath.Dir(initdb), nil
}

// Postgres is a PostgreSQL server of its own: a cluster initialised in a
// temporary directory, listening on 127.0.0.1 at a free port with its
// socket in that directory, run as the postgres OS user (the server refuses
// to run as root). Stopping it is an outage nobody else notices.
type Postgres struct {
	Port   int
	dir    string // owned by the postgres OS user
	bin    string // the server programs' directory
	osUser string
}

// StartPostgres initialises and starts a private PostgreSQL server. Close
// stops it and removes its files.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tollgate-pg-")
	if err != nil {
		return nil, err
	}
	bin, err := postgresBin()
	if err != nil {
		_ = os.RemoveAll(dir) // best effort; the error below is the one to report
		return nil, err
	}
	p := &Postgres{Port: port, dir: dir, bin: bin, osUser: "postgres"}
	if err := p.chown(); err != nil {
		_ = os.RemoveAll(dir) // as above
		return nil, err
	}
	if out, err := p.run(ctx, "initdb", "-D", p.data(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
		_ = os.RemoveAll(dir) // best effort; the error being returned is the one to report
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := p.Start(ctx); err != nil {
		_ = os.RemoveAll(dir) // best effort; the error being returned is the one to report
		return nil, err
	}
	return p, nil
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

// chown gives the directory to the postgres OS user when running as root.
func (p *Postgres) chown() error {
	if os.Geteuid() != 0 {
		p.osUser = ""
		return nil
	}
	u, err := user.Lookup(p.osUser)
	if err != nil {
		return fmt.Errorf("the postgres OS user is needed to run a private PostgreSQL as root: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(p.dir, uid, gid)
}

// run runs a PostgreSQL program as the postgres OS user.
func (p *Postgres) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	name := filepath.Join(p.bin, prog)
	if p.osUser != "" {
		args = append([]string{"-u", p.osUser, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// Start starts the server (again) and waits until it accepts connections.
func (p *Postgres) Start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", p.Port, p.dir)
	out, err := p.run(ctx, "pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "server.log"), "-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	return nil
}

// Stop stops the server with pg_ctl's mode: "fast" ends every session and
// shuts down cleanly, "immediate" is a crash (recovery on the next start).
func (p *Postgres) Stop(ctx context.Context, mode string) error {
	out, err := p.run(ctx, "pg_ctl", "-D", p.data(), "-m", mode, "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Close stops the server and removes its files.
func (p *Postgres) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.Stop(ctx, "immediate")
	if err != nil && strings.Contains(err.Error(), "Is server running?") {
		err = nil
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}

// Log answers the server's log file.
func (p *Postgres) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
	return string(b)
}

// URL answers the URL of database db.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// CreateDatabase creates database name.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) error {
	return Exec(ctx, p.URL("postgres"), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
}

// Exec runs one statement on the database at url.
func Exec(ctx context.Context, url, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // a one-statement connection: the Exec's error is the one that matters
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// QueryInt runs a query answering one integer on the database at url.
func QueryInt(ctx context.Context, url, sql string, args ...any) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }() // as above
	var n int64
	err = conn.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// Sessions answers how many server sessions are connected to database db,
// not counting the one asking.
func Sessions(ctx context.Context, serverURL, db string) (int64, error) {
	return QueryInt(ctx, serverURL,
		"SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db)
}

// Redis is a redis-server of its own on 127.0.0.1 at a free port, without
// persistence. Stopping it is an outage nobody else notices.
type Redis struct {
	Port int
	args []string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// RedisServer is the redis-server program (looked up on PATH).
var RedisServer = "redis-server"

// StartRedis starts a private redis-server; extra are further
// configuration arguments ("--maxmemory", "4mb", …). Close stops it.
func StartRedis(ctx context.Context, extra ...string) (*Redis, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tollgate-redis-")
	if err != nil {
		return nil, err
	}
	r := &Redis{Port: port, dir: dir, args: append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log")}, extra...)}
	if err := r.Start(ctx); err != nil {
		_ = os.RemoveAll(dir) // best effort; the error being returned is the one to report
		return nil, err
	}
	return r, nil
}

// URL answers the server's redis:// URL.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Start starts the server (again) and waits until it answers PING.
func (r *Redis) Start(ctx context.Context) error {
	cmd := exec.Command(RedisServer, r.args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	r.done = make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(r.done)
	c := r.Client()
	defer func() { _ = c.Close() }() // a helper client: the calls' own errors are what matter
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return fmt.Errorf("redis-server on port %d did not start: %w", r.Port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server: SIGTERM (it saves nothing, persistence is off),
// SIGKILL after 10 s. It returns once the process is gone.
func (r *Redis) Stop() error {
	if r.cmd == nil {
		return nil
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
	return nil
}

// Close stops the server and removes its files.
func (r *Redis) Close() error {
	return errors.Join(r.Stop(), os.RemoveAll(r.dir))
}

// Client answers a new client of the server; the caller closes it.
func (r *Redis) Client() *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port),
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second, MaxRetries: -1, PoolSize: 2})
}

// Clients answers how many connections the server has, not counting the
// one asking.
func (r *Redis) Clients(ctx context.Context) (int, error) {
	c := r.Client()
	defer func() { _ = c.Close() }() // a helper client: the calls' own errors are what matter
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if line != "" {
			n++
		}
	}
	return n - 1, nil
}
