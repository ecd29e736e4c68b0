package rtc

import (
	"errors"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
	"github.com/pion/webrtc/v4"
)

// newTestConn is a Conn over a fresh pion connection, with a live track of each kind.
func newTestConn(t *testing.T) *Conn {
	t.Helper()
	var m webrtc.MediaEngine
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	var kinds []*fanout
	for _, k := range device.Kinds {
		kinds = append(kinds, newFanout(k, devicetest.DefaultCodec(k), time.Now()))
	}
	c, err := newConn(pc, kinds, []bool{true, true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRemoveTrackWithAnotherConnectionsSenderIsInvalidAccess(t *testing.T) {
	a, b := newTestConn(t), newTestConn(t)
	if err := a.RemoveTrack(b.Senders()[0]); !errors.Is(err, ErrInvalidAccess) {
		t.Errorf("removeTrack(another connection's sender) = %v, want InvalidAccessError", err)
	}
	if err := a.RemoveTrack(nil); !errors.Is(err, ErrInvalidAccess) {
		t.Errorf("removeTrack(nil) = %v, want InvalidAccessError", err)
	}
	if b.Senders()[0].Track() == nil {
		t.Error("the other connection's sender lost its track")
	}
}

func TestRemoveTrackKeepsTheSenderAndASecondCallHasNoEffect(t *testing.T) {
	c := newTestConn(t)
	s := c.Senders()[0]
	for i := range 2 {
		if err := c.RemoveTrack(s); err != nil {
			t.Fatalf("removeTrack #%d: %v", i+1, err)
		}
	}
	if got := c.Senders(); len(got) != 2 || got[0] != s || s.Track() != nil {
		t.Errorf("after removeTrack: %d senders, track %v; want the sender kept with no track", len(got), s.Track())
	}
	if !c.NegotiationNeeded() {
		t.Error("removeTrack on a stable connection did not make negotiation needed")
	}
}

func TestRemoveTrackOnAClosedConnectionIsInvalidState(t *testing.T) {
	c := newTestConn(t)
	if err := c.pc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveTrack(c.Senders()[0]); !errors.Is(err, ErrInvalidState) {
		t.Errorf("removeTrack on a closed connection = %v, want InvalidStateError", err)
	}
}
