package main

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// connLimits caps the connections a listener keeps open: in all, and per client IP address.
// A connection beyond either is closed as soon as it is accepted (before a byte is read), so a
// client opening sockets it never uses exhausts neither memory nor file descriptors, and the
// others still get in. The rate limiter and body_timeout see only requests, after this.
type connLimits struct {
	total, perClient int // the limits

	mu      sync.Mutex
	open    int                // connections open
	clients map[netip.Addr]int // connections open per client
	refused atomic.Uint64
}

func newConnLimits(total, perClient int) *connLimits {
	return &connLimits{total: total, perClient: perClient, clients: make(map[netip.Addr]int)}
}

// listener wraps ln with the limits.
func (l *connLimits) listener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, l: l}
}

// Refused counts connections closed for a limit.
func (l *connLimits) Refused() uint64 { return l.refused.Load() }

// Open is the number of connections open now.
func (l *connLimits) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// take counts a new connection from key, or reports that a limit is reached.
func (l *connLimits) take(key netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.total || l.clients[key] >= l.perClient {
		return false
	}
	l.open++
	l.clients[key]++
	return true
}

func (l *connLimits) give(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.clients[key]--; l.clients[key] <= 0 {
		delete(l.clients, key)
	}
}

type limitedListener struct {
	net.Listener
	l *connLimits
}

// Accept returns the next connection within the limits, closing those beyond them.
func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientAddrKey(c.RemoteAddr().String())
		if ll.l.take(key) {
			return &limitedConn{Conn: c, l: ll.l, key: key}, nil
		}
		ll.l.refused.Add(1)
		_ = c.Close()
	}
}

// limitedConn gives its place back when closed (once, however often Close is called).
type limitedConn struct {
	net.Conn
	l    *connLimits
	key  netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.give(c.key) })
	return c.Conn.Close()
}
