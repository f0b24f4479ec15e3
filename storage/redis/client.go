package redis

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ClientOptions bounds how long a command may take when Redis is slow or
// gone. go-redis's defaults (5 s dial, read and write timeouts, 3 retries,
// 5 dial attempts) added 1.7–3.3 s to every request during an outage. A zero
// field takes the default named on it; these fields win over the same
// settings in the URL's query.
type ClientOptions struct {
	// DialTimeout bounds connecting; default 500 ms.
	DialTimeout time.Duration
	// ReadTimeout bounds waiting for a reply; default 500 ms.
	ReadTimeout time.Duration
	// WriteTimeout bounds sending a command; default 500 ms.
	WriteTimeout time.Duration
	// PoolTimeout bounds waiting for a free connection when all are busy;
	// default 1 s.
	PoolTimeout time.Duration
	// PoolSize is the number of connections; default go-redis's, 10 per
	// GOMAXPROCS.
	PoolSize int
	// MaxRetries is how often a failed command is retried; default 1, and
	// -1 means never.
	MaxRetries int
}

// Defaults of ClientOptions.
const (
	DefaultDialTimeout  = 500 * time.Millisecond
	DefaultReadTimeout  = 500 * time.Millisecond
	DefaultWriteTimeout = 500 * time.Millisecond
	DefaultPoolTimeout  = time.Second
	DefaultMaxRetries   = 1
)

// protocol is the RESP version the clients speak: RESP2. Nothing here
// needs RESP3, and with it go-redis looks for pending push notifications
// before every command, which took about 5% of the CPU of a check under
// load (pprof of .ci/bench.sh).
const protocol = 2

// NewClient answers a client for a redis://, rediss:// (TLS) or unix:// URL,
// for example redis://:password@127.0.0.1:6379/0, with the bounds of o. It
// does not connect: the first command does, and Store.Ping checks it.
func NewClient(rawURL string, o ClientOptions) (goredis.UniversalClient, error) {
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		// net/url's errors quote the whole URL, password included.
		if urlErr, ok := errors.AsType[*url.Error](err); ok {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("redis: parse url: %w", err)
	}
	opts.DialTimeout = orDefault(o.DialTimeout, DefaultDialTimeout)
	opts.ReadTimeout = orDefault(o.ReadTimeout, DefaultReadTimeout)
	opts.WriteTimeout = orDefault(o.WriteTimeout, DefaultWriteTimeout)
	opts.PoolTimeout = orDefault(o.PoolTimeout, DefaultPoolTimeout)
	opts.MaxRetries = orDefault(o.MaxRetries, DefaultMaxRetries)
	if o.PoolSize > 0 {
		opts.PoolSize = o.PoolSize
	}
	// One dial attempt per command attempt: MaxRetries already retries, and
	// go-redis would otherwise dial 5 times with 100 ms pauses.
	opts.DialerRetries = 1
	opts.MinRetryBackoff = 8 * time.Millisecond
	opts.MaxRetryBackoff = 64 * time.Millisecond
	// A request's deadline also bounds its Redis commands.
	opts.ContextTimeoutEnabled = true
	if opts.Protocol == 0 { // no ?protocol= in the URL
		opts.Protocol = protocol
	}
	return goredis.NewClient(opts), nil
}

// Topology names a Redis deployment of several servers: a master watched
// by Sentinels when MasterName is set, else a Redis Cluster. A single
// server is named by a URL instead (NewClient).
type Topology struct {
	// Addrs are host:port addresses: the Sentinels with MasterName, else
	// some nodes of the Cluster (the client discovers the others).
	Addrs []string
	// MasterName is the name the Sentinels monitor the master under.
	MasterName string
	// Username and Password authenticate to the Redis servers (ACL user,
	// or requirepass with an empty Username).
	Username string
	Password string
	// SentinelPassword authenticates to the Sentinels (their requirepass).
	SentinelPassword string
	// TLS connects with TLS 1.2 or later, verifying the servers'
	// certificates against the system roots.
	TLS bool
}

// NewUniversalClient answers a client for t with the bounds of o: a
// Sentinel-backed client that follows failovers, or a Cluster client that
// routes each command to the master of its key's hash slot. It does not
// connect: the first command does. Errors never quote a password.
func NewUniversalClient(t Topology, o ClientOptions) (goredis.UniversalClient, error) {
	if len(t.Addrs) == 0 {
		return nil, errors.New("redis: no addresses")
	}
	for _, addr := range t.Addrs {
		if err := checkHostPort(addr); err != nil {
			return nil, fmt.Errorf("redis: address %q: %w", addr, err)
		}
	}
	if t.SentinelPassword != "" && t.MasterName == "" {
		return nil, errors.New("redis: a Sentinel password without a master name")
	}
	opts := &goredis.UniversalOptions{
		Addrs:            t.Addrs,
		MasterName:       t.MasterName,
		IsClusterMode:    t.MasterName == "",
		Username:         t.Username,
		Password:         t.Password,
		SentinelPassword: t.SentinelPassword,
		DialTimeout:      orDefault(o.DialTimeout, DefaultDialTimeout),
		ReadTimeout:      orDefault(o.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:     orDefault(o.WriteTimeout, DefaultWriteTimeout),
		PoolTimeout:      orDefault(o.PoolTimeout, DefaultPoolTimeout),
		MaxRetries:       orDefault(o.MaxRetries, DefaultMaxRetries),
		PoolSize:         o.PoolSize,
		// As in NewClient: one dial per attempt, short back-offs, and the
		// request's deadline bounds its commands.
		DialerRetries:         1,
		MinRetryBackoff:       8 * time.Millisecond,
		MaxRetryBackoff:       64 * time.Millisecond,
		ContextTimeoutEnabled: true,
		Protocol:              protocol,
	}
	if t.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return goredis.NewUniversalClient(opts), nil
}

// checkHostPort accepts host:port with a non-empty host and a port from 1
// to 65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return errors.New("want host:port")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return errors.New("want a port from 1 to 65535")
	}
	return nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
