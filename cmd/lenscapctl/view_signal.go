package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/pion/webrtc/v4"
)

// maxQueued bounds the messages and events waiting for the session loop; beyond, the session
// ends with an error rather than growing.
const maxQueued = 4096

// byeMessage is the viewer's bye, also its MQTT will.
const byeMessage = `{"type":"bye"}`

// queue hands values from callbacks (paho's handler, pion's) to the session loop without ever
// blocking the callback.
type queue[T any] struct {
	mu       sync.Mutex
	items    []T
	overflow bool
	ready    chan struct{} // has a value when items may be waiting
}

func newQueue[T any]() *queue[T] { return &queue[T]{ready: make(chan struct{}, 1)} }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	if len(q.items) >= maxQueued {
		q.overflow = true
	} else {
		q.items = append(q.items, v)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// drain takes what is waiting; overflow is true when values were dropped.
func (q *queue[T]) drain() (items []T, overflow bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, q.items = q.items, nil
	return items, q.overflow
}

// sigMessage is one message of the MQTT signalling (issue 12): the camera's /ws messages,
// plus the viewer's hello.
type sigMessage struct {
	Type       string                   `json:"type"`
	Token      string                   `json:"token,omitempty"`
	SDP        string                   `json:"sdp,omitempty"`
	Candidate  *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	State      json.RawMessage          `json:"state,omitempty"`
	Error      string                   `json:"error,omitempty"`
	ICEServers []iceServerJSON          `json:"iceServers,omitempty"`
}

// iceServerJSON is an RTCIceServer as the camera's config message carries it.
type iceServerJSON struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// sessionTopics are the two topics of one session: P/ID/session/A/S/viewer (the viewer
// writes) and P/ID/session/A/S/camera (the camera writes).
type sessionTopics struct {
	viewer, camera string
}

// validSessionName reports whether s may be an account or a session id in a topic: 1 to 64
// of [A-Za-z0-9._-].
func validSessionName(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func newSessionTopics(prefix, device, account, sessionID string) (sessionTopics, error) {
	if !validSessionName(account) {
		return sessionTopics{}, fmt.Errorf("account %q: want 1 to 64 of A-Z a-z 0-9 . _ -", account)
	}
	if !validSessionName(sessionID) {
		return sessionTopics{}, fmt.Errorf("session id %q: want 1 to 64 of A-Z a-z 0-9 . _ -", sessionID)
	}
	base := prefix + "/" + device + "/session/" + account + "/" + sessionID + "/"
	return sessionTopics{viewer: base + "viewer", camera: base + "camera"}, nil
}

// signalLink is the viewer's side of the signalling: lenscapctl's broker session, with the
// will set to bye on the session's viewer topic, subscribed to its camera topic.
type signalLink struct {
	s       *session
	topics  sessionTopics
	timeout time.Duration
	inbox   *queue[[]byte] // the camera's messages, as received
	lost    *queue[error]  // the broker connection was lost
}

// dialSignal connects to the broker as lenscapctl does (connect), with the session's will,
// and subscribes to the camera's topic before anything is published.
func dialSignal(ctx context.Context, cfg config, topics sessionTopics) (*signalLink, error) {
	l := &signalLink{topics: topics, timeout: cfg.Timeout, inbox: newQueue[[]byte](), lost: newQueue[error]()}
	s, err := connect(ctx, cfg, func(s *session, opts *paho.ClientOptions) {
		s.id = "lenscapctl-view-" + randomHex(6)
		opts.SetClientID(s.id)
		opts.SetBinaryWill(topics.viewer, []byte(byeMessage), 1, false)
		opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			if m.Topic() == topics.camera {
				l.inbox.push(m.Payload())
			}
		})
		opts.SetConnectionLostHandler(func(_ paho.Client, err error) { l.lost.push(err) })
	})
	if err != nil {
		return nil, err
	}
	l.s = s
	if err := l.s.subscribe(ctx, cfg.Timeout, topics.camera); err != nil {
		l.s.close()
		return nil, err
	}
	return l, nil
}

// send publishes one message to the camera (QoS 1, not retained).
func (l *signalLink) send(ctx context.Context, m sigMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.Type, err)
	}
	return l.s.publish(ctx, l.timeout, l.topics.viewer, b)
}

// bye tells the camera the session is over, even when ctx has ended (Ctrl-C), and
// disconnects cleanly (no will).
func (l *signalLink) bye(ctx context.Context, sendBye bool) error {
	var err error
	if sendBye {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.timeout)
		err = l.s.publish(bctx, l.timeout, l.topics.viewer, []byte(byeMessage))
		cancel()
	}
	l.s.close()
	return err
}

// decodeSignal parses a message of the camera's.
func decodeSignal(b []byte) (sigMessage, error) {
	var m sigMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return sigMessage{}, fmt.Errorf("malformed message from the camera: %w", err)
	}
	if m.Type == "" {
		return sigMessage{}, errors.New("message from the camera without a type")
	}
	return m, nil
}

// iceServers converts the camera's config message for pion.
func iceServers(in []iceServerJSON) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// serverURLs lists the servers' URLs (never their credentials).
func serverURLs(in []iceServerJSON) []string {
	urls := []string{}
	for _, s := range in {
		urls = append(urls, s.URLs...)
	}
	return urls
}
