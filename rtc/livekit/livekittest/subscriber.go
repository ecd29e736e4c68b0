package livekittest

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	protoLogger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
)

// Packet is an RTP packet a subscriber received.
type Packet struct {
	Kind      string // "video" or "audio"
	Arrival   time.Time
	Timestamp uint32
	Payload   []byte
}

// Subscriber is a participant that subscribes to every track of a room and records the
// packets, the publications of the tracks it saw come and go, and the other participants'
// attributes.
type Subscriber struct {
	room *lksdk.Room

	mu        sync.Mutex
	packets   []Packet
	published map[string]bool              // track sid -> published now
	attrs     map[string]map[string]string // identity -> attributes
	changed   chan struct{}
}

// Subscribe joins room on s as identity, subscribed to everything, until the test ends.
func Subscribe(tb testing.TB, s *Server, room, identity string) *Subscriber {
	tb.Helper()
	sub := &Subscriber{published: map[string]bool{}, attrs: map[string]map[string]string{}, changed: make(chan struct{}, 1)}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(t *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		sub.note(func() { sub.published[pub.SID()] = true })
		go sub.read(t)
	}
	cb.OnTrackUnpublished = func(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		sub.note(func() { sub.published[pub.SID()] = false })
	}
	cb.OnAttributesChanged = func(changed map[string]string, p lksdk.Participant) {
		sub.note(func() { sub.attrs[p.Identity()] = maps.Clone(p.Attributes()) })
	}
	cb.OnParticipantConnected = func(rp *lksdk.RemoteParticipant) {
		sub.note(func() { sub.attrs[rp.Identity()] = maps.Clone(rp.Attributes()) })
	}
	at := auth.NewAccessToken(Key, Secret)
	at.SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: room}).SetIdentity(identity).SetValidFor(time.Hour)
	token, err := at.ToJWT()
	if err != nil {
		tb.Fatal(err)
	}
	r, err := lksdk.ConnectToRoomWithToken(s.URL, token, cb, lksdk.WithAutoSubscribe(true), lksdk.WithLogger(protoLogger.GetDiscardLogger()))
	if err != nil {
		tb.Fatalf("livekittest: subscriber %s joins %s: %v", identity, room, err)
	}
	sub.room = r
	for _, rp := range r.GetRemoteParticipants() {
		sub.note(func() { sub.attrs[rp.Identity()] = maps.Clone(rp.Attributes()) })
	}
	tb.Cleanup(r.Disconnect)
	return sub
}

func (s *Subscriber) note(f func()) {
	s.mu.Lock()
	f()
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *Subscriber) read(t *webrtc.TrackRemote) {
	kind := t.Kind().String()
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		pk := Packet{Kind: kind, Arrival: time.Now(), Timestamp: p.Timestamp, Payload: slices.Clone(p.Payload)}
		s.note(func() { s.packets = append(s.packets, pk) })
	}
}

// Packets returns the packets received so far.
func (s *Subscriber) Packets() []Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.packets)
}

// Published counts the tracks published now, among those the subscriber was given.
func (s *Subscriber) Published() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.published {
		if p {
			n++
		}
	}
	return n
}

// Attributes returns a participant's attributes as last seen.
func (s *Subscriber) Attributes(identity string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.attrs[identity])
}

// WaitFor waits up to timeout until cond holds.
func (s *Subscriber) WaitFor(timeout time.Duration, what string, cond func(*Subscriber) bool) error {
	deadline := time.After(timeout)
	for !cond(s) {
		select {
		case <-s.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return fmt.Errorf("livekittest: %s: not within %s", what, timeout)
		}
	}
	return nil
}

// Receiving is a WaitFor condition: packets of kind arrived after since.
func Receiving(kind string, since time.Time) func(*Subscriber) bool {
	return func(s *Subscriber) bool {
		for _, p := range s.Packets() {
			if p.Kind == kind && p.Arrival.After(since) {
				return true
			}
		}
		return false
	}
}
