package rtc_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc/rtctest"
)

func TestMalformedSignallingGetsAnErrorAndChangesNothing(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 20*time.Second)
	v := r.dial(ctx, rtctest.Options{})
	must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	offers := len(v.Offers())

	inputs := []struct {
		raw  string
		want string
	}{
		{`{"type":`, "malformed"},
		{`[1,2,3]`, "malformed"},
		{`{"type":"dance"}`, "unknown message type"},
		{`{"type":"answer","sdp":"v=0 garbage"}`, "unexpected answer"},
		{`{"type":"offer","sdp":"v=0"}`, "offerer"},
		{`{"type":"candidate"}`, "without candidate"},
		{`{"type":"candidate","candidate":{"candidate":"candidate:bogus"}}`, "bad candidate"},
		{`{"type":42}`, "malformed"},
	}
	for i, in := range inputs {
		must(t, v.SendRaw(ctx, []byte(in.raw)))
		must(t, v.WaitFor(ctx, "error reply", func(v *rtctest.Viewer) bool { return len(v.Errors()) > i }))
		if got := v.Errors()[i]; !strings.Contains(got, in.want) {
			t.Errorf("%s: error %q, want it to mention %q", in.raw, got, in.want)
		}
	}
	// Still the same session, still receiving, no renegotiation.
	since := time.Now()
	must(t, v.WaitFor(ctx, "video after bad input", rtctest.Receiving("video", since)))
	if n := len(v.Offers()); n != offers {
		t.Errorf("%d offers after bad input, want %d", n, offers)
	}
	if r.srv.Viewers() != 1 {
		t.Errorf("viewers = %d, want 1", r.srv.Viewers())
	}
}

func TestBrokenAnswerIsRefusedAndTheSessionWaitsForAGoodOne(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 20*time.Second)
	// The viewer answers the first offer itself; it ignores the second and we answer it badly.
	v := r.dial(ctx, rtctest.Options{Answer: func(n int) bool { return n != 2 }})
	must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	_, err := r.dev.PressButton(ctx, time.Now())
	must(t, err)
	must(t, v.WaitFor(ctx, "second offer", func(v *rtctest.Viewer) bool { return len(v.Offers()) == 2 }))
	must(t, v.Send(ctx, map[string]string{"type": "answer", "sdp": "v=0\r\nnot really\r\n"}))
	must(t, v.WaitFor(ctx, "error", func(v *rtctest.Viewer) bool {
		return slices.ContainsFunc(v.Errors(), func(e string) bool { return strings.Contains(e, "bad answer") })
	}))
	if ended, _ := v.Ended(); ended {
		t.Fatal("a broken answer ended the session")
	}
}

func TestOversizedMessageClosesTheSocket(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 20*time.Second)
	v := r.dial(ctx, rtctest.Options{})
	must(t, v.WaitFor(ctx, "first offer", func(v *rtctest.Viewer) bool { return len(v.Offers()) > 0 }))
	_ = v.SendRaw(ctx, []byte(`{"type":"candidate","x":"`+strings.Repeat("x", 100<<10)+`"}`))
	must(t, v.WaitFor(ctx, "close", func(v *rtctest.Viewer) bool { ended, _ := v.Ended(); return ended }))
	_, err := v.Ended()
	// The device closes with 1009 (message too big); a client still writing the rest of its
	// message may see the connection reset instead.
	if !strings.Contains(err.Error(), "MessageTooBig") && !strings.Contains(err.Error(), "reset") {
		t.Errorf("closed with %v, want status 1009 (message too big)", err)
	}
	eventually(t, "session gone", 2*time.Second, func() bool { return r.srv.Viewers() == 0 })
	if st := r.dev.Status(); st.Video.Private || !st.Video.Live {
		t.Errorf("device changed: %+v", st)
	}
}
