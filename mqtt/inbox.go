package mqtt

import (
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/device"
)

// inboxLimit bounds the messages waiting for the client's goroutine. Commands are QoS 1, and a
// broker cannot have more than 65,535 QoS 1 messages unacknowledged on one session (packet ids
// have 16 bits), so commands reach this limit only with those of an earlier connection still
// waiting, whatever the broker's in-flight window (mosquitto's max_inflight_messages); QoS 0
// messages beyond it are dropped. A waiting message keeps its parsed command, not its payload:
// a few hundred bytes each.
const inboxLimit = 1 << 17

// inbound is a message from paho, handed to Run's goroutine. A command is parsed and checked
// on arrival, so that a cut's early gate is taken there.
type inbound struct {
	topic   string
	ours    bool      // on one of the command topics
	cmd     Command   // when ours: the command (only its ID when err is set)
	err     error     // when ours: why it is refused (parse, retain flag, exp); nil: none
	arrived time.Time // when paho handed it over: the change's At
	ack     func()    // sends the PUBACK
	release func()    // ends the early gate taken on arrival (set by inbox.put)
}

// cuts are the kinds the message's command makes private, if it is applied.
func (m inbound) cuts() []device.Kind {
	if !m.ours || m.err != nil {
		return nil
	}
	var ks []device.Kind
	for _, k := range device.Kinds {
		p := m.cmd.Video
		if k == device.KindAudio {
			p = m.cmd.Audio
		}
		if p != nil && *p {
			ks = append(ks, k)
		}
	}
	return ks
}

// onMessage is paho's handler for every message. It never blocks: it parses a command, takes
// the device's early gate for the kinds the command cuts (lock-free: no frame captured from
// now on reaches a viewer until the command has been applied or dropped), and queues it.
func (c *Client) onMessage(_ paho.Client, m paho.Message) {
	in := c.arrival(m.Topic(), m.Payload(), m.Retained(), c.cfg.Now(), m.Ack)
	c.inbox.put(in, func() func() {
		if ks := in.cuts(); len(ks) > 0 {
			return c.cfg.Device.Hold(in.arrived, ks...)
		}
		return func() {}
	})
}

// arrival makes the inbound of a message that arrived at at: a command on one of the command
// topics is parsed and checked (the retain flag, exp) at once.
func (c *Client) arrival(topic string, payload []byte, retained bool, at time.Time, ack func()) inbound {
	in := inbound{topic: topic, arrived: at, ack: ack, release: func() {}}
	if _, ours := c.filters[topic]; ours {
		in.ours = true
		in.cmd, in.err = ParseCommand(payload, c.cfg.MaxPayload)
		if in.err == nil {
			// exp is checked on arrival: a command is stale or not when it reaches the
			// device, not when its turn comes behind a flood.
			in.err = in.cmd.Check(retained, at)
		}
	}
	return in
}

// inbox is an unbounded-looking queue with a hard limit, so that paho's handler never blocks.
type inbox struct {
	mu      sync.Mutex
	msgs    []inbound
	dropped int
	closed  bool
	ready   chan struct{}
}

// put queues m and only then takes its early gate with hold. A message dropped (over the
// limit, or after close) takes none and is not acknowledged: the broker delivers it again
// after a reconnection.
func (b *inbox) put(m inbound, hold func() (release func())) {
	b.mu.Lock()
	switch {
	case b.closed:
	case len(b.msgs) >= inboxLimit:
		b.dropped++
	default:
		m.release = hold()
		b.msgs = append(b.msgs, m)
	}
	b.mu.Unlock()
	notify(b.ready)
}

// take returns up to limit waiting messages, oldest first, and how many were dropped since
// the last take; ready is signalled again when more are waiting.
func (b *inbox) take(limit int) ([]inbound, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.msgs), limit)
	msgs, dropped := b.msgs[:n:n], b.dropped
	if n == len(b.msgs) {
		b.msgs = nil
	} else {
		b.msgs = b.msgs[n:]
		notify(b.ready)
	}
	b.dropped = 0
	return msgs, dropped
}

// close drops the waiting messages (unacknowledged, so delivered again in the next session),
// ending their gates, and every message put after it.
func (b *inbox) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, m := range b.msgs {
		m.release()
	}
	b.msgs = nil
}
