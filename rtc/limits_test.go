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

	"github.com/coder/websocket"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/rtctest"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// offerSDP is a real pion viewer's complete offer with video and audio recvonly m-sections
// (and a data channel when dc is set), made and thrown away: for requests that need a
// genuine offer but no viewer behind it.
func offerSDP(t testing.TB, video, audio int, dc bool) string {
	t.Helper()
	pc := newTestPeer(t)
	defer pc.Close()
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	for range video {
		_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv)
		must(t, err)
	}
	for range audio {
		_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv)
		must(t, err)
	}
	if dc {
		_, err := pc.CreateDataChannel("chat", nil)
		must(t, err)
	}
	offer, err := pc.CreateOffer(nil)
	must(t, err)
	g := webrtc.GatheringCompletePromise(pc)
	must(t, pc.SetLocalDescription(offer))
	<-g
	return pc.LocalDescription().SDP
}

// newTestPeer is a pion peer with the default codecs, on loopback; the test closes it.
func newTestPeer(t testing.TB) *webrtc.PeerConnection {
	t.Helper()
	m := &webrtc.MediaEngine{}
	must(t, m.RegisterDefaultCodecs())
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	must(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc
}

// whepReply is what the device answered to a WHEP POST.
type whepReply struct {
	status     int
	body       string
	retryAfter string
}

func postOffer(t testing.TB, c *http.Client, url, sdp string) whepReply {
	t.Helper()
	resp, err := c.Post(url, "application/sdp", strings.NewReader(sdp))
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	return whepReply{resp.StatusCode, string(body), resp.Header.Get("Retry-After")}
}

func TestLimitHoldsAcrossWebSocketAndWHEP(t *testing.T) {
	r := newRig(t, rigOptions{maxViewers: 2})
	ctx := ctxFor(t, 30*time.Second)
	v := r.dial(ctx, rtctest.Options{})
	must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	w, _ := dialWHEP(t, r.http.URL+"/whep")

	got := postOffer(t, http.DefaultClient, r.http.URL+"/whep", offerSDP(t, 1, 1, false))
	if got.status != http.StatusServiceUnavailable || got.retryAfter != "5" || !strings.Contains(got.body, "too many viewers") {
		t.Errorf("third viewer by WHEP: %d, Retry-After %q, %q; want 503, 5 and the reason", got.status, got.retryAfter, got.body)
	}
	refused := r.dial(ctx, rtctest.Options{})
	must(t, refused.WaitFor(ctx, "refusal", func(v *rtctest.Viewer) bool { ended, _ := v.Ended(); return ended }))
	if errs := refused.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "too many viewers") {
		t.Errorf("third viewer by WebSocket: errors %q, want one about too many viewers", errs)
	}
	if _, err := refused.Ended(); websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Errorf("third viewer by WebSocket closed with %v, want 1013 (try again later)", err)
	}
	if len(refused.Offers()) != 0 {
		t.Error("the refused WebSocket viewer got an offer")
	}
	if n, slots, rf := r.srv.Viewers(), r.srv.ViewerSlots(), r.srv.ViewersRefused(); n != 2 || slots != 2 || rf != 2 {
		t.Errorf("viewers %d, slots %d, refused %d; want 2, 2, 2", n, slots, rf)
	}

	// A viewer leaving makes room for the next.
	req, _ := http.NewRequest(http.MethodDelete, r.http.URL+w.location, nil)
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	res.Body.Close()
	eventually(t, "WHEP viewer gone", 5*time.Second, func() bool { return r.srv.Viewers() == 1 })
	next := r.dial(ctx, rtctest.Options{})
	must(t, next.WaitFor(ctx, "video for the next viewer", rtctest.Receiving("video", time.Time{})))
}

func TestLimitCountsViewersBeingSetUp(t *testing.T) {
	const limit, offers = 3, 12
	r := newRig(t, rigOptions{maxViewers: limit})
	sdp := offerSDP(t, 1, 1, false)
	var wg sync.WaitGroup
	statuses := make(chan int, offers)
	for range offers {
		wg.Go(func() { statuses <- postOffer(t, http.DefaultClient, r.http.URL+"/whep", sdp).status })
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != limit || count[http.StatusServiceUnavailable] != offers-limit {
		t.Errorf("%d concurrent offers under a limit of %d: %v", offers, limit, count)
	}
	if n := r.srv.ViewerSlots(); n != limit {
		t.Errorf("%d viewer slots taken, want %d", n, limit)
	}
}

func TestLimitSlotIsFreedWhenSetupFails(t *testing.T) {
	r := newRig(t, rigOptions{maxViewers: 1})
	ctx := ctxFor(t, 20*time.Second)
	// Passes lenscap's checks (fingerprint, m-sections) but not pion's: no ICE credentials.
	var kept []string
	for _, line := range strings.Split(offerSDP(t, 1, 1, false), "\r\n") {
		if !strings.HasPrefix(line, "a=ice-ufrag") && !strings.HasPrefix(line, "a=ice-pwd") {
			kept = append(kept, line)
		}
	}
	bad := strings.Join(kept, "\r\n")
	for range 5 {
		if got := postOffer(t, http.DefaultClient, r.http.URL+"/whep", bad); got.status != http.StatusBadRequest {
			t.Fatalf("offer without ICE credentials: %d %q, want 400", got.status, got.body)
		}
	}
	if n := r.srv.ViewerSlots(); n != 0 {
		t.Fatalf("%d viewer slots still taken after failed set-ups", n)
	}
	v := r.dial(ctx, rtctest.Options{})
	must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
}

func TestLimitIdleWebSocketViewerIsDropped(t *testing.T) {
	r := newRig(t, rigOptions{pingInterval: 100 * time.Millisecond, idleTimeout: 300 * time.Millisecond})
	ctx := ctxFor(t, 20*time.Second)
	live := r.dial(ctx, rtctest.Options{})
	must(t, live.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))

	// A client that never reads never sees the pings, so it answers none.
	silent, _, err := websocket.Dial(ctx, r.wsURL(), nil)
	must(t, err)
	defer silent.CloseNow()
	eventually(t, "two viewers", 2*time.Second, func() bool { return r.srv.Viewers() == 2 })
	start := time.Now()
	eventually(t, "the silent viewer dropped", 3*time.Second, func() bool { return r.srv.Viewers() == 1 })
	t.Logf("silent viewer dropped after %v (ping every 100ms, idle timeout 300ms)", time.Since(start).Round(10*time.Millisecond))
	if n := r.srv.IdleDropped(); n != 1 {
		t.Errorf("IdleDropped = %d, want 1", n)
	}

	// The viewer that answers pings stays, and keeps receiving.
	time.Sleep(time.Second)
	since := time.Now()
	must(t, live.WaitFor(ctx, "video after a second of pings", rtctest.Receiving("video", since)))
	if ended, err := live.Ended(); ended {
		t.Fatalf("a viewer that answers pings was dropped: %v", err)
	}
	if n := r.srv.IdleDropped(); n != 1 {
		t.Errorf("IdleDropped = %d, want 1", n)
	}
}

func TestLimitOneHolderTakesAtMostItsShare(t *testing.T) {
	r := newRig(t, rigOptions{})
	named := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.srv.Handler().ServeHTTP(w, req.WithContext(rtc.WithViewer(req.Context(), req.Header.Get("X-Viewer"))))
	}))
	defer named.Close()
	post := func(holder string) int {
		req, _ := http.NewRequest(http.MethodPost, named.URL+"/whep", strings.NewReader(offerSDP(t, 1, 1, false)))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("X-Viewer", holder)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range rtc.DefaultMaxViewersPerHolder {
		if code := post("mallory"); code != http.StatusCreated {
			t.Fatalf("mallory's viewer %d: %d", i+1, code)
		}
	}
	if code := post("mallory"); code != http.StatusServiceUnavailable {
		t.Errorf("mallory's viewer %d: %d, want 503", rtc.DefaultMaxViewersPerHolder+1, code)
	}
	if code := post("grandma"); code != http.StatusCreated {
		t.Errorf("another holder after mallory's share: %d, want 201", code)
	}
}
