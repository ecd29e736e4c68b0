package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// failGrace is how long the viewer waits, once its connection failed, for the camera's ICE
// restart before it gives up.
const failGrace = 30 * time.Second

// pcEvent is a change pion reported: the ICE connection state, or the selected pair.
type pcEvent struct {
	ice  webrtc.ICEConnectionState
	pair bool
}

// viewer is one view session. Its loop (run) owns the peer connection and the signalling:
// paho's and pion's callbacks only queue what happened, and the track readers only record
// their packets and print.
type viewer struct {
	inv    *viewInvocation
	api    *webrtc.API
	link   *signalLink
	out    *printer
	rec    *recorder
	events *queue[pcEvent]
	start  time.Time // the hello
	fail   *time.Timer

	pc        *webrtc.PeerConnection
	ice       []iceServerJSON
	offers    int
	ufrag     string
	kinds     []string // the kinds offered, in order of appearance
	lastErr   string   // the camera's last error message
	heard     bool     // the camera has answered the hello
	byeRecv   bool
	connected bool
	pair      pairInfo // the last pair printed

	readers sync.WaitGroup
	readMu  sync.Mutex
	closing bool // no new track reader, and no "ended" for those stopping
}

func newViewer(inv *viewInvocation, api *webrtc.API, link *signalLink, stdout io.Writer) *viewer {
	start := time.Now()
	fail := time.NewTimer(time.Hour)
	fail.Stop()
	return &viewer{inv: inv, api: api, link: link, out: newPrinter(stdout, inv.json, start), rec: newRecorder(),
		events: newQueue[pcEvent](), start: start, fail: fail}
}

// run says hello and serves the session until it ends, then says bye, closes everything and
// prints the summary.
func (v *viewer) run(ctx context.Context) error {
	defer v.fail.Stop()
	err := v.link.send(ctx, sigMessage{Type: "hello", Token: v.inv.token})
	if err == nil {
		v.out.emit("hello", "", kv("device", v.inv.device), kv("account", v.inv.account),
			kv("session", sessionOf(v.link.topics.viewer)))
		err = v.loop(ctx)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		err = nil // Ctrl-C in the middle of an answer or a publish: a normal end
	}
	v.finish(ctx, err)
	return err
}

// sessionOf is the session id of a session topic (its next to last level).
func sessionOf(topic string) string {
	parts := strings.Split(topic, "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[len(parts)-2]
}

// loop serves the session: nil when it ended normally (ctx, --for, the camera's bye).
func (v *viewer) loop(ctx context.Context) error {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var forC <-chan time.Time
	if v.inv.duration > 0 {
		t := time.NewTimer(v.inv.duration)
		defer t.Stop()
		forC = t.C
	}
	first := time.NewTimer(v.inv.cfg.Timeout)
	defer first.Stop()
	firstC := first.C
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-forC:
			return nil
		case <-firstC:
			return fmt.Errorf("no answer from camera %s within %s: is it online with MQTT signalling, and may account %s publish to %s?",
				v.inv.device, v.inv.cfg.Timeout, v.inv.account, v.link.topics.viewer)
		case <-v.link.inbox.ready:
			done, err := v.messages(ctx)
			if v.heard {
				firstC = nil
			}
			if done || err != nil {
				return err
			}
		case <-v.events.ready:
			v.pcEvents()
		case <-v.link.lost.ready:
			errs, _ := v.link.lost.drain()
			return fmt.Errorf("lost the broker %s: %w", v.link.s.broker, errors.Join(errs...))
		case <-v.fail.C:
			return fmt.Errorf("the connection to camera %s failed and it did not restart ICE within %s", v.inv.device, failGrace)
		case <-ticker.C:
			v.tick()
		}
	}
}

// messages handles the camera's messages waiting; done ends the session.
func (v *viewer) messages(ctx context.Context) (done bool, err error) {
	msgs, overflow := v.link.inbox.drain()
	if overflow {
		return true, fmt.Errorf("more than %d messages from the camera waiting: giving up", maxQueued)
	}
	for _, b := range msgs {
		v.heard = true
		m, err := decodeSignal(b)
		if err != nil {
			v.out.emit("error", "", bare("error", err.Error()))
			continue
		}
		if done, err := v.handle(ctx, m); done || err != nil {
			return done, err
		}
	}
	return false, nil
}

// handle acts on one message of the camera's.
func (v *viewer) handle(ctx context.Context, m sigMessage) (done bool, err error) {
	switch m.Type {
	case "state":
		v.out.emit("state", "", bare("state", m.State))
	case "config":
		v.ice = m.ICEServers
		v.out.emit("config", "", kv("servers", serverURLs(m.ICEServers)))
	case "offer":
		return false, v.onOffer(ctx, m.SDP)
	case "candidate":
		v.onCandidate(m.Candidate)
	case "error":
		v.lastErr = m.Error
		v.out.emit("error", "", bare("error", m.Error))
	case "bye":
		v.byeRecv = true
		v.out.emit("bye", "")
		switch {
		case v.lastErr != "" && v.offers == 0:
			return true, fmt.Errorf("camera %s refused the session: %s", v.inv.device, v.lastErr)
		case v.lastErr != "":
			return true, fmt.Errorf("camera %s ended the session: %s", v.inv.device, v.lastErr)
		}
		return true, nil
	}
	return false, nil // another type: a newer camera's, ignored
}

// onOffer answers an offer (the first, a cut, a lift, an ICE restart).
func (v *viewer) onOffer(ctx context.Context, offer string) error {
	info, err := parseOffer(offer)
	if err != nil {
		return fmt.Errorf("the camera's offer: %w", err)
	}
	if err := v.ensurePC(); err != nil {
		return err
	}
	if err := addReceivers(v.pc, info); err != nil {
		return err
	}
	v.offers++
	restart := v.ufrag != "" && info.ufrag != v.ufrag
	v.ufrag = info.ufrag
	for _, s := range info.sections {
		if (s.kind == "video" || s.kind == "audio") && !contains(v.kinds, s.kind) {
			v.kinds = append(v.kinds, s.kind)
		}
	}
	now := time.Now()
	for _, kind := range v.kinds {
		v.rec.offered(kind, info.direction(kind) == "sendonly", now)
	}
	v.out.emit("offer", "", kv("video", info.direction("video")), kv("audio", info.direction("audio")),
		kv("restart", restart), kv("n", v.offers))
	v.fail.Stop() // the camera is working on the connection
	answer, err := answerOffer(ctx, v.pc, offer)
	if err != nil {
		return err
	}
	return v.link.send(ctx, sigMessage{Type: "answer", SDP: answer})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// onCandidate adds a candidate the camera trickled.
func (v *viewer) onCandidate(c *webrtc.ICECandidateInit) {
	switch {
	case c == nil:
		v.out.emit("error", "", bare("error", "a candidate message without a candidate"))
	case v.pc == nil:
		v.out.emit("error", "", bare("error", "a candidate before the first offer"))
	default:
		if err := v.pc.AddICECandidate(*c); err != nil {
			v.out.emit("error", "", bare("error", "the camera's candidate: "+err.Error()))
		}
	}
}
