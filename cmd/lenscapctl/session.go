package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/mqtt"
)

// retainedWait bounds the wait for the broker's retained messages when the marker that ends
// them does not come back (an ACL that forbids it).
const retainedWait = 500 * time.Millisecond

// known is what the broker knows of a device: its retained availability and state.
type known struct {
	ID           string
	Availability string          // "online", "offline" or "" (none retained)
	State        json.RawMessage // nil when none is retained
	Groups       []string
}

// session is lenscapctl's connection to the broker and what it received. paho's handler only
// records messages under mu and signals changed.
type session struct {
	pc     paho.Client
	topics mqtt.Topics
	id     string // client id
	broker string // redacted URL

	mu      sync.Mutex
	devices map[string]*known
	want    string              // the id of the command in flight
	acks    map[string]mqtt.Ack // its first ack, by device
	marker  string              // the marker payload awaited
	marked  bool
	changed chan struct{} // closed and replaced on every change
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// connect connects to the broker with a clean session.
// connect connects to the broker; configure, when given, adjusts the client's options last (its
// id, its will, its handlers).
func connect(ctx context.Context, cfg config, configure ...func(*session, *paho.ClientOptions)) (*session, error) {
	opts, err := mqtt.BrokerOptions(cfg.MQTT, cfg.tls())
	if err != nil {
		return nil, err
	}
	u, _ := mqtt.ParseBrokerURL(cfg.MQTT)
	s := &session{
		topics:  mqtt.Topics{Prefix: cfg.TopicPrefix},
		id:      "lenscapctl-" + randomHex(6),
		broker:  u.Redacted(),
		devices: make(map[string]*known),
		acks:    make(map[string]mqtt.Ack),
		changed: make(chan struct{}),
	}
	opts.SetClientID(s.id).SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false)
	opts.SetConnectTimeout(cfg.Timeout).SetWriteTimeout(cfg.Timeout).SetOrderMatters(true)
	opts.SetDefaultPublishHandler(s.onMessage)
	for _, c := range configure {
		c(s, opts)
	}
	s.pc = paho.NewClient(opts)
	if err := wait(ctx, s.pc.Connect(), cfg.Timeout); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.broker, err)
	}
	return s, nil
}

func (s *session) close() { s.pc.Disconnect(100) }

// wait waits for a paho token, ctx or the timeout.
func wait(ctx context.Context, t paho.Token, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("no answer from the broker within %s", timeout)
	}
}

// subscribe subscribes at QoS 1 and waits for the broker's answer.
func (s *session) subscribe(ctx context.Context, timeout time.Duration, filters ...string) error {
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = 1
	}
	t := s.pc.SubscribeMultiple(m, nil)
	if err := wait(ctx, t, timeout); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if st, ok := t.(*paho.SubscribeToken); ok {
		for topic, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("the broker refused the subscription to %s: does the account's ACL allow it?", topic)
			}
		}
	}
	return nil
}

func (s *session) publish(ctx context.Context, timeout time.Duration, topic string, payload []byte) error {
	if err := wait(ctx, s.pc.Publish(topic, 1, false, payload), timeout); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// onMessage is paho's handler: it records the message and returns.
func (s *session) onMessage(_ paho.Client, m paho.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	if m.Topic() == s.markerTopic() {
		if string(m.Payload()) == s.marker {
			s.marked = true
		}
		return
	}
	id, leaf, ok := s.topics.Device(m.Topic())
	if !ok {
		return
	}
	switch leaf {
	case "availability":
		s.deviceLocked(id).Availability = string(m.Payload())
	case "state":
		d := s.deviceLocked(id)
		if len(m.Payload()) == 0 { // a cleared retained state
			d.State, d.Groups = nil, nil
			return
		}
		var st struct {
			Groups []string `json:"groups"`
		}
		if json.Unmarshal(m.Payload(), &st) == nil {
			d.State = json.RawMessage(m.Payload())
			d.Groups = st.Groups
		}
	case "ack":
		var a mqtt.Ack
		if json.Unmarshal(m.Payload(), &a) != nil || a.ID == "" || a.ID != s.want {
			return
		}
		if _, seen := s.acks[id]; !seen {
			s.acks[id] = a
		}
	}
}

func (s *session) deviceLocked(id string) *known {
	d := s.devices[id]
	if d == nil {
		d = &known{ID: id}
		s.devices[id] = d
	}
	return d
}

func (s *session) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// markerTopic is a topic of this client's own, which no device topic filter matches.
func (s *session) markerTopic() string { return s.topics.Prefix + "/ctl/" + s.id + "/marker" }

// loadRetained subscribes to the retained state and availability of one device (id) or of
// all (id == ""), and waits until the broker has sent them: until a marker published after
// the subscription comes back, or retainedWait.
func (s *session) loadRetained(ctx context.Context, timeout time.Duration, id string, more ...string) error {
	filters := []string{s.topics.Every("state"), s.topics.Every("availability"), s.markerTopic()}
	if id != "" {
		filters = []string{s.topics.State(id), s.topics.Availability(id), s.markerTopic()}
	}
	if err := s.subscribe(ctx, timeout, append(filters, more...)...); err != nil {
		return err
	}
	s.mu.Lock()
	s.marker = "marker-" + randomHex(4)
	marker := s.marker
	s.mu.Unlock()
	if err := s.publish(ctx, timeout, s.markerTopic(), []byte(marker)); err != nil {
		return err
	}
	_ = s.waitUntil(ctx, retainedWait, func() bool { return s.marked }, nil)
	return ctx.Err()
}

// waitUntil waits until cond (called with mu held) holds, calling progress (with mu held)
// after every change; it returns false at the timeout.
func (s *session) waitUntil(ctx context.Context, timeout time.Duration, cond func() bool, progress func()) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if progress != nil {
			progress()
		}
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// snapshot returns the devices seen, sorted by id.
func (s *session) snapshot() []known {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]known, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b known) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

var errNotAllOK = errors.New("not every device acknowledged ok")
