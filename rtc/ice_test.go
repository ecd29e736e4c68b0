package rtc_test

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/rtctest"
	"github.com/pion/webrtc/v4"
)

func staticICE(string) []webrtc.ICEServer {
	return []webrtc.ICEServer{
		{URLs: []string{"stun:stun.example.org:3478"}},
		{URLs: []string{"turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"},
			Username: "cam", Credential: `pa"ss`, CredentialType: webrtc.ICECredentialTypePassword},
	}
}

func TestAWHEPAnswerCarriesTheICEServersInLinkHeaders(t *testing.T) {
	r := newRig(t, rigOptions{iceServers: staticICE})
	_, resp := dialWHEP(t, r.http.URL+"/whep")
	got := resp.Header.Values("Link")
	want := []string{
		`<stun:stun.example.org:3478>; rel="ice-server"`,
		`<turn:turn.example.org:3478?transport=udp>; rel="ice-server"; username="cam"; credential="pa\"ss"; credential-type="password"`,
		`<turns:turn.example.org:5349>; rel="ice-server"; username="cam"; credential="pa\"ss"; credential-type="password"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Link headers:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAWebSocketViewerIsToldTheICEServersBeforeTheFirstOffer(t *testing.T) {
	r := newRig(t, rigOptions{iceServers: staticICE, policy: webrtc.ICETransportPolicyRelay})
	ctx := ctxFor(t, 10*time.Second)
	v := r.dial(ctx, rtctest.Options{})
	must(t, v.WaitFor(ctx, "an offer", func(v *rtctest.Viewer) bool { return v.OfferCount() > 0 }))
	cs := v.Configs()
	if len(cs) != 1 {
		t.Fatalf("%d config messages, want 1", len(cs))
	}
	var m struct {
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	must(t, json.Unmarshal(cs[0], &m))
	if len(m.ICEServers) != 2 || m.ICEServers[1].Username != "cam" || m.ICEServers[1].Credential != `pa"ss` {
		t.Errorf("config %s", cs[0])
	}
}

func TestACameraOnRelayOnlyReachesItsViewerThroughTURN(t *testing.T) {
	turn := rtctest.StartTURN(t)
	mint := func(string) []webrtc.ICEServer {
		user, pass := rtc.TURNCredentials(turn.Secret, "lenscap-test", time.Now().Add(time.Hour))
		return []webrtc.ICEServer{{URLs: []string{turn.URL}, Username: user, Credential: pass}}
	}
	r := newRig(t, rigOptions{iceServers: mint, policy: webrtc.ICETransportPolicyRelay})
	ctx := ctxFor(t, 20*time.Second)
	v := r.dial(ctx, rtctest.Options{})
	must(t, v.WaitFor(ctx, "video through the relay", rtctest.Receiving("video", time.Time{})))
	pair, err := v.SelectedPair()
	must(t, err)
	if pair == nil || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
		t.Fatalf("selected pair %v: want the camera's relay candidate", pair)
	}
	if turn.Allocations() == 0 {
		t.Error("turnserver logged no allocation")
	}
	// The cut reaches a relayed viewer as any other.
	pressAndCheckCut(t, ctx, r, v, "through the relay")
}

func TestAViewerWithoutUDPWatchesOverICETCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	r := newRig(t, rigOptions{iceTCP: ln})
	ctx := ctxFor(t, 20*time.Second)
	v := r.dial(ctx, rtctest.Options{TCP: true})
	must(t, v.WaitFor(ctx, "video over TCP", rtctest.Receiving("video", time.Time{})))
	pair, err := v.SelectedPair()
	must(t, err)
	if pair == nil || pair.Remote.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair %v: want the camera's TCP candidate", pair)
	}
	pressAndCheckCut(t, ctx, r, v, "over TCP")
}

func TestAViewerWhosePathBrokeIsOfferedAnICERestartAndRecovers(t *testing.T) {
	turn := rtctest.StartTURN(t)
	mint := func(string) []webrtc.ICEServer {
		user, pass := rtc.TURNCredentials(turn.Secret, "lenscap-test", time.Now().Add(time.Hour))
		return []webrtc.ICEServer{{URLs: []string{turn.URL}, Username: user, Credential: pass}}
	}
	r := newRig(t, rigOptions{iceServers: mint, policy: webrtc.ICETransportPolicyRelay})
	ctx := ctxFor(t, 60*time.Second)
	v := r.dial(ctx, rtctest.Options{})
	must(t, v.WaitFor(ctx, "video through the relay", rtctest.Receiving("video", time.Time{})))
	ufrag := func(o rtctest.Offer) string {
		for _, l := range strings.Split(o.SDP, "\n") {
			if strings.HasPrefix(l, "a=ice-ufrag:") {
				return strings.TrimSpace(l)
			}
		}
		return ""
	}
	first := ufrag(v.Offers()[0])
	n := v.OfferCount()
	// The relay goes away and comes back empty: the camera's only path is gone.
	turn.Restart(t)
	broke := time.Now()
	must(t, v.WaitFor(ctx, "an ICE restart offer", func(v *rtctest.Viewer) bool {
		os := v.Offers()
		return v.OfferCount() > n && ufrag(os[len(os)-1]) != first
	}))
	restarted := time.Since(broke)
	must(t, v.WaitFor(ctx, "video again", rtctest.Receiving("video", time.Now())))
	t.Logf("ICE restart offered %.1fs after the relay went away; video again %.1fs after", restarted.Seconds(), time.Since(broke).Seconds())
	if v.Byes() != 0 {
		t.Error("the session was ended instead of restarted")
	}
}

// pressAndCheckCut presses the button and checks that the viewer, reached by path, was
// renegotiated and got no packet of a frame captured after the press.
func pressAndCheckCut(t *testing.T, ctx context.Context, r *rig, v *rtctest.Viewer, path string) {
	t.Helper()
	n := v.OfferCount()
	cut := time.Now()
	if _, err := r.dev.PressButton(ctx, cut); err != nil {
		t.Fatal(err)
	}
	must(t, v.WaitFor(ctx, "the cut's offer", rtctest.NothingSent(n)))
	time.Sleep(300 * time.Millisecond) // what was in flight has arrived
	for _, p := range v.Packets() {
		if ct := r.srv.CaptureTime(device.Kind(p.Kind), p.Timestamp); !ct.Before(cut) {
			t.Fatalf("%s packet of a frame captured %s after the cut, %s", p.Kind, ct.Sub(cut), path)
		}
	}
}
