package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// onMessage routes one viewer message from paho's handler: to its session's queue, or, a
// hello, to a new session. It never blocks.
func (sg *signalling) onMessage(_ paho.Client, m paho.Message) {
	m.Ack()
	account, sid, leaf, ok := sg.topics.SessionOf(sg.id, m.Topic())
	// Retained: a message kept by the broker from before the camera subscribed, not a viewer
	// here now (a retained hello would otherwise start a session on every reconnection).
	if !ok || leaf != LeafViewer || m.Retained() {
		sg.dropped.Add(1)
		return
	}
	payload := m.Payload()
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.ctx == nil {
		return // stopping: the viewer tries again with the camera's next session
	}
	reply := func(why string) { sg.replyLocked(account, sid, why) }
	if len(payload) > sg.cfg.MaxMessageBytes {
		sg.dropped.Add(1)
		if _, live := sg.sessions[account+"/"+sid]; live { // the session goes on: say why
			sg.pub(sg.topics.Session(sg.id, account, sid, LeafCamera), errorMessage(
				fmt.Sprintf("message of %d bytes refused: the most is %d", len(payload), sg.cfg.MaxMessageBytes)))
		}
		return
	}
	if s, live := sg.sessions[account+"/"+sid]; live {
		select {
		case s.in <- payload:
		default:
			sg.dropped.Add(1)
			s.end() // its viewer floods it: the session ends, with a bye from rtc
		}
		return
	}
	if !isHello(payload) {
		sg.dropped.Add(1)
		reply("no such session: start one with a hello")
		return
	}
	if len(sg.sessions) >= sg.cfg.MaxSessions {
		sg.refused.Add(1)
		reply(fmt.Sprintf("too many signalling sessions (at most %d): try again later", sg.cfg.MaxSessions))
		return
	}
	sg.startLocked(account, sid, payload)
}

// startLocked makes a session and serves it on a goroutine of its own (sg.mu held).
func (sg *signalling) startLocked(account, sid string, hello []byte) {
	ctx, cancel := context.WithCancel(sg.ctx)
	s := &SignalSession{
		Account: account, ID: sid, Hello: hello,
		in:    make(chan []byte, signalQueue),
		topic: sg.topics.Session(sg.id, account, sid, LeafCamera),
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

// replyLocked tells a viewer with no session why (when why is not empty), then bye; paho's
// handler does not wait for the broker to take them.
func (sg *signalling) replyLocked(account, sid, why string) {
	if why == "" {
		return
	}
	topic := sg.topics.Session(sg.id, account, sid, LeafCamera)
	sg.pub(topic, errorMessage(why))
	sg.pub(topic, []byte(`{"type":"bye"}`))
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
