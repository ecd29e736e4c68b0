package chromiumtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// testClip is the simulated camera's H.264 clip: 640x360, 30 fps, constrained
// baseline 3.1, an IDR with SPS and PPS every 30 frames.
const testClip = "../../../camera/testdata/testpattern.h264"

// opusSilence is one 20 ms Opus frame of silence.
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// accessUnits splits an Annex-B stream into access units, each ending with
// its (single) slice and keeping its start codes.
func accessUnits(stream []byte) [][]byte {
	var units [][]byte
	start := 0
	for i := 0; i+3 < len(stream); {
		if stream[i] != 0 || stream[i+1] != 0 || stream[i+2] != 1 {
			i++
			continue
		}
		typ := stream[i+3] & 0x1f
		// The NAL ends at the next start code (00 00 01 or 00 00 00 01).
		end := bytes.Index(stream[i+3:], []byte{0, 0, 1})
		if end < 0 {
			end = len(stream)
		} else {
			end += i + 3
			if stream[end-1] == 0 {
				end--
			}
		}
		if typ == 1 || typ == 5 {
			units = append(units, stream[start:end])
			start = end
		}
		i = end
	}
	return units
}

// offerer plays the device's side of /ws with a real pion peer: it offers an
// H.264 and an Opus track in one stream and renegotiates on request.
type offerer struct {
	pc          *webrtc.PeerConnection
	ws          *websocket.Conn
	video       *webrtc.TrackLocalStaticSample
	audio       *webrtc.TrackLocalStaticSample
	videoSender *webrtc.RTPSender
	units       [][]byte
	restart     chan struct{} // start the clip again from its first IDR
}

func newOfferer(ws *websocket.Conn, units [][]byte) (*offerer, error) {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	// Chromium hides its host addresses behind mDNS names, so pion (the
	// controlling agent) meets it as a peer-reflexive candidate, which it
	// would otherwise wait 1 s to nominate.
	se.SetPrflxAcceptanceMinWait(0)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(mediaEngine()))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	o := &offerer{pc: pc, ws: ws, units: units, restart: make(chan struct{}, 1)}
	o.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}, "video", "lenscap")
	if err != nil {
		return nil, err
	}
	o.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
	}, "audio", "lenscap")
	if err != nil {
		return nil, err
	}
	if o.videoSender, err = pc.AddTrack(o.video); err != nil {
		return nil, err
	}
	if _, err = pc.AddTrack(o.audio); err != nil {
		return nil, err
	}
	return o, nil
}

func mediaEngine() *webrtc.MediaEngine {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		panic(err) // the defaults are constant
	}
	return m
}

// negotiate sends an offer with every candidate and applies the page's answer.
func (o *offerer) negotiate(ctx context.Context) error {
	offer, err := o.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(o.pc)
	if err := o.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := wsjson.Write(ctx, o.ws, map[string]string{"type": "offer", "sdp": o.pc.LocalDescription().SDP}); err != nil {
		return err
	}
	var msg struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	}
	if err := wsjson.Read(ctx, o.ws, &msg); err != nil {
		return err
	}
	if msg.Type != "answer" {
		return fmt.Errorf("got %q from the page, want an answer", msg.Type)
	}
	return o.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: msg.SDP})
}

// answerPLI restarts the clip at its first IDR whenever the page asks for a
// picture (PLI), as the device forces a keyframe. It returns when the sender stops.
func (o *offerer) answerPLI(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				select {
				case o.restart <- struct{}{}:
				default:
				}
			}
		}
	}
}

// send writes the clip at 30 fps and Opus silence every 20 ms until ctx ends.
// Frames written while a track is not bound are dropped by pion.
func (o *offerer) send(ctx context.Context) {
	videoTick := time.NewTicker(time.Second / 30)
	defer videoTick.Stop()
	audioTick := time.NewTicker(20 * time.Millisecond)
	defer audioTick.Stop()
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.restart:
			next = 0
		case <-videoTick.C:
			_ = o.video.WriteSample(media.Sample{Data: o.units[next], Duration: time.Second / 30})
			next = (next + 1) % len(o.units)
		case <-audioTick.C:
			_ = o.audio.WriteSample(media.Sample{Data: opusSilence, Duration: 20 * time.Millisecond})
		}
	}
}

func TestViewerPageAnswersOffersAndFollowsRemoveTrack(t *testing.T) {
	clip, err := os.ReadFile(testClip)
	if err != nil {
		t.Skipf("no test clip: %v", err)
	}
	units := accessUnits(clip)
	if len(units) < 30 {
		t.Fatalf("the clip has %d access units, want 30 or more", len(units))
	}
	page, err := os.ReadFile(viewerPage)
	if err != nil {
		t.Fatal(err)
	}

	conns := make(chan *websocket.Conn, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(page)
		case "/api/state":
			writeJSON(w, http.StatusOK, map[string]any{
				"video": map[string]any{"private": false, "by": "remote"}, "audio": map[string]any{"private": false, "by": "remote"},
				"viewers": 1, "seq": 1, "board": "sim",
			})
		case "/ws":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			conns <- c // the test owns the connection from here
			<-release
			c.CloseNow()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	step := func(what string) { t.Logf("%6.0f ms  %s", time.Since(start).Seconds()*1000, what) }
	b := New(t)
	step("chromium started")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := b.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	var ws *websocket.Conn
	select {
	case ws = <-conns:
	case <-ctx.Done():
		t.Fatal("the page did not open /ws")
	}
	o, err := newOfferer(ws, units)
	if err != nil {
		t.Fatal(err)
	}
	o.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { step("device connection " + s.String()) })
	sendCtx, stopSending := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		o.send(sendCtx)
	}()
	go func() {
		defer wg.Done()
		o.answerPLI(o.videoSender)
	}()
	defer wg.Wait()
	defer o.pc.Close()
	defer stopSending()

	if err := o.negotiate(ctx); err != nil {
		t.Fatalf("first negotiation: %v", err)
	}
	step("first answer applied")
	waitJS(ctx, t, b, "video playing", `(() => {
		const v = document.getElementById('video');
		return v.videoWidth === 640 && v.currentTime > 0 && document.getElementById('video-off').hidden;
	})()`)
	stats := waitInbound(ctx, t, b, func(s map[string]InboundStats) bool {
		return s["video"].FramesDecoded > 0 && s["audio"].PacketsReceived > 0
	})
	if s := stats["video"]; s.FrameWidth != 640 || s.FrameHeight != 360 {
		t.Errorf("video inbound-rtp %+v, want 640x360", s)
	}
	waitJS(ctx, t, b, "the stats panel shows the resolution", `document.getElementById('stat-video-resolution').textContent === '640×360'`)
	step("video decoded")
	waitText(ctx, t, b, "banner-text", "Live")
	if err := b.SetViewport(ctx, 1280, 860, false); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(ctx, t, b, "viewer-live.png")

	// The device removes video and renegotiates: the track mutes, leaves the
	// stream, and the page shows that video is off.
	if err := o.pc.RemoveTrack(o.videoSender); err != nil {
		t.Fatal(err)
	}
	if err := o.negotiate(ctx); err != nil {
		t.Fatalf("negotiation after RemoveTrack: %v", err)
	}
	step("removal negotiated")
	waitJS(ctx, t, b, "removetrack and mute for video", `(() => {
		const ev = window.lenscap.events;
		const offers = ev.filter((e) => e.type === 'offer').length;
		return offers === 2 && ev.some((e) => e.type === 'removetrack' && e.kind === 'video') &&
			ev.some((e) => e.type === 'mute' && e.kind === 'video');
	})()`)
	waitJS(ctx, t, b, "the video-off overlay", `!document.getElementById('video-off').hidden &&
		window.lenscap.stream.getVideoTracks().length === 0 && window.lenscap.stream.getAudioTracks().length === 1`)
	step("page shows video off")
	saveScreenshot(ctx, t, b, "viewer-video-removed.png")
	waitInbound(ctx, t, b, func(s map[string]InboundStats) bool {
		_, video := s["video"]
		return !video && s["audio"].PacketsReceived > 0
	})
	step("video inbound-rtp gone")

	// The device adds video back on the same transceiver: the page shows it again.
	if _, err := o.pc.AddTrack(o.video); err != nil {
		t.Fatal(err)
	}
	o.restart <- struct{}{}
	if err := o.negotiate(ctx); err != nil {
		t.Fatalf("negotiation after AddTrack: %v", err)
	}
	step("re-add negotiated")
	waitJS(ctx, t, b, "addtrack and unmute for video after the third offer", `(() => {
		const ev = window.lenscap.events;
		const third = ev.filter((e) => e.type === 'offer')[2];
		return !!third && ev.some((e) => e.t > third.t && e.type === 'addtrack' && e.kind === 'video') &&
			ev.some((e) => e.t > third.t && e.type === 'unmute' && e.kind === 'video');
	})()`)
	waitJS(ctx, t, b, "video playing again", `document.getElementById('video-off').hidden &&
		window.lenscap.stream.getVideoTracks().length === 1`)
	step("page shows video again")
	if n := len(o.pc.GetTransceivers()); n != 2 {
		t.Errorf("the device has %d transceivers after remove and add, want 2", n)
	}

	var events []struct {
		Type string  `json:"type"`
		Kind *string `json:"kind"`
	}
	if err := b.Eval(ctx, `window.lenscap.events`, &events); err != nil {
		t.Fatal(err)
	}
	t.Logf("page events: %s", fmtEvents(events))
	if ex := b.Exceptions(); len(ex) > 0 {
		t.Errorf("page exceptions: %+v", ex)
	}
}

func waitInbound(ctx context.Context, t *testing.T, b *Browser, ok func(map[string]InboundStats) bool) map[string]InboundStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		s, err := b.InboundRTP(ctx)
		if err == nil && ok(s) {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for inbound-rtp stats: last %+v, %v", s, errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func fmtEvents(events []struct {
	Type string  `json:"type"`
	Kind *string `json:"kind"`
}) string {
	var sb bytes.Buffer
	for _, e := range events {
		if e.Kind != nil {
			fmt.Fprintf(&sb, "%s:%s ", e.Type, *e.Kind)
		} else {
			fmt.Fprintf(&sb, "%s ", e.Type)
		}
	}
	return sb.String()
}
