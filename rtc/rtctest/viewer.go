// Package rtctest has test support for package rtc: a real pion viewer that signals over the
// device's WebSocket, answers every offer, and records every RTP packet it receives.
package rtctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Packet is one RTP packet a viewer received.
type Packet struct {
	Kind      string // "video" or "audio"
	Arrival   time.Time
	Timestamp uint32
	Seq       uint16
	SSRC      uint32
	// KeyStart is true for the first packet of an H.264 IDR (STAP-A with SPS, IDR, or the
	// first FU-A fragment of an IDR).
	KeyStart bool
}

// Offer is an offer the viewer received, as it saw it.
type Offer struct {
	SDP        string
	MSections  int
	Directions []string // a=sendonly etc. of each m-section, in order
	Arrival    time.Time
}

// Options configure a viewer.
type Options struct {
	// Answer decides whether to answer the n-th offer (1-based); nil answers all.
	Answer func(n int) bool
	// Token is sent as a bearer token (Authorization header) with the WebSocket handshake.
	Token string
	// HTTPClient dials the WebSocket (wss:// to a self-signed camera: a client that pins its
	// certificate); nil is http.DefaultClient.
	HTTPClient *http.Client
	// Keep bounds the packets and offers kept (the most recent); zero keeps everything. Soak
	// tests set it so that the viewer's records do not look like the device's growth.
	Keep int
	// TCP makes the viewer use ICE-TCP only (a network that blocks UDP).
	TCP bool
}

// Viewer is a pion peer that plays a browser on the device's WebSocket signalling.
type Viewer struct {
	pc   *webrtc.PeerConnection
	link Link
	opts Options
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	packets []Packet
	offers  []Offer
	states  []json.RawMessage
	configs [][]byte // "config" messages, as received
	errs    []string
	byes    int
	nOffers int // offers received, including those no longer kept
	ended   error
	changed chan struct{} // closed and replaced whenever anything is recorded
}

// Link is a viewer's signalling channel: the device's WebSocket (Dial), or another carrying the
// same JSON messages (MQTT signalling through a broker).
type Link interface {
	// Read returns the next message from the device.
	Read(ctx context.Context) ([]byte, error)
	// Write sends one message to the device.
	Write(ctx context.Context, msg []byte) error
	// Close hangs up.
	Close() error
}

// Dial connects a viewer to a device's /ws URL (ws://127.0.0.1:PORT/ws).
func Dial(ctx context.Context, url string, opts Options) (*Viewer, error) {
	dialOpts := &websocket.DialOptions{HTTPClient: opts.HTTPClient, HTTPHeader: http.Header{}}
	if opts.Token != "" {
		dialOpts.HTTPHeader.Set("Authorization", "Bearer "+opts.Token)
	}
	ws, _, err := websocket.Dial(ctx, url, dialOpts)
	if err != nil {
		return nil, fmt.Errorf("rtctest: dial %s: %w", url, err)
	}
	ws.SetReadLimit(1 << 20)
	v, err := Connect(wsLink{ws}, opts)
	if err != nil {
		ws.CloseNow()
	}
	return v, err
}

// Connect starts a viewer on a signalling link; the device speaks first (its offer).
func Connect(link Link, opts Options) (*Viewer, error) {
	pc, err := newPeer(opts)
	if err != nil {
		return nil, err
	}
	v := &Viewer{pc: pc, link: link, opts: opts, done: make(chan struct{}), changed: make(chan struct{})}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.wg.Add(1)
		go v.readTrack(tr)
	})
	v.wg.Add(1)
	go v.signal()
	return v, nil
}

// newPeer is a browser's receiving side on loopback.
func newPeer(opts Options) (*webrtc.PeerConnection, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	// A browser's receiving side: NACKs and receiver reports. Not pion's default set, whose
	// stats interceptor keeps a recorder per SSRC ever seen and would look like growth.
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if opts.TCP {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(webrtc.Configuration{})
}

// wsLink is the device's WebSocket.
type wsLink struct{ ws *websocket.Conn }

func (l wsLink) Read(ctx context.Context) ([]byte, error) {
	_, data, err := l.ws.Read(ctx)
	return data, err
}

func (l wsLink) Write(ctx context.Context, b []byte) error {
	return l.ws.Write(ctx, websocket.MessageText, b)
}

func (l wsLink) Close() error { return l.ws.Close(websocket.StatusNormalClosure, "") }

func (v *Viewer) record(f func()) {
	v.mu.Lock()
	f()
	close(v.changed)
	v.changed = make(chan struct{})
	v.mu.Unlock()
}

func (v *Viewer) readTrack(tr *webrtc.TrackRemote) {
	defer v.wg.Done()
	kind := tr.Kind().String()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		pk := Packet{Kind: kind, Arrival: time.Now(), Timestamp: p.Timestamp, Seq: p.SequenceNumber, SSRC: p.SSRC}
		if kind == "video" {
			pk.KeyStart = isKeyStart(p.Payload)
		}
		v.record(func() { v.packets = keepLast(append(v.packets, pk), v.opts.Keep) })
	}
}

func isKeyStart(pl []byte) bool {
	if len(pl) < 2 {
		return false
	}
	switch t := pl[0] & 0x1f; t {
	case 5:
		return true
	case 24: // STAP-A: the first aggregated unit
		return len(pl) > 3 && (pl[3]&0x1f == 7 || pl[3]&0x1f == 5)
	case 28: // FU-A start of an IDR
		return pl[1]&0x80 != 0 && pl[1]&0x1f == 5
	}
	return false
}

type message struct {
	Type      string                   `json:"type"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	State     json.RawMessage          `json:"state,omitempty"`
	Error     string                   `json:"error,omitempty"`
}

func (v *Viewer) signal() {
	defer v.wg.Done()
	ctx := context.Background()
	var err error
	defer func() { v.record(func() { v.ended = err }) }()
	for {
		var data []byte
		data, err = v.link.Read(ctx)
		if err != nil {
			return
		}
		var m message
		if err = json.Unmarshal(data, &m); err != nil {
			return
		}
		switch m.Type {
		case "offer":
			n := 0
			v.record(func() {
				v.offers = keepLast(append(v.offers, parseOffer(m.SDP)), v.opts.Keep)
				v.nOffers++
				n = v.nOffers
			})
			if v.opts.Answer != nil && !v.opts.Answer(n) {
				continue
			}
			if err = v.answer(ctx, m.SDP); err != nil {
				return
			}
		case "state":
			v.record(func() { v.states = keepLast(append(v.states, m.State), v.opts.Keep) })
		case "config":
			v.record(func() { v.configs = append(v.configs, data) })
		case "error":
			v.record(func() { v.errs = append(v.errs, m.Error) })
		case "bye":
			v.record(func() { v.byes++ })
		}
	}
}

// keepLast returns the last n elements of s (all of them when n is zero), in a new array when
// it drops some, so the dropped ones can be collected.
func keepLast[T any](s []T, n int) []T {
	if n <= 0 || len(s) <= 2*n {
		return s
	}
	return append([]T(nil), s[len(s)-n:]...)
}

func parseOffer(sdp string) Offer {
	o := Offer{SDP: sdp, Arrival: time.Now()}
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "m=") {
			o.MSections++
			o.Directions = append(o.Directions, "sendrecv")
		}
		for _, d := range []string{"sendrecv", "sendonly", "recvonly", "inactive"} {
			if line == "a="+d && o.MSections > 0 {
				o.Directions[o.MSections-1] = d
			}
		}
	}
	return o
}

func (v *Viewer) answer(ctx context.Context, sdp string) error {
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return err
	}
	a, err := v.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	g := webrtc.GatheringCompletePromise(v.pc)
	if err := v.pc.SetLocalDescription(a); err != nil {
		return err
	}
	<-g
	return v.Send(ctx, map[string]string{"type": "answer", "sdp": v.pc.LocalDescription().SDP})
}

// Send writes a raw message (any JSON value) to the device.
func (v *Viewer) Send(ctx context.Context, m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return v.link.Write(ctx, b)
}

// SendRaw writes bytes as one text message.
func (v *Viewer) SendRaw(ctx context.Context, b []byte) error {
	return v.link.Write(ctx, b)
}

// PC is the viewer's peer connection.
func (v *Viewer) PC() *webrtc.PeerConnection { return v.pc }

// Packets returns a copy of the packets received so far.
func (v *Viewer) Packets() []Packet {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Packet(nil), v.packets...)
}

// Offers returns the offers received so far.
func (v *Viewer) Offers() []Offer {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Offer(nil), v.offers...)
}

// OfferCount is how many offers arrived, including those no longer kept.
func (v *Viewer) OfferCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.nOffers
}

// States returns the state messages received so far.
func (v *Viewer) States() []json.RawMessage {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]json.RawMessage(nil), v.states...)
}

// Configs returns the "config" messages received so far (the camera's ICE servers).
func (v *Viewer) Configs() [][]byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([][]byte(nil), v.configs...)
}

// SelectedPair is the candidate pair the viewer's connection uses now (nil before one is
// chosen): its remote candidate is the camera's (a relay candidate when the camera goes
// through TURN).
func (v *Viewer) SelectedPair() (*webrtc.ICECandidatePair, error) {
	return v.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
}

// Errors returns the error messages received so far.
func (v *Viewer) Errors() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.errs...)
}

// Byes is how many bye messages arrived.
func (v *Viewer) Byes() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.byes
}

// Ended returns the signalling error once the device closed the WebSocket, else nil.
func (v *Viewer) Ended() (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.ended != nil, v.ended
}

// WaitFor waits until cond (called with the viewer's records locked, so it must only read
// the viewer's accessors' data through the arguments) holds, or ctx ends.
func (v *Viewer) WaitFor(ctx context.Context, what string, cond func(v *Viewer) bool) error {
	for {
		v.mu.Lock()
		ch := v.changed
		v.mu.Unlock()
		if cond(v) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("rtctest: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// SendPLI sends a picture loss indication for the viewer's video track.
func (v *Viewer) SendPLI() error {
	for _, r := range v.pc.GetReceivers() {
		if t := r.Track(); t != nil && t.Kind() == webrtc.RTPCodecTypeVideo {
			return v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
		}
	}
	return errors.New("rtctest: no video track")
}

// Close hangs up and waits for the viewer's goroutines.
func (v *Viewer) Close() error {
	_ = v.link.Close()
	err := v.pc.Close()
	v.wg.Wait()
	return err
}

// Receiving is a WaitFor condition: the viewer has received packets of kind ("video",
// "audio") that arrived after since (zero: any).
func Receiving(kind string, since time.Time) func(*Viewer) bool {
	return func(v *Viewer) bool {
		for _, p := range v.Packets() {
			if p.Kind == kind && p.Arrival.After(since) {
				return true
			}
		}
		return false
	}
}

// NothingSent is a WaitFor condition: an offer after the first n came, and in the latest one no
// transceiver sends (each is inactive, or recvonly when it was made before the device had a
// track: a viewer that came while the sources were closed on demand).
func NothingSent(n int) func(*Viewer) bool {
	return func(v *Viewer) bool {
		o := v.Offers()
		if v.OfferCount() <= n || len(o) == 0 {
			return false
		}
		for _, d := range o[len(o)-1].Directions {
			if strings.Contains(d, "send") {
				return false
			}
		}
		return true
	}
}
