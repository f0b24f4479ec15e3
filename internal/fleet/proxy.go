package fleet

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Proxy is a round-robin HTTP proxy in front of the instances, as a load
// balancer is: it checks every instance's /readyz ten times a second and
// sends requests to the ready ones (to all when none is), and a request
// whose connection an instance refuses (it is stopping, or stopped) goes to
// the next one. Any other failure is answered 502 and counted: the request
// may have reached the instance.
type Proxy struct {
	Addr string

	srv       *http.Server
	transport *http.Transport
	stop      chan struct{}
	polling   sync.WaitGroup

	mu       sync.Mutex
	backends []Backend
	ready    map[string]bool // by public address
	next     int

	retried atomic.Int64 // connections refused and sent elsewhere
	failed  atomic.Int64 // requests answered 502
}

// Backend is an instance behind the proxy: its public and ops addresses.
type Backend struct{ Public, Ops string }

// readyInterval is how often the proxy checks /readyz.
const readyInterval = 100 * time.Millisecond

// NewProxy starts a proxy in front of backends.
func NewProxy(backends []Backend) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.DialContext = (&net.Dialer{Timeout: 2 * time.Second}).DialContext
	p := &Proxy{Addr: ln.Addr().String(), transport: tr, backends: append([]Backend(nil), backends...),
		ready: map[string]bool{}, stop: make(chan struct{})}
	for _, b := range backends {
		p.ready[b.Public] = true
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	p.polling.Add(1)
	go func() { defer p.polling.Done(); p.poll() }()
	return p, nil
}

// poll keeps ready up to date.
func (p *Proxy) poll() {
	client := &http.Client{Transport: ownTransport, Timeout: readyInterval}
	t := time.NewTicker(readyInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		backends := append([]Backend(nil), p.backends...)
		p.mu.Unlock()
		for _, b := range backends {
			ok := false
			if res, err := client.Get("http://" + b.Ops + "/readyz"); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close() // the body is read; nothing to report
				ok = res.StatusCode == http.StatusOK
			}
			p.mu.Lock()
			p.ready[b.Public] = ok
			p.mu.Unlock()
		}
	}
}

// URL answers the proxy's base URL.
func (p *Proxy) URL() string { return "http://" + p.Addr }

// CloseIdle closes the proxy's idle connections to the instances.
func (p *Proxy) CloseIdle() { p.transport.CloseIdleConnections() }

// Close stops the proxy.
func (p *Proxy) Close() error {
	close(p.stop)
	p.polling.Wait()
	p.transport.CloseIdleConnections()
	return p.srv.Close()
}

// Retried answers how many refused connections were sent to another
// instance; Failed how many requests were answered 502.
func (p *Proxy) Retried() int64 { return p.retried.Load() }

// Failed answers how many requests the proxy answered 502.
func (p *Proxy) Failed() int64 { return p.failed.Load() }

// pick answers the instances to try in turn: the ready ones, from the
// next in the rotation, then the others.
func (p *Proxy) pick() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.backends)
	var ready, others []string
	for i := range n {
		b := p.backends[(p.next+i)%n].Public
		if p.ready[b] {
			ready = append(ready, b)
		} else {
			others = append(others, b)
		}
	}
	p.next = (p.next + 1) % n
	return append(ready, others...)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "proxy: reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var lastErr error
	// Every instance once, twice over: all may be refusing for a moment
	// during a rolling restart.
	for round := range 2 {
		if round > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		for _, backend := range p.pick() {
			out, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+backend+r.URL.RequestURI(), bytes.NewReader(body))
			out.Header = r.Header.Clone()
			out.Header.Del("Connection")
			res, err := p.transport.RoundTrip(out)
			if err != nil && r.Context().Err() != nil {
				return // the client went away
			}
			if err != nil {
				lastErr = err
				if errors.Is(err, syscall.ECONNREFUSED) {
					p.retried.Add(1)
					continue
				}
				p.failed.Add(1)
				http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
				return
			}
			for k, v := range res.Header {
				w.Header()[k] = v
			}
			// Hop-by-hop: the instance closing its connection to the proxy
			// says nothing of the client's connection.
			w.Header().Del("Connection")
			w.Header().Del("Keep-Alive")
			w.WriteHeader(res.StatusCode)
			_, _ = io.Copy(w, res.Body)
			_ = res.Body.Close() // copied to the client above; nothing left to report
			return
		}
	}
	p.failed.Add(1)
	http.Error(w, "proxy: every instance refused: "+lastErr.Error(), http.StatusBadGateway)
}
