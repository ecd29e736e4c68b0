package rtc_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc/rtctest"
	"github.com/pion/webrtc/v4"
)

var fingerprintLine = regexp.MustCompile(`(?m)^a=fingerprint:(\S+) (\S+)\r$`)

// withFingerprints rewrites every a=fingerprint line of sdp with f(hash, value).
func withFingerprints(t testing.TB, sdp string, f func(hash, value string) string) string {
	t.Helper()
	if !fingerprintLine.MatchString(sdp) {
		t.Fatal("no a=fingerprint in the SDP")
	}
	return fingerprintLine.ReplaceAllStringFunc(sdp, func(line string) string {
		m := fingerprintLine.FindStringSubmatch(line)
		if out := f(m[1], m[2]); out != "" {
			return "a=fingerprint:" + out + "\r"
		}
		return "a=x-removed\r"
	})
}

// withMSections adds n small video m-sections to sdp.
func withMSections(sdp string, n int) string {
	var b strings.Builder
	b.WriteString(sdp)
	for i := range n {
		fmt.Fprintf(&b, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:x%d\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n", i)
	}
	return b.String()
}

func TestSDPLimitsRefuseBadWHEPOffersAndCountNoViewer(t *testing.T) {
	r := newRig(t, rigOptions{})
	good := offerSDP(t, 1, 1, false)
	corrupt := func(f func(hash, value string) string) string { return withFingerprints(t, good, f) }
	for _, tc := range []struct {
		name, sdp, reason, want string
	}{
		{"100 m-sections", withMSections(good, 98), "media", "100 m-sections"},
		{"100 browser-size m-sections", offerSDP(t, 50, 50, false), "too_large", "larger than 32768 bytes"},
		{"corrupted fingerprint", corrupt(func(h, v string) string { return h + " ZZ" + v[2:] }), "fingerprint", "hex bytes"},
		{"fingerprint a byte short", corrupt(func(h, v string) string { return h + " " + v[3:] }), "fingerprint", "32 hex bytes"},
		{"fingerprint without a value", corrupt(func(h, v string) string { return h }), "fingerprint", "malformed a=fingerprint"},
		{"sha-1 fingerprint", corrupt(func(h, v string) string { return "sha-1 " + v[:59] }), "fingerprint", "sha-256"},
		{"no fingerprint", corrupt(func(h, v string) string { return "" }), "fingerprint", "no DTLS fingerprint"},
		{"two spaces in the fingerprint", corrupt(func(h, v string) string { return h + "  " + v }), "fingerprint", "malformed a=fingerprint"},
		{"no m-section", strings.SplitN(good, "m=", 2)[0], "media", "nothing to watch"},
		{"two video m-sections", offerSDP(t, 2, 0, false), "media", "more than one video"},
		{"a data channel", offerSDP(t, 1, 0, true), "media", "data channels are not supported"},
		{"not SDP", "v=0\r\nthis is not sdp\r\n", "malformed", "malformed SDP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.srv.SDPRefused()[tc.reason]
			got := postOffer(t, http.DefaultClient, r.http.URL+"/whep", tc.sdp)
			status := http.StatusBadRequest
			if tc.reason == "too_large" {
				status = http.StatusRequestEntityTooLarge
			}
			if got.status != status || !strings.Contains(got.body, tc.want) {
				t.Errorf("%d %q; want %d saying %q", got.status, got.body, status, tc.want)
			}
			if n := r.srv.SDPRefused()[tc.reason]; n != before+1 {
				t.Errorf("SDPRefused[%q] = %d, want %d", tc.reason, n, before+1)
			}
			if n, slots := r.srv.Viewers(), r.srv.ViewerSlots(); n != 0 || slots != 0 {
				t.Errorf("viewers %d, slots %d after a refused offer", n, slots)
			}
		})
	}
	// Upper-case hash names and lower-case hex are still fingerprints.
	ok := corrupt(func(h, v string) string { return strings.ToUpper(h) + " " + strings.ToLower(v) })
	if got := postOffer(t, http.DefaultClient, r.http.URL+"/whep", ok); got.status != http.StatusCreated {
		t.Errorf("a good offer: %d %q", got.status, got.body)
	}
	if n := r.srv.Viewers(); n != 1 {
		t.Errorf("viewers = %d after a good offer, want 1", n)
	}
}

func TestSDPLimitsRefuseBadWebSocketAnswersAndKeepTheSession(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 20*time.Second)
	// The viewer's own peer answers nothing: answers come from pc, made here.
	v := r.dial(ctx, rtctest.Options{Answer: func(int) bool { return false }})
	must(t, v.WaitFor(ctx, "offer", func(v *rtctest.Viewer) bool { return len(v.Offers()) == 1 }))
	pc := newTestPeer(t)
	var packets atomic.Int64
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				packets.Add(1)
			}
		}()
	})
	must(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: v.Offers()[0].SDP}))
	answer, err := pc.CreateAnswer(nil)
	must(t, err)
	g := webrtc.GatheringCompletePromise(pc)
	must(t, pc.SetLocalDescription(answer))
	<-g
	good := pc.LocalDescription().SDP
	audio := good[strings.Index(good, "m=audio"):]

	for i, tc := range []struct{ name, sdp, want string }{
		{"corrupted fingerprint", withFingerprints(t, good, func(h, v string) string { return h + " " + v[:len(v)-2] + "GG" }), "fingerprint"},
		{"an extra m-section", good + audio, "3 m-sections"},
	} {
		must(t, v.Send(ctx, map[string]string{"type": "answer", "sdp": tc.sdp}))
		must(t, v.WaitFor(ctx, "error", func(v *rtctest.Viewer) bool { return len(v.Errors()) > i }))
		if e := v.Errors()[i]; !strings.HasPrefix(e, "bad answer") || !strings.Contains(e, tc.want) {
			t.Errorf("%s: error %q, want a bad answer about %q", tc.name, e, tc.want)
		}
	}
	refused := r.srv.SDPRefused()
	if refused["fingerprint"] != 1 || refused["media"] != 1 {
		t.Errorf("SDPRefused = %v, want one fingerprint and one media", refused)
	}
	// The session waited: the good answer is applied and media flows.
	must(t, v.Send(ctx, map[string]string{"type": "answer", "sdp": good}))
	eventually(t, "media to the answering peer", 10*time.Second, func() bool { return packets.Load() > 0 })
	if ended, err := v.Ended(); ended || r.srv.Viewers() != 1 {
		t.Errorf("session ended (%v) or viewers %d", err, r.srv.Viewers())
	}
	if errs := v.Errors(); len(errs) > 2 {
		t.Errorf("errors after the good answer: %q", errs[2:])
	}
}
