package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/rtctest"
)

// records is a slog.Handler that keeps every record, at every level.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}

// find returns the records whose message contains s, and those at warn or above.
func (r *records) find(s string) (found, warns []slog.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if strings.Contains(rec.Message, s) {
			found = append(found, rec)
		}
		if rec.Level >= slog.LevelWarn {
			warns = append(warns, rec)
		}
	}
	return found, warns
}

func TestPionLogsAViewerLeavingNormallyIsNoWarning(t *testing.T) {
	video := devicetest.NewDriver(device.KindVideo, devicetest.Options{Interval: 10 * time.Millisecond})
	audio := devicetest.NewDriver(device.KindAudio, devicetest.Options{Interval: 10 * time.Millisecond})
	dev, err := device.New(device.Config{Store: device.NewStore(t.TempDir())}, video, audio)
	if err != nil {
		t.Fatal(err)
	}
	logs := &records{}
	srv, err := rtc.NewServer(rtc.Config{
		Logger:       slog.New(slog.DiscardHandler),
		PionLogger:   pionLogs{slog.New(logs)},
		LoopbackOnly: true,
		State:        func() any { return dev.Status() },
	}, map[device.Kind]device.Codec{device.KindVideo: video.Codec(), device.KindAudio: audio.Codec()})
	if err != nil {
		t.Fatal(err)
	}
	dev.AddSink(srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	<-dev.Ready()
	hs := httptest.NewServer(srv.Handler())
	defer func() {
		srv.Close()
		hs.Close()
		cancel()
		<-done
	}()

	v, err := rtctest.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", rtctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = v.WaitFor(ctx, "video", rtctest.Receiving("video", time.Time{}))
	if err != nil {
		v.Close()
		t.Fatal(err)
	}
	v.Close() // the viewer leaves, as a browser tab closing

	// pion's undeclared-media goroutines end once the connection's SRTP sessions close.
	for {
		rtp, _ := logs.find("Failed to accept RTP stream is already closed")
		rtcp, _ := logs.find("Failed to accept RTCP stream is already closed")
		if len(rtp) > 0 && len(rtcp) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("pion never ended its undeclared-media goroutines")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, warns := logs.find(""); len(warns) > 0 {
		for _, w := range warns {
			t.Errorf("%s %s", w.Level, w.Message)
		}
	}
}

func TestPionLogsKeepOtherWarningsWarnings(t *testing.T) {
	logs := &records{}
	l := pionLogs{slog.New(logs)}.NewLogger("pc")
	l.Warnf("Failed to accept RTP %v", errors.New("stream is already closed"))
	l.Warnf("Failed to accept RTP %v", errors.New("SRTP auth failed"))
	l.Warnf("Failed to accept RTCP %v", "stream is already closed") // not srtp's error
	l.Warnf("Incoming unhandled RTCP ssrc(%d), OnTrack will not be fired", 42)
	l.Infof("ICE connection state changed: %s", "connected")
	l.Warnf("Remote mDNS candidate added, but mDNS is disabled: (%s)", "0c7e.local")
	l.Warnf("Warning: mux: no endpoint for packet starting with %d, adding to queue size(%d)", 22, 0)
	l.Warnf("Warning: mux: no endpoint for packet starting with %d, not adding to queue size(%d)", 22, 1)
	logs.mu.Lock()
	defer logs.mu.Unlock()
	want := []slog.Level{slog.LevelDebug, slog.LevelWarn, slog.LevelWarn, slog.LevelWarn, slog.LevelDebug,
		slog.LevelDebug, slog.LevelDebug, slog.LevelWarn}
	if len(logs.recs) != len(want) {
		t.Fatalf("%d records, want %d", len(logs.recs), len(want))
	}
	for i, rec := range logs.recs {
		if rec.Level != want[i] {
			t.Errorf("%q at %s, want %s", rec.Message, rec.Level, want[i])
		}
	}
}
