package mqtt

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// DefaultEmbeddedAddr is where the simulated board's embedded broker listens.
const DefaultEmbeddedAddr = "127.0.0.1:1883"

// EmbeddedBroker is an MQTT broker inside the process (mochi-mqtt), for the simulated board
// when no broker is configured: `make run` is then controllable with mosquitto_pub at once. It
// listens on loopback only and lets every local client in (no credentials, no ACL), with
// retained messages, wills and persistent sessions kept in memory.
type EmbeddedBroker struct {
	addr string
	log  *slog.Logger

	mu     sync.Mutex
	srv    *mochi.Server
	ln     *listeners.TCP
	closed bool
}

// NewEmbeddedBroker returns a broker for addr (host:port; the host must be a loopback
// address or "localhost"; port 0 picks one). It starts nothing: Start listens.
func NewEmbeddedBroker(addr string, log *slog.Logger) (*EmbeddedBroker, error) {
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: address %q: want host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("mqtt: embedded broker: address %q: it has no authentication, so it listens on loopback only", addr)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EmbeddedBroker{addr: addr, log: log}, nil
}

// Start listens and serves in the background until Close.
func (b *EmbeddedBroker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("mqtt: embedded broker: closed")
	}
	if b.srv != nil {
		return errors.New("mqtt: embedded broker: already started")
	}
	srv := mochi.New(&mochi.Options{Logger: b.log, InlineClient: false})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "loopback", Address: b.addr})
	if err := srv.AddListener(ln); err != nil { // binds
		return fmt.Errorf("mqtt: embedded broker: listen %s: %w", b.addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return fmt.Errorf("mqtt: embedded broker: %w", err)
	}
	b.srv, b.ln = srv, ln
	b.log.Info("embedded MQTT broker listening", "addr", ln.Address())
	return nil
}

// Addr is the address the broker listens on (with the port it picked), or the configured one
// before Start.
func (b *EmbeddedBroker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln != nil {
		return b.ln.Address()
	}
	return b.addr
}

// URL is the broker's URL, mqtt://host:port.
func (b *EmbeddedBroker) URL() string { return "mqtt://" + b.Addr() }

// Close disconnects every client and stops listening. It is idempotent.
func (b *EmbeddedBroker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.srv == nil {
		return nil
	}
	return b.srv.Close()
}
