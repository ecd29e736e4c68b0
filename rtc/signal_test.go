package rtc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/rtctest"
)

// pipe is a signalling channel in memory: the camera's end is an rtc.SignalConn, the
// viewer's an rtctest.Link. Closing the viewer's end is the viewer gone.
type pipe struct {
	up, down chan []byte   // viewer -> camera, camera -> viewer
	gone     chan struct{} // the viewer hung up
	mu       sync.Mutex    // a Write and the Close that closes up
	closed   bool
}

var _ rtc.SignalConn = (*pipe)(nil)

func newPipe() *pipe {
	return &pipe{up: make(chan []byte, 16), down: make(chan []byte, 64), gone: make(chan struct{})}
}

func (p *pipe) Send(ctx context.Context, b []byte) error {
	select {
	case p.down <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipe) Recv() <-chan []byte { return p.up }

type pipeViewer struct{ p *pipe }

func (l pipeViewer) Read(ctx context.Context) ([]byte, error) {
	select {
	case b := <-l.p.down:
		return b, nil
	case <-l.p.gone:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l pipeViewer) Write(ctx context.Context, b []byte) error {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	if l.p.closed {
		return io.EOF
	}
	select {
	case l.p.up <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l pipeViewer) Close() error {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	if !l.p.closed {
		l.p.closed = true
		close(l.p.up)
		close(l.p.gone)
	}
	return nil
}

// serveSignal starts a session over a pipe and a viewer on its other end; served reports
// ServeSignal's result.
func (r *rig) serveSignal(ctx context.Context) (v *rtctest.Viewer, served <-chan error) {
	r.t.Helper()
	p := newPipe()
	done := make(chan error, 1)
	go func() { done <- r.srv.ServeSignal(ctx, p, nil) }()
	v, err := rtctest.Connect(pipeViewer{p}, rtctest.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { v.Close() })
	return v, done
}

func TestSignalViewerGetsTheCutAsAWebSocketViewerDoes(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 20*time.Second)
	start := time.Now()
	sv, _ := r.serveSignal(ctx)
	wv := r.dial(ctx, rtctest.Options{})
	for _, v := range []*rtctest.Viewer{sv, wv} {
		must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", start)))
		must(t, v.WaitFor(ctx, "audio", rtctest.Receiving("audio", start)))
	}
	if len(sv.Configs()) != 1 || len(sv.States()) == 0 {
		t.Fatalf("signal viewer: %d config and %d state messages before its offer", len(sv.Configs()), len(sv.States()))
	}
	cut := time.Now()
	_, err := r.dev.PressButton(ctx, cut)
	must(t, err)
	must(t, sv.WaitFor(ctx, "renegotiation", offerWith(1, "inactive", "inactive")))
	time.Sleep(300 * time.Millisecond) // anything in flight would have arrived by now
	if l := leaks(r, sv, cut, "video", "audio"); len(l) > 0 {
		t.Errorf("%d packets of frames captured after the cut, first %+v", len(l), l[0])
	}
	lift := time.Now()
	_, err = r.dev.PressButton(ctx, lift)
	must(t, err)
	must(t, sv.WaitFor(ctx, "video again", rtctest.Receiving("video", lift)))
	for _, p := range sv.Packets() {
		if p.Kind == "video" && p.Arrival.After(lift) {
			if !p.KeyStart {
				t.Errorf("first video packet after the lift is not a keyframe: %+v", p)
			}
			break
		}
	}
}

func TestSignalViewerBeyondTheLimitIsToldAndSaidBye(t *testing.T) {
	r := newRig(t, rigOptions{maxViewers: 1})
	ctx := ctxFor(t, 10*time.Second)
	first, _ := r.serveSignal(ctx)
	must(t, first.WaitFor(ctx, "first offer", func(v *rtctest.Viewer) bool { return v.OfferCount() > 0 }))
	second, served := r.serveSignal(ctx)
	must(t, second.WaitFor(ctx, "bye", func(v *rtctest.Viewer) bool { return v.Byes() > 0 }))
	if errs := second.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "too many viewers") {
		t.Errorf("refused viewer's errors: %q", errs)
	}
	if second.OfferCount() != 0 {
		t.Error("a refused viewer was offered media")
	}
	if err := <-served; err == nil {
		t.Error("ServeSignal returned nil for a refused viewer")
	}
	if n := r.srv.Viewers(); n != 1 {
		t.Errorf("viewers = %d, want 1", n)
	}
}

func TestSignalSessionEndsWithItsCredential(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 10*time.Second)
	expiring, cancel := context.WithTimeout(ctx, 1500*time.Millisecond) // the credential's expiry
	defer cancel()
	v, served := r.serveSignal(expiring)
	must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	must(t, v.WaitFor(ctx, "bye at expiry", func(v *rtctest.Viewer) bool { return v.Byes() > 0 }))
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeSignal: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("ServeSignal did not return after the credential expired")
	}
	if n := r.srv.Viewers(); n != 0 {
		t.Errorf("viewers = %d after the session ended, want 0", n)
	}
}

func TestSignalRefusesAnOversizedMessageAndGoesOn(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 15*time.Second)
	v, _ := r.serveSignal(ctx)
	must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	big, _ := json.Marshal(map[string]string{"type": "candidate", "pad": strings.Repeat("x", 70<<10)})
	must(t, v.SendRaw(ctx, big))
	must(t, v.SendRaw(ctx, []byte("{not json")))
	must(t, v.WaitFor(ctx, "two errors", func(v *rtctest.Viewer) bool { return len(v.Errors()) >= 2 }))
	if errs := v.Errors(); !strings.Contains(errs[0], "refused") || !strings.Contains(errs[1], "malformed") {
		t.Errorf("errors: %q", errs)
	}
	// The session goes on: a cut still reaches it.
	n := v.OfferCount()
	private := true
	_, err := r.dev.SetPrivacy(ctx, device.Change{Video: &private, By: device.ByRemote})
	must(t, err)
	must(t, v.WaitFor(ctx, "cut offer", offerWith(n, "inactive", "sendonly")))
}

func TestSignalViewerGoneEndsTheSession(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := ctxFor(t, 10*time.Second)
	v, served := r.serveSignal(ctx)
	must(t, v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{})))
	v.Close() // the viewer's end closed: Recv is closed
	select {
	case err := <-served:
		if err != nil && !errors.Is(err, io.EOF) {
			t.Errorf("ServeSignal: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("session outlived its viewer")
	}
	if n := r.srv.Viewers(); n != 0 {
		t.Errorf("viewers = %d, want 0", n)
	}
}
