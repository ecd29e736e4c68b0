package rtc_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/rtc"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// whepViewer is a pion peer that receives through WHEP.
type whepViewer struct {
	pc       *webrtc.PeerConnection
	location string
	mu       sync.Mutex
	packets  map[string][]whepPacket
}

type whepPacket struct {
	arrival time.Time
	ssrc    uint32
	ts      uint32
}

func (w *whepViewer) count(kind string, since time.Time) (n int, ssrcs map[uint32]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ssrcs = map[uint32]bool{}
	for _, p := range w.packets[kind] {
		if p.arrival.After(since) {
			n++
			ssrcs[p.ssrc] = true
		}
	}
	return n, ssrcs
}

func dialWHEP(t *testing.T, url string) (*whepViewer, *http.Response) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	must(t, m.RegisterDefaultCodecs())
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Retransmissions reuse sequence numbers already seen: the test viewer must not drop them,
	// or it could not tell whether the device resent anything.
	se.DisableSRTPReplayProtection(true)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	t.Cleanup(func() { pc.Close() })
	w := &whepViewer{pc: pc, packets: map[string][]whepPacket{}}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				w.mu.Lock()
				k := tr.Kind().String()
				w.packets[k] = append(w.packets[k], whepPacket{time.Now(), p.SSRC, p.Timestamp})
				w.mu.Unlock()
			}
		}()
	})
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		must(t, err)
	}
	offer, err := pc.CreateOffer(nil)
	must(t, err)
	g := webrtc.GatheringCompletePromise(pc)
	must(t, pc.SetLocalDescription(offer))
	<-g
	resp, err := http.Post(url, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST: %s: %s", resp.Status, body)
	}
	w.location = resp.Header.Get("Location")
	must(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}))
	return w, resp
}

func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWHEPViewerIsCutAtOnceAndResumesOnTheSameSender(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 20*time.Second)
	w, resp := dialWHEP(t, r.http.URL+"/whep")
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("answer Content-Type %q", ct)
	}
	if !strings.HasPrefix(w.location, "/whep/") {
		t.Fatalf("Location %q", w.location)
	}
	eventually(t, "video", 5*time.Second, func() bool { n, _ := w.count("video", time.Time{}); return n > 0 })
	_, before := w.count("video", time.Time{})

	cut := time.Now()
	_, err := r.dev.PressButton(ctx, cut)
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	w.mu.Lock()
	for _, k := range []string{"video", "audio"} {
		for _, p := range w.packets[k] {
			if !r.srv.CaptureTime(device.Kind(k), p.ts).Before(cut) {
				t.Errorf("%s packet of a frame captured after the cut", k)
			}
		}
	}
	w.mu.Unlock()

	lift := time.Now()
	_, err = r.dev.PressButton(ctx, lift)
	must(t, err)
	eventually(t, "video after lift", 5*time.Second, func() bool { n, _ := w.count("video", lift); return n > 0 })
	eventually(t, "audio after lift", 5*time.Second, func() bool { n, _ := w.count("audio", lift); return n > 0 })
	_, after := w.count("video", lift)
	for ssrc := range after {
		if !before[ssrc] {
			t.Errorf("video resumed on SSRC %d, not on the same sender %v", ssrc, before)
		}
	}

	req, _ := http.NewRequest(http.MethodDelete, r.http.URL+w.location, nil)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("DELETE: %s", res.Status)
	}
	eventually(t, "session gone", 2*time.Second, func() bool { return r.srv.Viewers() == 0 })
	res, err = http.DefaultClient.Do(req)
	must(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %s, want 404", res.Status)
	}
}

func TestWHEPRefusesBadOffers(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, tc := range []struct {
		name, ctype, body string
		want              int
	}{
		{"broken SDP", "application/sdp", "v=0\r\nthis is not sdp\r\n", http.StatusBadRequest},
		{"empty", "application/sdp", "", http.StatusBadRequest},
		{"not SDP", "application/json", `{"sdp":"v=0"}`, http.StatusUnsupportedMediaType},
		{"oversized", "application/sdp", strings.Repeat("a=x\r\n", 20000), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(r.http.URL+"/whep", tc.ctype, strings.NewReader(tc.body))
			must(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %s", resp.Status, body)
			}
			if len(body) == 0 {
				t.Error("no error text")
			}
			if n := r.srv.Viewers(); n != 0 {
				t.Errorf("viewers = %d", n)
			}
		})
	}
}

func TestNothingIsRetransmittedToAWHEPViewerDuringPrivacy(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 20*time.Second)
	w, _ := dialWHEP(t, r.http.URL+"/whep")
	eventually(t, "video", 5*time.Second, func() bool { n, _ := w.count("video", time.Time{}); return n > 5 })
	_, err := r.dev.PressButton(ctx, time.Now())
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	var mediaSSRC uint32
	for _, rc := range w.pc.GetReceivers() {
		if tr := rc.Track(); tr != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			mediaSSRC = uint32(tr.SSRC())
		}
	}
	// The viewer says it lost every sequence number: a responder would resend its whole buffer.
	after := time.Now()
	var nacks []rtcp.NackPair
	for base := 0; base < 65536; base += 17 {
		nacks = append(nacks, rtcp.NackPair{PacketID: uint16(base), LostPackets: 0xffff})
	}
	for len(nacks) > 0 {
		k := min(len(nacks), 100)
		must(t, w.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: mediaSSRC, Nacks: nacks[:k]}}))
		nacks = nacks[k:]
	}
	time.Sleep(500 * time.Millisecond)
	if n, _ := w.count("video", after); n > 0 {
		t.Errorf("%d video packets resent during privacy in answer to NACKs", n)
	}
}

func TestOnlyTheViewerWhoMadeAWHEPSessionEndsIt(t *testing.T) {
	r := newRig(t, rigOptions{})
	// The daemon names each request's credential (rtc.WithViewer); here a header stands for it.
	named := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.srv.Handler().ServeHTTP(w, req.WithContext(rtc.WithViewer(req.Context(), req.Header.Get("X-Viewer"))))
	}))
	defer named.Close()
	w, _ := dialWHEP(t, named.URL+"/whep") // made by "" (no header)
	del := func(viewer string) int {
		req, _ := http.NewRequest(http.MethodDelete, named.URL+w.location, nil)
		req.Header.Set("X-Viewer", viewer)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := del("mallory"); code != http.StatusNotFound {
		t.Errorf("DELETE by another viewer: %d, want 404", code)
	}
	if r.srv.Viewers() != 1 {
		t.Fatalf("another viewer ended the session")
	}
	if code := del(""); code != http.StatusOK {
		t.Errorf("DELETE by its maker: %d, want 200", code)
	}
}

// restartWHEP is a viewer's ICE restart over WHEP: a new offer with new credentials, PATCHed
// as a fragment; the camera's fragment makes the new answer out of the old one.
func (w *whepViewer) restartWHEP(t *testing.T, base string) *http.Response {
	t.Helper()
	offer, err := w.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	must(t, err)
	g := webrtc.GatheringCompletePromise(w.pc)
	must(t, w.pc.SetLocalDescription(offer))
	<-g
	local := w.pc.LocalDescription().SDP
	frag := "a=ice-ufrag:" + attr(local, "ice-ufrag") + "\r\na=ice-pwd:" + attr(local, "ice-pwd") + "\r\n"
	req, err := http.NewRequest(http.MethodPatch, base+w.location, strings.NewReader(frag))
	must(t, err)
	req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp
	}
	// The new answer: the old one with the camera's new credentials and candidates.
	var lines []string
	candidatesAdded := false
	for _, l := range strings.Split(strings.TrimRight(w.pc.RemoteDescription().SDP, "\r\n"), "\r\n") {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			l = "a=ice-ufrag:" + attr(string(body), "ice-ufrag")
		case strings.HasPrefix(l, "a=ice-pwd:"):
			l = "a=ice-pwd:" + attr(string(body), "ice-pwd")
		case strings.HasPrefix(l, "a=candidate:"), l == "a=end-of-candidates":
			if candidatesAdded {
				continue
			}
			candidatesAdded = true
			for _, c := range strings.Split(string(body), "\r\n") {
				if strings.HasPrefix(c, "a=candidate:") {
					lines = append(lines, c)
				}
			}
			continue
		}
		lines = append(lines, l)
	}
	must(t, w.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: strings.Join(lines, "\r\n") + "\r\n"}))
	return resp
}

func attr(sdp, name string) string {
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "a="+name+":"); ok {
			return v
		}
	}
	return ""
}

func TestAWHEPViewerRestartsICEWithAPatch(t *testing.T) {
	r := newRig(t, rigOptions{})
	w, _ := dialWHEP(t, r.http.URL+"/whep")
	eventually(t, "video", 10*time.Second, func() bool { n, _ := w.count("video", time.Time{}); return n > 0 })
	before := attr(w.pc.RemoteDescription().SDP, "ice-ufrag")
	resp := w.restartWHEP(t, r.http.URL)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/trickle-ice-sdpfrag" {
		t.Fatalf("PATCH: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if after := attr(w.pc.RemoteDescription().SDP, "ice-ufrag"); after == before || after == "" {
		t.Fatalf("the camera's ufrag %q -> %q: want new credentials", before, after)
	}
	restarted := time.Now()
	eventually(t, "video after the restart", 10*time.Second, func() bool { n, _ := w.count("video", restarted.Add(time.Second)); return n > 0 })

	// Trickled candidates alone are refused, as is another content type.
	for _, tc := range []struct {
		ct, body string
		want     int
	}{
		{"application/trickle-ice-sdpfrag", "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", http.StatusMethodNotAllowed},
		{"application/sdp", "v=0\r\n", http.StatusUnsupportedMediaType},
	} {
		req, _ := http.NewRequest(http.MethodPatch, r.http.URL+w.location, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.ct)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("PATCH %s: %s, want %d", tc.ct, resp.Status, tc.want)
		}
	}
}
