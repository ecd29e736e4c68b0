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
	"golang.org/x/time/rate"
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
	// Admission is what SignalConfig.Admit made of the hello (the credential's holder).
	Admission any

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

// SignalStats count the signalling sessions and what was turned away.
type SignalStats struct {
	Active  int    // sessions being served
	Started uint64 // sessions started by an admitted hello
	// Refused counts admitted hellos turned away because MaxSessions sessions were open;
	// Unauthorized, hellos whose credential Admit refused; Limited, messages dropped unread
	// beyond an account's rate; Dropped, other messages dropped: retained, for no session, too
	// large, or beyond a session's queue (which ends it).
	Refused, Unauthorized, Limited, Dropped uint64
}

// signalQueue bounds the messages waiting for one session's goroutine; beyond it the session
// is ended (a viewer flooding its own session loses it, no one else's).
const signalQueue = 64

// SignalConfig turns MQTT signalling on (Config.Signal).
type SignalConfig struct {
	// Serve serves one admitted session until it is over; ctx ends when the session is dropped
	// or the client stops.
	Serve func(ctx context.Context, s *SignalSession)
	// Admit checks a hello's credential before its session takes a place, on paho's goroutine:
	// it must be quick and never block (a signature check). Its value is the session's
	// Admission; its error is told to the viewer. Nil admits every hello.
	Admit func(hello []byte) (any, error)
	// MaxSessions bounds the sessions; an admitted hello beyond it is refused with an error and
	// a bye. Zero means 16.
	MaxSessions int
	// MaxMessageBytes bounds a viewer's message; a bigger one is refused. Zero means 64 KiB.
	MaxMessageBytes int
	// Rate and Burst bound the messages of one viewer account (hellos included); beyond them
	// they are dropped unread, so that a flood costs the camera little. All accounts together
	// get MaxSessions times as much. Zero means 20 a second, 40 at once.
	Rate  rate.Limit
	Burst int
	// BrokerURL, when set, gives signalling a connection of its own (an account of its own,
	// with the same TLS settings): viewers then share nothing with the camera's commands, not
	// even the connection a flood would fill. Empty: the client's connection.
	BrokerURL string
}

// signalling follows the session topics of one device and serves each session on a goroutine
// of its own; paho's handler only routes, and replies go out from a goroutine of their own.
type signalling struct {
	cfg     SignalConfig
	topics  Topics
	id      string
	limits  *accountLimits
	replies chan reply

	mu       sync.Mutex
	ctx      context.Context // Run's; nil before Run and after it ends
	pub      func(topic string, payload []byte) paho.Token
	sessions map[string]*SignalSession
	wg       sync.WaitGroup

	started, refused, unauthorized, dropped atomic.Uint64
}

// reply is a message to a viewer with no session (why it has none), sent by replyLoop.
type reply struct{ topic, why string }

func newSignalling(cfg SignalConfig, topics Topics, id string) *signalling {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 16
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 64 << 10
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 20
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 40
	}
	return &signalling{cfg: cfg, topics: topics, id: id, sessions: make(map[string]*SignalSession),
		limits: newAccountLimits(cfg.Rate, cfg.Burst, cfg.MaxSessions), replies: make(chan reply, 64)}
}

// start lets sessions be made, served until ctx ends, published with pub.
func (sg *signalling) start(ctx context.Context, pub func(string, []byte) paho.Token) {
	sg.mu.Lock()
	sg.ctx, sg.pub = ctx, pub
	sg.mu.Unlock()
	sg.wg.Add(1)
	go sg.replyLoop(ctx, pub)
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
	return SignalStats{Active: n, Started: sg.started.Load(), Refused: sg.refused.Load(),
		Unauthorized: sg.unauthorized.Load(), Limited: sg.limits.limited.Load(), Dropped: sg.dropped.Load()}
}
