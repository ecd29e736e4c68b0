package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/camera"
	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/rtc"
	"github.com/lenscap/lenscap/rtc/rtctest"
)

// TestSoftwareEncodedCameraReachesAPionViewer wires a camera whose frames are encoded by
// the ffmpeg fallback (a generated 640x360 sensor, libx264) into device and rtc, as the
// board will, and checks that a pion viewer receives its H.264 from an IDR on, at the
// frame rate; then that engaging video privacy releases the camera and ends ffmpeg.
func TestSoftwareEncodedCameraReachesAPionViewer(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	cam, err := camera.NewSyntheticCamera(camera.SyntheticCameraOptions{
		Format:  camera.RawFormat{PixelFormat: v4l2.PixFmtYUV420, Width: 640, Height: 360, FrameRate: 30},
		Encoder: camera.EncoderOptions{Kind: camera.EncoderSoftware},
	})
	if err != nil {
		t.Fatal(err)
	}
	mic, err := camera.NewTestTone(camera.TestToneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dev, err := device.New(device.Config{Store: device.NewStore(t.TempDir()), Logger: log}, cam, mic)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rtc.NewServer(rtc.Config{LoopbackOnly: true, Logger: log, State: func() any { return dev.Status() }},
		map[device.Kind]device.Codec{device.KindVideo: cam.Codec(), device.KindAudio: mic.Codec()})
	if err != nil {
		t.Fatal(err)
	}
	dev.AddSink(srv)
	dev.Watch(func(device.Status) { srv.StateChanged() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dev.Run(runCtx) }()
	<-dev.Ready()
	hs := httptest.NewServer(srv.Handler())
	defer func() {
		hs.CloseClientConnections()
		srv.Close()
		hs.Close()
		stop()
		if err := <-done; err != nil {
			t.Errorf("device.Run: %v", err)
		}
	}()

	v, err := rtctest.Dial(ctx, "ws"+hs.URL[len("http"):]+"/ws", rtctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	frames := func(v *rtctest.Viewer) (n int, keyFirst bool) {
		var last uint32
		first := true
		for _, p := range v.Packets() {
			if p.Kind != "video" {
				continue
			}
			if first {
				keyFirst, first = p.KeyStart, false
			}
			if n == 0 || p.Timestamp != last {
				n++
				last = p.Timestamp
			}
		}
		return n, keyFirst
	}
	if err := v.WaitFor(ctx, "a second of video", func(v *rtctest.Viewer) bool { n, _ := frames(v); return n >= 30 }); err != nil {
		t.Fatal(err)
	}
	if _, keyFirst := frames(v); !keyFirst {
		t.Error("the viewer's first video packet does not start an IDR")
	}
	if !cam.IsOpen() {
		t.Fatal("the camera is not open while streaming")
	}
	t.Log(cam.Describe())
	if n := childrenNamed(t, "ffmpeg"); n != 1 {
		t.Errorf("%d ffmpeg children while streaming, want 1", n)
	}

	yes := true
	if _, err := dev.SetPrivacy(ctx, device.Change{Video: &yes, By: device.ByRemote}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for cam.IsOpen() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if cam.IsOpen() {
		t.Error("video privacy did not release the camera (and its ffmpeg)")
	}
	if n := childrenNamed(t, "ffmpeg"); n != 0 {
		t.Errorf("%d ffmpeg children alive after the camera was released", n)
	}
}

// childrenNamed counts this process's child processes with the given command name.
func childrenNamed(t *testing.T, name string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	n := 0
	for _, e := range ents {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if s[open+1:end] == name && len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			n++
		}
	}
	return n
}
