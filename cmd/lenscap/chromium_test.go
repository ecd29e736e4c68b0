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
