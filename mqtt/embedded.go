package mqtt

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// DefaultEmbeddedAddr is where the simulated board's embedded broker listens.
const DefaultEmbeddedAddr = "127.0.0.1:1883"

// EmbeddedBroker is an MQTT broker inside the process (mochi-mqtt), for the simulated board
// when no broker is configured. It listens on loopback only, with retained messages, wills and
// persistent sessions kept in memory. With EmbeddedCamera it authenticates clients and keeps
// each to its role: only the camera's account may use the camera's client id and publish its
// state, only the operator's (EmbeddedOperator) may publish commands, and anonymous local
// clients may only watch. Without it every local client may do anything (for tests and
// tools that start their own broker). Its own process may publish and subscribe without a
// network client and without any check (Publish, Subscribe): the emulated board's test
// (cmd/lenscap-hil) watches and commands lenscap that way.
type EmbeddedBroker struct {
	addr string
	log  *slog.Logger
	auth *embeddedAuth // nil: every client may do anything

	mu     sync.Mutex
	srv    *mochi.Server
	ln     *listeners.TCP
	closed bool
	subs   int // inline subscriptions made, for their identifiers
}

// NewEmbeddedBroker returns a broker for addr (host:port; the host must be a loopback
// address or "localhost"; port 0 picks one), configured by opts (EmbeddedCamera,
// EmbeddedOperator, EmbeddedTopics). It starts nothing: Start listens.
func NewEmbeddedBroker(addr string, log *slog.Logger, opts ...EmbeddedOption) (*EmbeddedBroker, error) {
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("mqtt: embedded broker: address %q: want host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("mqtt: embedded broker: address %q: it listens on loopback only", addr)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var a embeddedAuth
	for _, o := range opts {
		o(&a)
	}
	auth, err := a.check()
	if err != nil {
		return nil, err
	}
	return &EmbeddedBroker{addr: addr, log: log, auth: auth}, nil
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
	srv := mochi.New(&mochi.Options{Logger: b.log, InlineClient: true}) // for Publish and Subscribe
	if err := srv.AddHook(&embeddedHook{auth: b.auth, log: b.log}, nil); err != nil {
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
	if b.auth == nil {
		b.log.Warn("embedded MQTT broker listening without authentication: any local process may command the camera", "addr", ln.Address())
	} else {
		b.log.Info("embedded MQTT broker listening", "addr", ln.Address(), "camera", b.auth.camera.user, "operator", b.auth.operator != nil)
	}
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

// URL is the broker's URL, mqtt://host:port, without credentials.
func (b *EmbeddedBroker) URL() string { return "mqtt://" + b.Addr() }

// CameraURL is the URL the camera's client connects with: URL with the camera's account
// (EmbeddedCamera), or URL when the broker has none. It holds the password: log it redacted.
func (b *EmbeddedBroker) CameraURL() string {
	if b.auth == nil {
		return b.URL()
	}
	u := url.URL{Scheme: "mqtt", Host: b.Addr(), User: url.UserPassword(b.auth.camera.user, b.auth.camera.password)}
	return u.String()
}

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

// errNotStarted is returned by Publish and Subscribe before Start or after Close.
var errNotStarted = errors.New("mqtt: embedded broker: not started, or closed")

// server is the running broker, or errNotStarted.
func (b *EmbeddedBroker) server() (*mochi.Server, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil || b.closed {
		return nil, errNotStarted
	}
	return b.srv, nil
}

// Publish delivers a message from the broker's own process, as a client publishing it would:
// to every subscriber, kept as the topic's retained message when retain is set. qos is 0, 1
// or 2. It fails before Start and after Close.
func (b *EmbeddedBroker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	if err := srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("mqtt: embedded broker: publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe calls handler with every message published, from now on, on a topic matching
// filter ("lenscap/+/state", "#"); a retained message matching filter is delivered at once.
// handler gets its own copy of the payload. It is called on the goroutine of the client that
// published (or of Publish), so it must not block: hand the message to a channel or record
// it under a lock. The subscription lasts until Close. It fails before Start and after Close.
func (b *EmbeddedBroker) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.subs++
	id := b.subs
	b.mu.Unlock()
	err = srv.Subscribe(filter, id, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		handler(pk.TopicName, append([]byte(nil), pk.Payload...))
	})
	if err != nil {
		return fmt.Errorf("mqtt: embedded broker: subscribe %s: %w", filter, err)
	}
	return nil
}
