package mqtt

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MQTT signalling: a viewer that can reach the fleet's broker, and nothing else of the camera,
// asks it for a WebRTC session there (DESIGN.md, "MQTT signalling"). Each session has two
// topics, named by the viewer's account and a session id of its choosing:
//
//	<prefix>/<id>/session/<account>/<session>/viewer   the viewer's messages (hello first)
//	<prefix>/<id>/session/<account>/<session>/camera   the camera's
//
// so that a broker ACL can let an account write only to cameras it may watch and read only its
// own sessions. The camera follows <prefix>/<id>/session/+/+/viewer at QoS 0: a persistent
// camera session never queues stale requests for when it comes back.

// Session topic leaves: who writes the topic.
const (
	LeafViewer = "viewer"
	LeafCamera = "camera"
)

// Session is the topic of one session's messages written by leaf (LeafViewer, LeafCamera).
func (t Topics) Session(id, account, session, leaf string) string {
	return t.prefix() + "/" + id + "/session/" + account + "/" + session + "/" + leaf
}

// Sessions is the filter of every viewer message to device id.
func (t Topics) Sessions(id string) string { return t.Session(id, "+", "+", LeafViewer) }

// SessionOf splits a session topic of device id into its account, session and leaf.
func (t Topics) SessionOf(id, topic string) (account, session, leaf string, ok bool) {
	rest, ok := strings.CutPrefix(topic, t.prefix()+"/"+id+"/session/")
	if !ok {
		return "", "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !sessionName.MatchString(parts[0]) || !sessionName.MatchString(parts[1]) {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// sessionName is what an account or a session id may be: a topic level with no wildcard, kept
// to characters that need no escaping in logs and ACLs.
var sessionName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// SignalSession is one viewer's session through the broker: it implements rtc.SignalConn.
type SignalSession struct {
	// Account and ID are the session's topic levels: the viewer's account (as the broker's ACL
	// let it write) and its session id.
	Account, ID string
	// Hello is the session's first message, the viewer's hello (it carries the credential).
	Hello []byte

	in    chan []byte
	topic string // the camera's topic of this session
	pub   func(topic string, payload []byte) paho.Token
	end   context.CancelFunc
}

// Send publishes one message to the viewer (QoS 1) and waits for the broker to take it.
func (s *SignalSession) Send(ctx context.Context, msg []byte) error {
	t := s.pub(s.topic, msg)
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return fmt.Errorf("mqtt: signalling %s/%s: %w", s.Account, s.ID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt: signalling %s/%s: %w", s.Account, s.ID, ctx.Err())
	}
}

// Recv yields the viewer's messages after the hello, in order. It is never closed: the
// session's context ends when the session is dropped.
func (s *SignalSession) Recv() <-chan []byte { return s.in }

// SignalStats count the signalling sessions.
type SignalStats struct {
	Active  int    // sessions being served
	Started uint64 // sessions started by a hello
	// Refused counts hellos refused before a session was made (too many sessions), and
	// messages dropped: for no session, too large, or beyond a session's queue (which ends it).
	Refused, Dropped uint64
}

// signalQueue bounds the messages waiting for one session's goroutine; beyond it the session
// is ended (a viewer flooding its own session loses it, no one else's).
const signalQueue = 64

// signalling follows the session topics of one device and serves each session on a goroutine
// of its own; paho's handler only routes.
type signalling struct {
	cfg    SignalConfig
	topics Topics
	id     string

	mu       sync.Mutex
	ctx      context.Context // Run's; nil before Run and after it ends
	pub      func(topic string, payload []byte) paho.Token
	sessions map[string]*SignalSession
	wg       sync.WaitGroup

	started, refused, dropped atomic.Uint64
}

// SignalConfig turns MQTT signalling on (Config.Signal).
type SignalConfig struct {
	// Serve serves one session until it is over; ctx ends when the session is dropped or the
	// client stops. It must tell the viewer (s.Send) why it refuses one.
	Serve func(ctx context.Context, s *SignalSession)
	// MaxSessions bounds the sessions, served or being set up; a hello beyond it is refused
	// with an error and a bye. Zero means 16.
	MaxSessions int
	// MaxMessageBytes bounds a viewer's message; a bigger one is refused. Zero means 64 KiB.
	MaxMessageBytes int
}

func newSignalling(cfg SignalConfig, topics Topics, id string) *signalling {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 16
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 64 << 10
	}
	return &signalling{cfg: cfg, topics: topics, id: id, sessions: make(map[string]*SignalSession)}
}

// start lets sessions be made, served until ctx ends, published with pub.
func (sg *signalling) start(ctx context.Context, pub func(string, []byte) paho.Token) {
	sg.mu.Lock()
	sg.ctx, sg.pub = ctx, pub
	sg.mu.Unlock()
}

// stop ends every session and waits up to wait for them (their byes go out meanwhile).
func (sg *signalling) stop(wait time.Duration) {
	sg.mu.Lock()
	sg.ctx = nil
	for _, s := range sg.sessions {
		s.end()
	}
	sg.mu.Unlock()
	done := make(chan struct{})
	go func() { sg.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

func (sg *signalling) stats() SignalStats {
	sg.mu.Lock()
	n := len(sg.sessions)
	sg.mu.Unlock()
	return SignalStats{Active: n, Started: sg.started.Load(), Refused: sg.refused.Load(), Dropped: sg.dropped.Load()}
}
