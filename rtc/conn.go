package rtc

import (
	"errors"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Errors named after the DOMExceptions the web platform throws.
var (
	// ErrInvalidState: the connection is closed.
	ErrInvalidState = errors.New("rtc: InvalidStateError: connection is closed")
	// ErrInvalidAccess: the sender was not created by this connection.
	ErrInvalidAccess = errors.New("rtc: InvalidAccessError: sender was not created by this connection")
)

// Sender is an RTCRtpSender as the web platform has it: it stays in its connection's list
// after removeTrack, with no track. One Sender per m-section: its transceiver is reused by
// every later addTrack of the same kind.
type Sender struct {
	conn  *Conn
	tr    *webrtc.RTPTransceiver
	pion  *webrtc.RTPSender // nil while the sender has no track
	track *fanout           // nil after removeTrack
}

// Track is the sender's track, or nil after removeTrack.
func (s *Sender) Track() webrtc.TrackLocal {
	s.conn.mu.Lock()
	defer s.conn.mu.Unlock()
	if s.track == nil {
		return nil
	}
	return s.track
}

// Mid is the sender's transceiver's mid ("" before the first offer).
func (s *Sender) Mid() string { return s.tr.Mid() }

// Conn is an RTCPeerConnection with the web platform's removeTrack on top of pion's: pion
// drops a removed sender from GetSenders and fails a second RemoveTrack; the spec keeps the
// sender with a null track and makes a second call a no-op. Conn keeps its own senders, one
// per kind, created once, so the number of m-sections never grows.
type Conn struct {
	pc *webrtc.PeerConnection

	mu      sync.Mutex
	senders []*Sender
	closed  bool
	// needed is the negotiation-needed flag; pending is a change made while signalling was
	// not stable, which sets the flag when it becomes stable (the spec's "update the
	// negotiation-needed flag").
	needed, pending bool
	// unnegotiated marks senders whose removal has not been through an offer/answer yet:
	// pion reuses a transceiver for addTrack only after that.
	unnegotiated map[*Sender]bool
}

// newConn wraps pc, creating one transceiver per kind: sendonly with the kind's fanout when
// the kind is live, recvonly (sending nothing) when it is not, so that lifting privacy later
// adds the track on the same m-section.
func newConn(pc *webrtc.PeerConnection, kinds []*fanout, live []bool) (*Conn, error) {
	c := &Conn{pc: pc, unnegotiated: make(map[*Sender]bool)}
	for i, f := range kinds {
		s := &Sender{conn: c}
		var err error
		if live[i] {
			s.tr, err = pc.AddTransceiverFromTrack(f, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err == nil {
				s.pion, s.track = s.tr.Sender(), f
			}
		} else {
			s.tr, err = pc.AddTransceiverFromKind(f.pion, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		}
		if err != nil {
			return nil, fmt.Errorf("rtc: add %s transceiver: %w", f.kind, err)
		}
		c.senders = append(c.senders, s)
	}
	return c, nil
}

// Senders returns the connection's senders, including those without a track.
func (c *Conn) Senders() []*Sender {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Sender(nil), c.senders...)
}

// SenderFor returns the sender whose transceiver carries f's kind.
func (c *Conn) senderFor(f *fanout) *Sender {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.senders {
		if s.tr.Kind() == f.pion {
			return s
		}
	}
	return nil
}

// NegotiationNeeded reports the negotiation-needed flag.
func (c *Conn) NegotiationNeeded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.needed
}

// RemoveTrack is RTCPeerConnection.removeTrack(sender), by the spec's steps: a closed
// connection throws InvalidStateError; a sender of another connection InvalidAccessError; a
// sender that is not in the list or already has no track is left as it is; otherwise the
// sender stops sending at once, keeps its place with no track, its transceiver no longer
// sends (sendonly becomes inactive), and negotiation is needed once signalling is stable.
func (c *Conn) RemoveTrack(s *Sender) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return ErrInvalidState
	}
	if s == nil || s.conn != c {
		return ErrInvalidAccess
	}
	if s.track == nil || s.pion == nil {
		return nil
	}
	if err := c.pc.RemoveTrack(s.pion); err != nil {
		return fmt.Errorf("rtc: removeTrack: %w", err)
	}
	s.pion, s.track = nil, nil
	c.unnegotiated[s] = true
	c.markNeededLocked()
	return nil
}

// canAdd reports whether a track of f's kind can be added now without creating a new
// m-section: signalling is stable and the sender's last removal has been negotiated.
func (c *Conn) canAdd(f *fanout) bool {
	s := c.senderFor(f)
	c.mu.Lock()
	defer c.mu.Unlock()
	return s != nil && !c.closed && !c.unnegotiated[s] && c.pc.SignalingState() == webrtc.SignalingStateStable
}

// AddTrack is addTrack on the kind's existing transceiver; it does nothing when the sender
// already has the track. Callers check canAdd first: pion would otherwise add an m-section.
func (c *Conn) AddTrack(f *fanout) error {
	s := c.senderFor(f)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrInvalidState
	}
	if s == nil {
		return fmt.Errorf("rtc: addTrack: no %s transceiver", f.kind)
	}
	if s.track == f {
		return nil
	}
	n := len(c.pc.GetTransceivers())
	ps, err := c.pc.AddTrack(f)
	if err != nil {
		return fmt.Errorf("rtc: addTrack %s: %w", f.kind, err)
	}
	if len(c.pc.GetTransceivers()) != n || ps != s.tr.Sender() {
		// pion chose a new m-section: the invariant that m-sections never grow is broken.
		_ = c.pc.RemoveTrack(ps)
		return fmt.Errorf("rtc: addTrack %s: transceiver not reusable yet", f.kind)
	}
	s.pion, s.track = ps, f
	c.markNeededLocked()
	return nil
}

// needNegotiation sets the negotiation-needed flag (for the first offer of a connection).
func (c *Conn) needNegotiation() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markNeededLocked()
}

func (c *Conn) markNeededLocked() {
	if c.pc.SignalingState() == webrtc.SignalingStateStable {
		c.needed = true
	} else {
		c.pending = true
	}
}

// offered records that an offer was created and set: it carries every change made so far.
func (c *Conn) offered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.needed, c.pending = false, false
	for s := range c.unnegotiated {
		c.unnegotiated[s] = false // settled once this offer's answer is applied
	}
}

// answered records that the answer to the last offer was applied: removals made before that
// offer are negotiated, and changes made meanwhile now need a negotiation.
func (c *Conn) answered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, v := range c.unnegotiated {
		if !v {
			delete(c.unnegotiated, s)
		}
	}
	if c.pending {
		c.needed, c.pending = true, false
	}
}

// Close closes the connection; later calls to RemoveTrack fail with ErrInvalidState.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.pc.Close()
}
