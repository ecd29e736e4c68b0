package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// message is one WebSocket signalling message (DESIGN.md: /ws).
type message struct {
	Type      string                   `json:"type"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	State     any                      `json:"state,omitempty"`
	Error     string                   `json:"error,omitempty"`
	// ICEServers ("config", before the first offer) configure the viewer's connection. The
	// camera's relay policy is not the viewer's: relaying both sides would take two
	// allocations and gain nothing, the camera's addresses are hidden either way.
	ICEServers []iceServer `json:"iceServers,omitempty"`
}

// gatherTimeout bounds the wait for our own ICE candidates before an offer or answer.
const gatherTimeout = 5 * time.Second

// session is one viewer, signalling over the camera's WebSocket or through the fleet's broker
// (its transport). Its goroutine (run) owns the connection: pion's callbacks and the server
// only signal it through channels.
type session struct {
	srv  *Server
	tr   transport
	log  *slog.Logger
	conn *Conn

	wakeC   chan struct{}
	stateC  chan struct{}
	closeC  chan struct{}
	closeMu sync.Once
	pcState chan webrtc.PeerConnectionState
	rtcpWG  sync.WaitGroup

	awaiting bool // an offer is out and its answer not yet applied
	byeSent  bool // the viewer has been told the session is over
	timer    *time.Timer
	ice      iceRestart
}

func (ss *session) wake()      { signal(ss.wakeC) }
func (ss *session) stateWake() { signal(ss.stateC) }

func (ss *session) close() { ss.closeMu.Do(func() { close(ss.closeC) }) }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept wrote the error response
	}
	ws.SetReadLimit(s.cfg.MaxMessageBytes)
	sl, err := s.reserve(r.Context())
	if err != nil {
		s.refuseWS(r.Context(), ws, err)
		return
	}
	defer sl.release() // a no-op once the session has it
	ss := s.newSession(&wsTransport{ws: ws, srv: s}, s.log.With("viewer", r.RemoteAddr, "signalling", "ws"))
	if err := s.add(ss, sl); err != nil {
		ws.Close(websocket.StatusGoingAway, "server closing")
		return
	}
	defer s.remove(ss)
	err = ss.run(r.Context())
	switch {
	case err == nil:
		ws.Close(websocket.StatusNormalClosure, "")
	case websocket.CloseStatus(err) != -1 || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled):
		ss.log.Debug("viewer left", "err", err)
		ws.CloseNow()
	case errors.Is(err, errIdle):
		ss.log.Info("viewer dropped", "err", err)
		ws.CloseNow() // it answers nothing: no closing handshake to wait for
	default:
		ss.log.Info("viewer session ended", "err", err)
		ws.Close(websocket.StatusPolicyViolation, truncate(err.Error(), 120))
	}
}

func (s *Server) newSession(tr transport, log *slog.Logger) *session {
	return &session{
		srv:     s,
		tr:      tr,
		log:     log,
		wakeC:   make(chan struct{}, 1),
		stateC:  make(chan struct{}, 1),
		closeC:  make(chan struct{}),
		pcState: make(chan webrtc.PeerConnectionState, 8),
	}
}

// run serves the viewer until it leaves, the connection fails, or the server closes.
func (ss *session) run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	msgs := make(chan message)
	readErr := make(chan error, 1)
	go func() { readErr <- ss.tr.read(ctx, msgs) }()
	idle := make(chan error, 1)
	go func() { idle <- ss.tr.keepAlive(ctx) }()
	defer func() {
		cancel()
		<-idle
		if ss.conn != nil {
			_ = ss.conn.Close()
		}
		ss.rtcpWG.Wait()
		if ss.timer != nil {
			ss.timer.Stop()
		}
		ss.ice.stopTimer()
		ss.tr.closeNow()
		<-readErr
	}()
	ss.timer = time.NewTimer(time.Hour)
	ss.timer.Stop()
	if err := ss.start(ctx); err != nil {
		return err
	}
	for {
		done, err := ss.next(ctx, msgs, readErr, idle)
		if err != nil || done {
			return err
		}
	}
}

// start tells the viewer the state, makes its peer connection and sends the first offer.
func (ss *session) start(ctx context.Context) error {
	if err := ss.send(ctx, message{Type: "state", State: ss.srv.cfg.State()}); err != nil {
		return err
	}
	servers, cfg := ss.srv.sessionICE(ctx)
	if err := ss.send(ctx, message{Type: "config", ICEServers: browserICE(servers)}); err != nil {
		return err
	}
	conn, err := ss.srv.newPeer(cfg)
	if err != nil {
		return err
	}
	ss.conn = conn
	ss.srv.watchState(conn.pc, ss.pcState)
	for _, s := range conn.Senders() {
		ss.readRTCP(s)
	}
	conn.needNegotiation() // the first offer
	return ss.reconcile(ctx)
}

// next handles what happens next to the session; done (or an error) ends it.
func (ss *session) next(ctx context.Context, msgs <-chan message, readErr, idle chan error) (done bool, err error) {
	select {
	case <-ctx.Done():
		return true, nil
	case <-ss.closeC:
		_ = ss.send(ctx, message{Type: "bye"})
		return true, nil
	case err := <-readErr:
		readErr <- err // for the deferred wait
		return true, err
	case err := <-idle:
		idle <- err // for the deferred wait
		return true, err
	case m := <-msgs:
		return ss.handle(ctx, m)
	case <-ss.wakeC:
		return false, ss.reconcile(ctx)
	case <-ss.stateC:
		return false, ss.send(ctx, message{Type: "state", State: ss.srv.cfg.State()})
	case <-ss.timer.C:
		// No rollback in pion: a viewer that does not answer gets a fresh session.
		_ = ss.send(ctx, message{Type: "error", Error: "no answer to the offer in time: reconnect"})
		_ = ss.send(ctx, message{Type: "bye"})
		return true, errors.New("rtc: answer timeout")
	case st := <-ss.pcState:
		if ss.ice.onState(st) {
			_ = ss.send(ctx, message{Type: "bye"})
			return true, fmt.Errorf("rtc: peer connection %s", st)
		}
		return false, ss.reconcile(ctx) // a restart, when one is wanted
	case <-ss.ice.timerC:
		return false, ss.restartDue(ctx)
	}
}

// handle acts on one message from the viewer; done ends the session.
func (ss *session) handle(ctx context.Context, m message) (done bool, err error) {
	reply := func(format string, args ...any) error {
		return ss.send(ctx, message{Type: "error", Error: fmt.Sprintf(format, args...)})
	}
	switch m.Type {
	case "error": // our own reader's verdict on a malformed message
		return false, ss.send(ctx, m)
	case "answer":
		if !ss.awaiting {
			return false, reply("unexpected answer: no offer is outstanding")
		}
		if err := ss.srv.checkSDP(m.SDP, ss.srv.kinds()); err != nil {
			return false, reply("bad answer: %v", err)
		}
		if err := ss.conn.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			return false, reply("bad answer: %v", err)
		}
		ss.awaiting = false
		ss.timer.Stop()
		ss.conn.answered()
		return false, ss.reconcile(ctx)
	case "candidate":
		if m.Candidate == nil {
			return false, reply("candidate message without candidate")
		}
		if err := ss.conn.pc.AddICECandidate(*m.Candidate); err != nil {
			return false, reply("bad candidate: %v", err)
		}
		return false, nil
	case "bye":
		return true, nil
	case "offer":
		return false, reply("the device is the offerer: wait for its offer and answer it")
	default:
		return false, reply("unknown message type %q", m.Type)
	}
}

// reconcile brings the viewer's senders in line with the live kinds: removals at once, adds
// once the removal they follow has been negotiated, and one offer for all of it.
func (ss *session) reconcile(ctx context.Context) error {
	for _, s := range ss.conn.Senders() {
		f := ss.srv.fanoutOf(s)
		if f == nil {
			continue
		}
		has := s.Track() != nil
		switch live := f.live(); {
		case has && !live:
			if err := ss.conn.RemoveTrack(s); err != nil {
				return err
			}
		case !has && live && ss.conn.canAdd(f):
			if err := ss.conn.AddTrack(f); err != nil {
				return err
			}
			ss.readRTCP(s)
		}
	}
	if ss.awaiting || !ss.conn.NegotiationNeeded() && !ss.ice.wanted {
		return nil
	}
	return ss.offer(ctx)
}

// offer creates an offer, waits for our candidates so the SDP is complete, and sends it.
func (ss *session) offer(ctx context.Context) error {
	pc := ss.conn.pc
	o, err := pc.CreateOffer(ss.offerOptions())
	if err != nil {
		return fmt.Errorf("rtc: create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		return fmt.Errorf("rtc: set local offer: %w", err)
	}
	ss.conn.offered()
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
		ss.log.Warn("ICE gathering incomplete; offering what we have")
	case <-ctx.Done():
		return ctx.Err()
	}
	ss.awaiting = true
	ss.timer.Reset(ss.srv.cfg.AnswerTimeout)
	return ss.send(ctx, message{Type: "offer", SDP: pc.LocalDescription().SDP})
}

func (ss *session) send(ctx context.Context, m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("rtc: encode %s: %w", m.Type, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if m.Type == "bye" {
		ss.byeSent = true
	}
	return ss.tr.write(ctx, b)
}

// readRTCP reads the RTCP of a sender's current pion sender until it stops, turning PLI and
// FIR into one keyframe request to the source.
func (ss *session) readRTCP(s *Sender) {
	ss.conn.mu.Lock()
	ps, f := s.pion, s.track
	ss.conn.mu.Unlock()
	if ps == nil {
		return
	}
	ss.rtcpWG.Add(1)
	go func() {
		defer ss.rtcpWG.Done()
		readKeyframeRequests(ps, f)
	}()
}

// readKeyframeRequests reads a sender's RTCP until it stops; PLI and FIR become keyframe
// requests.
func readKeyframeRequests(ps *webrtc.RTPSender, f *fanout) {
	for {
		pkts, _, err := ps.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				f.requestKeyframe()
			}
		}
	}
}

func (s *Server) fanoutOf(snd *Sender) *fanout {
	for _, f := range s.fanouts {
		if f.pion == snd.tr.Kind() {
			return f
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
