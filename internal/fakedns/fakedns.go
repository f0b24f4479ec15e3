// Package fakedns is a resolver for tests: it answers the names it is
// given with chosen addresses, and nothing else, without a network.
package fakedns

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// Resolver returns a *net.Resolver answering each name of hosts (without
// the final dot) with its address; other names do not exist.
func Resolver(hosts map[string]netip.Addr) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			go serve(server, hosts)
			return client, nil
		},
	}
}

// serve answers length-prefixed queries on conn (the stream form the Go
// resolver uses on a connection that is not a PacketConn).
func serve(conn net.Conn, hosts map[string]netip.Addr) {
	defer func() { _ = conn.Close() }()
	for {
		var n [2]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(conn, msg); err != nil {
			return
		}
		out, err := answer(msg, hosts)
		if err != nil {
			return
		}
		binary.BigEndian.PutUint16(n[:], uint16(len(out))) // #nosec G115 -- a DNS message is under 64 KiB
		if _, err := conn.Write(append(n[:], out...)); err != nil {
			return
		}
	}
}

func answer(msg []byte, hosts map[string]netip.Addr) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	addr, ok := hosts[strings.TrimSuffix(q.Name.String(), ".")]
	if !ok {
		b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError})
	}
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch {
	case !ok:
	case q.Type == dnsmessage.TypeA && addr.Is4():
		if err := b.AResource(rh, dnsmessage.AResource{A: addr.As4()}); err != nil {
			return nil, err
		}
	case q.Type == dnsmessage.TypeAAAA && addr.Is6():
		if err := b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: addr.As16()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
