package rtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// whepSession is one WHEP viewer (draft-ietf-wish-whep, WHIP's egress twin). WHEP has no way
// for the server to offer again, so privacy replaces the sender's track by none (the media stops at once) and lifting puts
// the kind's track back on the same sender; the viewer is renegotiated only if it reconnects.
type whepSession struct {
	id    string
	owner string // the credential's holder that made it (WithViewer); only it may DELETE it
	srv   *Server
	log   *slog.Logger
	conn  *Conn

	wakeC   chan struct{}
	closeC  chan struct{}
	closeMu sync.Once
	pcState chan webrtc.PeerConnectionState

	offer    string              // the viewer's offer, as last applied (an ICE restart edits it)
	restartC chan restartRequest // PATCH ICE restarts, for run
}

func (ws *whepSession) wake()      { signal(ws.wakeC) }
func (ws *whepSession) stateWake() {}
func (ws *whepSession) close()     { ws.closeMu.Do(func() { close(ws.closeC) }) }

// serveWHEP answers a viewer's offer (WHEP): 201 Created with the answer and the
// session's URL, which the viewer deletes to leave. An offer lenscap refuses (checkSDP) gets
// 400 and a viewer beyond MaxViewers 503, before any peer connection is made.
func (s *Server) serveWHEP(w http.ResponseWriter, r *http.Request) {
	offer, ok := s.readWHEPOffer(w, r)
	if !ok {
		return
	}
	sl, err := s.reserve(r.Context())
	if err != nil {
		s.refuseWHEP(w, err)
		return
	}
	defer sl.release() // a no-op once the session has it
	servers, cfg := s.sessionICE(r.Context())
	pc, err := s.api.NewPeerConnection(cfg)
	if err != nil {
		http.Error(w, "cannot create a connection", http.StatusInternalServerError)
		return
	}
	conn, err := s.newWHEPConn(pc, offer)
	if err != nil {
		_ = pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ws := s.newWHEPSession(conn, r.RemoteAddr)
	ws.owner = viewerName(r.Context())
	ws.offer = offer
	s.watchState(pc, ws.pcState)
	if err := s.add(ws, sl); err != nil {
		_ = pc.Close()
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	stop := ws.closeAt(r.Context())
	go func() {
		defer s.remove(ws)
		defer stop()
		ws.run()
	}()
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whep/"+ws.id)
	addICELinks(w.Header(), servers)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, pc.LocalDescription().SDP)
}

// closeAt ends the session at ctx's deadline, when it has one: the daemon gives a request the
// expiry of the credential it came with, and a session outlives no credential.
func (ws *whepSession) closeAt(ctx context.Context) (stop func() bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		return func() bool { return false }
	}
	return time.AfterFunc(time.Until(dl), ws.close).Stop
}

// whepKinds are the m-sections a WHEP offer may have, one each.
var whepKinds = []string{"video", "audio"}

// readWHEPOffer reads the request's SDP offer, at most MaxSDPBytes of it, and checks it
// (checkSDP); when it cannot, it answers the request and reports false.
func (s *Server) readWHEPOffer(w http.ResponseWriter, r *http.Request) (string, bool) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		http.Error(w, "WHEP offers are application/sdp", http.StatusUnsupportedMediaType)
		return "", false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxSDPBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.stats.sdp[sdpTooLarge].Add(1)
			http.Error(w, fmt.Sprintf("offer larger than %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
			return "", false
		}
		http.Error(w, "reading offer: "+err.Error(), http.StatusBadRequest)
		return "", false
	}
	if err := s.checkSDP(string(body), whepKinds); err != nil {
		http.Error(w, "bad offer: "+err.Error(), http.StatusBadRequest)
		return "", false
	}
	return string(body), true
}

// newWHEPConn puts every kind's fanout on a sendonly transceiver of pc and answers the
// offer. All are live here: a private kind's fanout carries no frames until privacy is
// lifted, and run takes its track off the sender.
func (s *Server) newWHEPConn(pc *webrtc.PeerConnection, offer string) (*Conn, error) {
	live := make([]bool, len(s.fanouts))
	for i := range live {
		live[i] = true
	}
	conn, err := newConn(pc, s.fanouts, live)
	if err != nil {
		return nil, err
	}
	if err := answerWHEP(pc, offer); err != nil {
		return nil, err
	}
	return conn, nil
}

// newWHEPSession is the session of conn's viewer at remoteAddr; it starts nothing.
func (s *Server) newWHEPSession(conn *Conn, remoteAddr string) *whepSession {
	ws := &whepSession{
		id:       newID(),
		srv:      s,
		conn:     conn,
		wakeC:    make(chan struct{}, 1),
		closeC:   make(chan struct{}),
		pcState:  make(chan webrtc.PeerConnectionState, 8),
		restartC: make(chan restartRequest),
	}
	ws.log = s.log.With("viewer", remoteAddr, "signalling", "whep", "session", ws.id)
	return ws
}

// answerWHEP applies the viewer's offer and sets a complete answer.
func answerWHEP(pc *webrtc.PeerConnection, offer string) error {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fmt.Errorf("bad offer: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("cannot answer the offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("cannot answer the offer: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
	}
	return nil
}

func (s *Server) deleteWHEP(w http.ResponseWriter, r *http.Request) {
	found := s.whepSessionOf(r)
	if found == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	found.close()
	w.WriteHeader(http.StatusOK)
}

// run follows privacy until the viewer leaves: a private kind's sender gets no track, a live
// kind's sender gets the kind's fanout back (which starts the viewer at a keyframe).
func (ws *whepSession) run() {
	var rtcpWG sync.WaitGroup
	defer func() {
		_ = ws.conn.Close()
		rtcpWG.Wait()
	}()
	for _, s := range ws.conn.Senders() {
		if s.pion != nil {
			ps, f := s.pion, s.track
			rtcpWG.Add(1)
			go func() {
				defer rtcpWG.Done()
				readKeyframeRequests(ps, f)
			}()
		}
	}
	ws.apply()
	for {
		select {
		case <-ws.closeC:
			return
		case st := <-ws.pcState:
			if ended(st) {
				ws.log.Info("viewer gone", "state", st)
				return
			}
		case <-ws.wakeC:
			ws.apply()
		case req := <-ws.restartC:
			frag, err := ws.restart(req.ufrag, req.pwd)
			req.reply <- restartReply{frag, err}
		}
	}
}

func (ws *whepSession) apply() {
	for _, s := range ws.conn.Senders() {
		f := ws.srv.fanoutOf(s)
		if f == nil || s.pion == nil {
			continue
		}
		var want webrtc.TrackLocal
		if f.live() {
			want = f
		}
		if (s.pion.Track() == nil) == (want == nil) {
			continue
		}
		if err := s.pion.ReplaceTrack(want); err != nil {
			ws.log.Error("replace track", "kind", f.kind, "err", err)
		}
	}
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
