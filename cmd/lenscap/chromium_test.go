package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc/rtctest"
	"github.com/lenscap/lenscap/rtc/rtctest/chromiumtest"
)

// framesDecoded reads the page's video framesDecoded (-1 when there is no video inbound-rtp).
func framesDecoded(ctx context.Context, b *chromiumtest.Browser) (int64, error) {
	st, err := b.InboundRTP(ctx)
	if err != nil {
		return 0, err
	}
	v, ok := st["video"]
	if !ok {
		return -1, nil
	}
	return v.FramesDecoded, nil
}

// waitDecoding waits until the page's decoded video frames grow past from.
func waitDecoding(ctx context.Context, t *testing.T, b *chromiumtest.Browser, from int64) int64 {
	t.Helper()
	for {
		n, err := framesDecoded(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if n > from+10 {
			return n
		}
		select {
		case <-ctx.Done():
			t.Fatalf("video frames decoded stuck at %d", n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestChromiumViewerSeesTheButtonCutAndTheLift(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, d.url+"/"); err != nil {
		t.Fatal(err)
	}
	waitDecoding(ctx, t, b, 0)

	press := func() {
		t.Helper()
		if code, body := d.do(t, "POST", "/api/button", "", nil); code != http.StatusOK {
			t.Fatalf("press: %d %s", code, body)
		}
	}
	var mark float64
	if err := b.Eval(ctx, "performance.now()", &mark); err != nil {
		t.Fatal(err)
	}
	press()
	cutCtx, cutCancel := context.WithTimeout(ctx, time.Second)
	defer cutCancel()
	for _, kind := range []string{"video", "audio"} {
		js := fmt.Sprintf("window.lenscap.events.some(e => e.type === 'removetrack' && e.kind === %q && e.t > %f)", kind, mark)
		if err := b.WaitFor(cutCtx, js, 20*time.Millisecond); err != nil {
			t.Fatalf("no removetrack for %s within 1 s of the press: %v", kind, err)
		}
	}
	// Decoding stops: the video inbound-rtp goes away, or its counter stands still.
	if err := b.WaitFor(cutCtx, "(async () => { const s = await window.lenscap.pc.getStats(); let v = null; s.forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') v = r; }); return v === null; })()", 20*time.Millisecond); err != nil {
		n1, _ := framesDecoded(ctx, b)
		time.Sleep(300 * time.Millisecond)
		n2, _ := framesDecoded(ctx, b)
		if n2 != n1 {
			t.Fatalf("video still decoding after the cut: %d then %d frames", n1, n2)
		}
	}
	var banner string
	if err := b.Eval(ctx, "document.getElementById('banner-text').textContent", &banner); err != nil {
		t.Fatal(err)
	}
	t.Logf("banner while private: %q", banner)

	press()
	waitDecoding(ctx, t, b, 0)
	var events []struct {
		Type string `json:"type"`
		Kind string `json:"kind"`
	}
	if err := b.Eval(ctx, "window.lenscap.events", &events); err != nil {
		t.Fatal(err)
	}
	t.Logf("page events: %v", events)
	if exc := b.Exceptions(); len(exc) > 0 {
		t.Errorf("page exceptions: %v", exc)
	}
}

func TestChromiumWatchesACameraThatOnlyUsesTURN(t *testing.T) {
	turn := rtctest.StartTURN(t)
	d := startDaemon(t, t.TempDir(), "--ice-servers", turn.URL, "--turn-secret", turn.Secret, "--ice-transport-policy", "relay")
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, d.url+"/"); err != nil {
		t.Fatal(err)
	}
	waitDecoding(ctx, t, b, 0)
	// The camera offers relay candidates only: the pair the browser uses ends at the relay.
	js := `(async () => { const s = await window.lenscap.pc.getStats(); let pair = null, remote = {};
	  s.forEach(r => { if (r.type === 'candidate-pair' && r.state === 'succeeded' && r.nominated) pair = r;
	    if (r.type === 'remote-candidate') remote[r.id] = r.candidateType; });
	  return pair ? remote[pair.remoteCandidateId] : 'none'; })()`
	var typ string
	if err := b.Eval(ctx, js, &typ); err != nil {
		t.Fatal(err)
	}
	if typ != "relay" {
		t.Errorf("the browser's selected pair ends at a %q candidate, want relay", typ)
	}
	if turn.Allocations() == 0 {
		t.Error("turnserver logged no allocation")
	}
}

// TestChromiumRecoversFromAnICERestart: the relay both sides use goes away and comes back
// empty (as a viewer's NAT rebinding kills its allocation), so the camera offers an ICE
// restart. The page's answer must carry its newly gathered candidates (the page does not
// trickle): after setLocalDescription of a restart's answer Chromium may still say gathering
// is complete, from the previous generation, and an answer sent then has no candidate the
// camera can reach.
func TestChromiumRecoversFromAnICERestart(t *testing.T) {
	turn := rtctest.StartTURN(t)
	d := startDaemon(t, t.TempDir(), "--ice-servers", turn.URL, "--turn-secret", turn.Secret, "--ice-transport-policy", "relay")
	b := chromiumtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.Navigate(ctx, d.url+"/"); err != nil {
		t.Fatal(err)
	}
	waitDecoding(ctx, t, b, 0)
	// What the page sent: each answer's ICE ufrag and relay candidates, from its socket.
	const hook = `(() => { window.sentAnswers = []; const send = WebSocket.prototype.send;
	  WebSocket.prototype.send = function (data) {
	    try { const m = JSON.parse(data); if (m.type === 'answer') window.sentAnswers.push({
	      ufrag: (m.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1],
	      relays: (m.sdp.match(/^a=candidate:.* typ relay.*$/mg) || []).length,
	      gathering: window.lenscap.pc && window.lenscap.pc.iceGatheringState }); } catch (_) {}
	    return send.call(this, data); };
	  return true; })()`
	var ok bool
	if err := b.Eval(ctx, hook, &ok); err != nil {
		t.Fatal(err)
	}
	turn.Restart(t)
	broke := time.Now()
	type sent struct {
		Ufrag     string `json:"ufrag"`
		Relays    int    `json:"relays"`
		Gathering string `json:"gathering"`
	}
	var answers []sent
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
	defer rcancel()
	if err := b.WaitFor(rctx, "window.sentAnswers.length > 0", 50*time.Millisecond); err != nil {
		t.Fatalf("the page sent no answer within 15 s of the relay's restart: %v", err)
	}
	restarted := time.Since(broke)
	// Decoding again: frames decoded after the answer went out (none arrive while the path is
	// broken).
	from, err := framesDecoded(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for m := from; m <= from+10; time.Sleep(50 * time.Millisecond) {
		if m, err = framesDecoded(ctx, b); err != nil {
			t.Fatal(err)
		}
		if rctx.Err() != nil {
			var sdp string
			_ = b.Eval(ctx, "window.sentAnswers", &answers)
			_ = b.Eval(ctx, "window.lenscap.pc ? window.lenscap.pc.localDescription.sdp : ''", &sdp)
			t.Fatalf("video not back within 15 s of the relay's restart (frames %d, %d when the answer went out); answers sent %+v; the page's local description:\n%s",
				m, from, answers, sdp)
		}
	}
	_ = b.Eval(ctx, "window.sentAnswers", &answers)
	t.Logf("answer sent %.1fs after the relay went away; video again %.1fs after; answers %+v", restarted.Seconds(), time.Since(broke).Seconds(), answers)
	for _, a := range answers {
		if a.Relays == 0 {
			t.Errorf("the restart's answer (ufrag %s) carried no relay candidate (gathering %q when sent)", a.Ufrag, a.Gathering)
		}
	}
}
