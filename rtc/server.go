package rtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// Config configures a Server. The zero value serves viewers on any interface but loopback.
type Config struct {
	Logger *slog.Logger
	// PionLogger receives pion's own logs; nil discards them.
	PionLogger logging.LoggerFactory
	// IncludeLoopback offers loopback candidates, for viewers on the same machine (the
	// simulated board, tests); LoopbackOnly offers nothing else.
	IncludeLoopback, LoopbackOnly bool
	// AnswerTimeout is how long a WebSocket viewer has to answer an offer before its session
	// is ended (it reconnects and gets a fresh one). Zero means 10 s.
	AnswerTimeout time.Duration
	// MaxMessageBytes bounds a WebSocket message; a bigger one closes the socket (1009).
	// Zero means 64 KiB.
	MaxMessageBytes int64
	// MaxSDPBytes bounds an SDP from a viewer: a WHEP offer (413 beyond it) or a WebSocket
	// answer (an error message). Zero means 32 KiB (DefaultMaxSDPBytes).
	MaxSDPBytes int
	// MaxViewers bounds the viewers, WebSocket and WHEP together, counting those still being
	// set up. A viewer beyond it is refused before anything is made for it: WHEP with 503 and
	// Retry-After, WebSocket with an error message and a close (1013, try again later).
	// Zero means 16 (DefaultMaxViewers); negative is an error.
	MaxViewers int
	// MaxViewersPerHolder bounds the viewers of one credential's holder (WithViewer), so that
	// one stolen link cannot take every place. Zero means 4 (DefaultMaxViewersPerHolder).
	// Requests without a holder's name (no credential in force) are not counted.
	MaxViewersPerHolder int
	// RetryAfter is the wait a refused WHEP viewer is told (Retry-After, in whole seconds,
	// rounded up). Zero means 5 s.
	RetryAfter time.Duration
	// WSPingInterval is how often a WebSocket viewer is pinged. Zero means 15 s.
	WSPingInterval time.Duration
	// WSIdleTimeout drops a WebSocket viewer that has answered no ping for that long (it is
	// checked as each ping goes unanswered, so the drop comes at most WSPingInterval later).
	// Zero means 45 s; shorter than WSPingInterval is an error.
	WSIdleTimeout time.Duration
	// NACKBufferPackets is how many sent video packets each sender keeps for retransmission
	// (a power of two). Zero means 256: about two seconds of 720p30 for ~400 KB per sender,
	// where pion's default keeps 1.5 MB.
	NACKBufferPackets uint16
	// ICEServers returns the STUN and TURN servers of a new viewer session (called once per
	// session, with the credential holder's name (WithViewer; "" when none), so that TURN
	// credentials can be minted for it); nil: none, host candidates only.
	ICEServers func(viewer string) []webrtc.ICEServer
	// ICETransportPolicy "relay" makes the camera's connections use TURN relays only.
	ICETransportPolicy webrtc.ICETransportPolicy
	// ICETCP, when set, is a TCP listener the connections also offer passive ICE-TCP candidates
	// on (RFC 6544), for viewers whose networks block UDP. The server closes it.
	ICETCP net.Listener
	// State returns the privacy state to show WebSocket viewers (marshalled as JSON).
	State func() any
	// OnViewers is told the number of viewers when it changes. It must not block.
	OnViewers func(n int)
}

// Server serves the device's tracks to viewers. It implements device.Sink.
type Server struct {
	cfg     Config
	log     *slog.Logger
	api     *webrtc.API
	fanouts []*fanout  // one per kind the device has, video first
	tcpMux  ice.TCPMux // passive ICE-TCP on Config.ICETCP; nil: none

	mu       sync.Mutex
	sessions map[viewer]string // each session's holder (WithViewer), "" for none
	holders  map[string]int    // places (sessions and reservations) per named holder
	reserved int               // viewer slots taken by viewers being set up (see reserve)
	closed   bool
	wg       sync.WaitGroup // session goroutines

	stats serverStats
}

// viewer is a WebSocket or WHEP session.
type viewer interface {
	wake()      // the set of live kinds changed
	stateWake() // the privacy state changed
	close()     // end the session
}

// ErrServerClosed is returned for viewers arriving after Close.
var ErrServerClosed = errors.New("rtc: server closed")

// NewServer returns a server for tracks of the given codecs (one per kind the device has).
// It starts nothing; viewers arrive through Handler.
func NewServer(cfg Config, codecs map[device.Kind]device.Codec) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sessions: make(map[viewer]string), holders: make(map[string]int)}
	s.stats.init()
	epoch := time.Now()
	for _, k := range device.Kinds {
		if c, ok := codecs[k]; ok {
			s.fanouts = append(s.fanouts, newFanout(k, c, epoch))
		}
	}
	if len(s.fanouts) == 0 {
		return nil, errors.New("rtc: no codecs")
	}
	api, err := s.newAPI()
	if err != nil {
		return nil, err
	}
	s.api = api
	return s, nil
}

// setDefaults fills in the zero fields and checks the others.
func (c *Config) setDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = 10 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.NACKBufferPackets == 0 {
		c.NACKBufferPackets = 256
	}
	if c.State == nil {
		c.State = func() any { return struct{}{} }
	}
	return c.setLimitDefaults()
}

// newAPI builds pion's API on purpose: only our codecs, and only the interceptors lenscap
// needs: NACK responses with a small buffer (gated: nothing is resent for a private kind)
// and RTCP sender reports (lip sync). pion's
// defaults would add ~36 allocations per viewer per frame and 1.5 MB per video sender.
func (s *Server) newAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	for i, f := range s.fanouts {
		c := webrtc.RTPCodecParameters{RTPCodecCapability: f.codec, PayloadType: webrtc.PayloadType(96 + i*15)}
		if f.codec.MimeType == webrtc.MimeTypePCMU {
			c.PayloadType = 0
		}
		if err := m.RegisterCodec(c, f.pion); err != nil {
			return nil, fmt.Errorf("rtc: register codec %s: %w", f.codec.MimeType, err)
		}
	}
	ir := &interceptor.Registry{}
	ir.Add(nackGateFactory{live: s.liveSSRC}) // first: the innermost RTCP reader, before the responder
	nk, err := nack.NewResponderInterceptor(nack.ResponderSize(s.cfg.NACKBufferPackets))
	if err != nil {
		return nil, fmt.Errorf("rtc: nack: %w", err)
	}
	ir.Add(nk)
	sr, err := report.NewSenderInterceptor(report.SenderInterval(time.Second))
	if err != nil {
		return nil, fmt.Errorf("rtc: sender reports: %w", err)
	}
	ir.Add(sr)

	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(s.settingEngine())), nil
}

// settingEngine is how the connections gather and choose their candidates.
func (s *Server) settingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(s.cfg.IncludeLoopback || s.cfg.LoopbackOnly)
	if s.cfg.LoopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if s.cfg.ICETCP != nil {
		var lg logging.LeveledLogger // nil: pion's default (warnings to stderr)
		if s.cfg.PionLogger != nil {
			lg = s.cfg.PionLogger.NewLogger("ice-tcp")
		}
		s.tcpMux = webrtc.NewICETCPMux(lg, s.cfg.ICETCP, 8)
		se.SetICETCPMux(s.tcpMux)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6,
			webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	}
	// No multicast DNS: viewers reach us through our host candidates (a browser's own
	// .local candidates become peer-reflexive ones), and the camera sends no multicast.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A browser hides its addresses behind mDNS names, so its candidate is learnt when its
	// first check arrives (peer-reflexive); pion would wait a second before using it.
	se.SetPrflxAcceptanceMinWait(0)
	// pion holds a relay pair back 2 s in case a direct one turns up: with relay only there is
	// none to wait for, and otherwise a host or srflx pair, when there is one, succeeds well
	// within the 500 ms left (measured: a relayed viewer's first frame took 2 s with the
	// default).
	se.SetRelayAcceptanceMinWait(500 * time.Millisecond)
	if s.cfg.ICETransportPolicy == webrtc.ICETransportPolicyRelay {
		se.SetRelayAcceptanceMinWait(0)
	}
	// A lost path is noticed after 2 s without a packet (pion: 5 s; a viewer sends STUN
	// checks and RTCP every second), so that an ICE restart (restart.go) brings a viewer back
	// within ~4 s (the NAT rig: a browser answering through TURN in 4.5 s with 3 s here).
	se.SetICETimeouts(2*time.Second, 15*time.Second, time.Second)
	if s.cfg.PionLogger != nil {
		se.LoggerFactory = s.cfg.PionLogger
	}
	return se
}

// Handler serves GET /ws (WebSocket signalling), POST /whep and DELETE /whep/{id}.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("POST /whep", s.serveWHEP)
	mux.HandleFunc("DELETE /whep/{id}", s.deleteWHEP)
	mux.HandleFunc("PATCH /whep/{id}", s.patchWHEP)
	return mux
}

func (s *Server) fanout(k device.Kind) *fanout {
	for _, f := range s.fanouts {
		if f.kind == k {
			return f
		}
	}
	return nil
}

// AddTracks implements device.Sink: the tracks' frames go to every viewer, each of which is
// renegotiated once to receive them on the transceivers the kinds always had.
func (s *Server) AddTracks(ts []*device.Track) {
	for _, t := range ts {
		f := s.fanout(t.Kind())
		if f == nil {
			s.log.Error("track of a kind without codec", "kind", t.Kind())
			continue
		}
		f.attach(t)
	}
	s.wakeAll()
}

// RemoveTracks implements device.Sink: removeStream. When it returns no frame of the tracks
// is written to any viewer; each viewer's sender is then removed and renegotiated once.
func (s *Server) RemoveTracks(ts []*device.Track) {
	for _, t := range ts {
		if f := s.fanout(t.Kind()); f != nil {
			f.detach(t)
		}
	}
	s.wakeAll()
}

// StateChanged tells every WebSocket viewer the new state (from Config.State).
func (s *Server) StateChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v := range s.sessions {
		v.stateWake()
	}
}

// Viewers is the number of viewer sessions.
func (s *Server) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// CaptureTime converts an RTP timestamp a viewer received for a kind back to the capture
// time of the frame it belongs to (for tests and diagnostics).
func (s *Server) CaptureTime(k device.Kind, rtpTimestamp uint32) time.Time {
	f := s.fanout(k)
	if f == nil {
		return time.Time{}
	}
	return f.captureTime(rtpTimestamp)
}

// LastSent is when a frame of the kind was last written to a viewer (zero if never): the
// "streaming to someone" signal, and the end of a cut in the benchmarks.
func (s *Server) LastSent(k device.Kind) time.Time {
	f := s.fanout(k)
	if f == nil {
		return time.Time{}
	}
	if n := f.lastSent.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Sent counts the RTP packets of a kind written to viewers and their bytes (header and
// payload), all viewers together, over the server's life.
func (s *Server) Sent(k device.Kind) (packets, bytes uint64) {
	f := s.fanout(k)
	if f == nil {
		return 0, 0
	}
	return f.packets.Load(), f.bytes.Load()
}

func (s *Server) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v := range s.sessions {
		v.wake()
	}
}

// add registers a session in the place sl reserved for it; the caller runs it and calls
// remove when it ends. On an error sl is still the caller's to release.
func (s *Server) add(v viewer, sl *slot) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	sl.takenLocked()
	s.sessions[v] = sl.holder
	s.wg.Add(1)
	n := len(s.sessions)
	s.mu.Unlock()
	s.viewersChanged(n)
	return nil
}

func (s *Server) remove(v viewer) {
	s.mu.Lock()
	s.unholdLocked(s.sessions[v])
	delete(s.sessions, v)
	n := len(s.sessions)
	s.mu.Unlock()
	s.wg.Done()
	s.viewersChanged(n)
}

func (s *Server) viewersChanged(n int) {
	if s.cfg.OnViewers != nil {
		s.cfg.OnViewers(n)
	}
	s.StateChanged()
}

// Close ends every session and waits for them; later viewers are refused. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for v := range s.sessions {
		v.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.tcpMux != nil {
		return s.tcpMux.Close()
	}
	return nil
}

// signal wakes the goroutine waiting on c (capacity 1) without blocking; signals merge.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// watchState hands pc's state changes to c without ever blocking pion's callback. Connected,
// the video sent before it (a keyframe asked for at Bind, which comes with the answer, before
// DTLS) was dropped by pion: a viewer still waiting for its first keyframe gets one now.
func (s *Server) watchState(pc *webrtc.PeerConnection, c chan webrtc.PeerConnectionState) {
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			go s.keyframeForWaiting()
		}
		select {
		case c <- st:
		default:
		}
	})
}

// keyframeForWaiting asks for a keyframe where a viewer waits for one to start with.
func (s *Server) keyframeForWaiting() {
	for _, f := range s.fanouts {
		if f.waiting() {
			f.requestKeyframe()
		}
	}
}

// ended reports whether a connection state ends the viewer's session.
func ended(st webrtc.PeerConnectionState) bool {
	return st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed
}

// newPeer makes a connection for a viewer, with one transceiver per kind.
func (s *Server) newPeer(cfg webrtc.Configuration) (*Conn, error) {
	pc, err := s.api.NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("rtc: new peer connection: %w", err)
	}
	live := make([]bool, len(s.fanouts))
	for i, f := range s.fanouts {
		live[i] = f.current() != nil
	}
	c, err := newConn(pc, s.fanouts, live)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	return c, nil
}

// live reports whether a kind has a track now.
func (f *fanout) live() bool { return f.current() != nil }

// requestKeyframe asks the kind's current track for a keyframe (a viewer's PLI or FIR).
func (f *fanout) requestKeyframe() {
	if t := f.current(); t != nil {
		t.RequestKeyframe()
	}
}
