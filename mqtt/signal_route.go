package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// onMessage routes one viewer message from paho's handler: to its session's queue, or, an
// admitted hello, to a new session. It never blocks and never publishes (replyLoop does).
func (sg *signalling) onMessage(_ paho.Client, m paho.Message) {
	m.Ack()
	account, sid, leaf, ok := sg.topics.SessionOf(sg.id, m.Topic())
	// Retained: a message kept by the broker from before the camera subscribed, not a viewer
	// here now (a retained hello would otherwise start a session on every reconnection).
	if !ok || leaf != LeafViewer || m.Retained() {
		sg.dropped.Add(1)
		return
	}
	if !sg.limits.allow(account) {
		return // counted by the limits
	}
	payload := m.Payload()
	key, topic := account+"/"+sid, sg.topics.Session(sg.id, account, sid, LeafCamera)
	sg.mu.Lock()
	s, live := sg.sessions[key]
	stopping := sg.ctx == nil
	sg.mu.Unlock()
	switch {
	case stopping:
		return // the viewer tries again with the camera's next session
	case len(payload) > sg.cfg.MaxMessageBytes:
		sg.dropped.Add(1)
		sg.reply(topic, fmt.Sprintf("message of %d bytes refused: the most is %d", len(payload), sg.cfg.MaxMessageBytes), live)
	case live:
		select {
		case s.in <- payload:
		default:
			sg.dropped.Add(1)
			s.end() // its viewer floods it: the session ends, with a bye from rtc
		}
	case !isHello(payload):
		sg.dropped.Add(1)
		sg.reply(topic, "no such session: start one with a hello", false)
	default:
		sg.admit(account, sid, topic, payload)
	}
}

// admit checks a hello's credential, then makes its session if there is a place for it.
func (sg *signalling) admit(account, sid, topic string, hello []byte) {
	var admission any
	if sg.cfg.Admit != nil {
		var err error
		if admission, err = sg.cfg.Admit(hello); err != nil {
			sg.unauthorized.Add(1)
			sg.reply(topic, err.Error(), false)
			return
		}
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if _, live := sg.sessions[account+"/"+sid]; live || sg.ctx == nil {
		return // a second hello for one session (or stopping)
	}
	if len(sg.sessions) >= sg.cfg.MaxSessions {
		sg.refused.Add(1)
		sg.reply(topic, fmt.Sprintf("too many signalling sessions (at most %d): try again later", sg.cfg.MaxSessions), false)
		return
	}
	sg.startLocked(account, sid, topic, hello, admission)
}

// startLocked makes a session and serves it on a goroutine of its own (sg.mu held).
func (sg *signalling) startLocked(account, sid, topic string, hello []byte, admission any) {
	ctx, cancel := context.WithCancel(sg.ctx)
	s := &SignalSession{
		Account: account, ID: sid, Hello: hello, Admission: admission,
		in:    make(chan []byte, signalQueue),
		topic: topic,
		pub:   sg.pub,
		end:   cancel,
	}
	key := account + "/" + sid
	sg.sessions[key] = s
	sg.started.Add(1)
	sg.wg.Add(1)
	go func() {
		defer sg.wg.Done()
		defer cancel()
		sg.cfg.Serve(ctx, s)
		sg.mu.Lock()
		if sg.sessions[key] == s {
			delete(sg.sessions, key)
		}
		sg.mu.Unlock()
	}()
}

// reply queues why for a viewer's topic, followed by a bye unless the session goes on; a reply
// that finds the queue full is dropped (the viewer's own flood fills it).
func (sg *signalling) reply(topic, why string, goesOn bool) {
	msgs := []reply{{topic, why}}
	if !goesOn {
		msgs = append(msgs, reply{topic, ""})
	}
	for _, r := range msgs {
		select {
		case sg.replies <- r:
		default:
			return
		}
	}
}

// replyLoop sends the queued replies until ctx ends, each waited for a little so that a slow
// broker slows the replies down rather than piling them up in paho.
func (sg *signalling) replyLoop(ctx context.Context, pub func(string, []byte) paho.Token) {
	defer sg.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-sg.replies:
			msg := []byte(`{"type":"bye"}`)
			if r.why != "" {
				msg = errorMessage(r.why)
			}
			pub(r.topic, msg).WaitTimeout(time.Second)
		}
	}
}

func errorMessage(why string) []byte {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error string `json:"error"`
	}{"error", why})
	return b
}

// isHello says whether a payload is a viewer's hello.
func isHello(payload []byte) bool {
	var m struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(payload, &m) == nil && m.Type == "hello"
}

// Hello is a viewer's first message: it carries the viewer's credential.
type Hello struct {
	Type  string `json:"type"`
	Token string `json:"token"`
}

// ErrHello is a session's first message that is no hello.
var ErrHello = errors.New("mqtt: a session starts with a hello")

// ParseHello reads a session's hello.
func ParseHello(b []byte) (Hello, error) {
	var h Hello
	if err := json.Unmarshal(b, &h); err != nil || h.Type != "hello" {
		return Hello{}, fmt.Errorf(`%w: {"type":"hello","token":"..."}`, ErrHello)
	}
	return h, nil
}
