package livekit_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/devicetest"
	"github.com/lenscap/lenscap/rtc/livekit"
	"github.com/lenscap/lenscap/rtc/livekit/livekittest"
	"github.com/livekit/protocol/auth"
)

// camera is a device over stamped fake drivers (each frame carries its capture time in its
// payload, which the SFU forwards untouched), published into room on srv.
type camera struct {
	dev          *device.Device
	video, audio *devicetest.Driver
	pub          *livekit.Publisher
}

func startCamera(t *testing.T, srv *livekittest.Server, dir, room string) *camera {
	t.Helper()
	c := &camera{
		video: devicetest.NewDriver(device.KindVideo, devicetest.Options{Interval: 33 * time.Millisecond, Stamp: true}),
		audio: devicetest.NewDriver(device.KindAudio, devicetest.Options{Interval: 20 * time.Millisecond, Stamp: true}),
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dev, err := device.New(device.Config{Store: device.NewStore(dir), Logger: log}, c.video, c.audio)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := livekit.New(livekit.Config{URL: srv.URL, APIKey: livekittest.Key, APISecret: livekittest.Secret,
		Room: room, Identity: room, RetryMin: 200 * time.Millisecond, RetryMax: time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	dev.AddSink(pub)
	dev.Watch(pub.StateChanged)
	c.dev, c.pub = dev, pub
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = dev.Run(ctx); done <- struct{}{} }()
	go func() { _ = pub.Run(ctx); done <- struct{}{} }()
	<-dev.Ready()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return c
}

func (c *camera) press(t *testing.T, at time.Time) device.Status {
	t.Helper()
	st, err := c.dev.PressButton(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// keyStart says whether a video packet begins a keyframe: SPS (alone or in a STAP-A) or IDR.
func keyStart(payload []byte) bool {
	if len(payload) == 0 {
		return false
	}
	switch payload[0] & 0x1f {
	case 5, 7:
		return true
	case 24: // STAP-A: the first NAL unit's header follows its 2-byte size
		return len(payload) > 3 && payload[3]&0x1f == 7
	}
	return false
}

func TestTheRoomGetsTheCameraAndTheCutAsADirectViewerDoes(t *testing.T) {
	srv := livekittest.Start(t)
	cam := startCamera(t, srv, t.TempDir(), "cam-1")
	sub := livekittest.Subscribe(t, srv, "cam-1", "grandma")
	for _, k := range []string{"video", "audio"} {
		if err := sub.WaitFor(30*time.Second, k, livekittest.Receiving(k, time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	if a := sub.Attributes("cam-1"); a["lenscap.video.private"] != "false" {
		t.Errorf("attributes %v: want the privacy state", a)
	}

	trigger := time.Now()
	cam.press(t, trigger)
	if cam.video.IsOpen() || cam.audio.IsOpen() {
		t.Fatal("the camera is still open after the cut returned")
	}
	if err := sub.WaitFor(5*time.Second, "unpublished", func(s *livekittest.Subscriber) bool { return s.Published() == 0 }); err != nil {
		t.Fatal(err)
	}
	if err := sub.WaitFor(5*time.Second, "attributes", func(s *livekittest.Subscriber) bool {
		a := s.Attributes("cam-1")
		return a["lenscap.video.private"] == "true" && a["lenscap.video.by"] == "button"
	}); err != nil {
		t.Fatalf("%v: %v", err, sub.Attributes("cam-1"))
	}
	time.Sleep(300 * time.Millisecond) // anything still in flight has arrived
	stamped := 0
	for _, p := range sub.Packets() {
		if at, ok := devicetest.Stamped(p.Payload); ok {
			stamped++
			if !at.Before(trigger) {
				t.Fatalf("%s packet of a frame captured %s after the trigger", p.Kind, at.Sub(trigger))
			}
		}
	}
	if stamped == 0 {
		t.Fatal("no stamped packet arrived: nothing to check the cut against")
	}

	n := len(sub.Packets())
	lift := time.Now()
	cam.press(t, lift)
	if err := sub.WaitFor(30*time.Second, "video after the lift", livekittest.Receiving("video", lift)); err != nil {
		t.Fatal(err)
	}
	for _, p := range sub.Packets()[n:] {
		if p.Kind == "video" {
			if !keyStart(p.Payload) {
				t.Fatalf("the first video packet after the lift is not a keyframe's: % x", p.Payload)
			}
			break
		}
	}
}

func TestAServerRestartWhilePrivateComesBackPrivate(t *testing.T) {
	srv := livekittest.Start(t)
	cam := startCamera(t, srv, t.TempDir(), "cam-2")
	sub := livekittest.Subscribe(t, srv, "cam-2", "desk")
	if err := sub.WaitFor(30*time.Second, "video", livekittest.Receiving("video", time.Time{})); err != nil {
		t.Fatal(err)
	}
	cam.press(t, time.Now()) // private
	srv.Restart(t)
	restarted := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for st := cam.pub.Stats(); !cam.pub.Connected() || st.Joins.Load()+st.Rejoins.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the publisher did not join again after the restart (joins %d, rejoins %d)", st.Joins.Load(), st.Rejoins.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	sub2 := livekittest.Subscribe(t, srv, "cam-2", "desk-2")
	time.Sleep(time.Second)
	if n := len(sub2.Packets()); n != 0 || sub2.Published() != 0 {
		t.Fatalf("after a restart while private: %d packets, %d tracks published", n, sub2.Published())
	}
	if a := sub2.Attributes("cam-2"); a["lenscap.video.private"] != "true" {
		t.Errorf("attributes after the restart: %v", a)
	}
	cam.press(t, time.Now()) // lift: published again
	if err := sub2.WaitFor(30*time.Second, "video after the lift", livekittest.Receiving("video", restarted)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSaysWhetherTheCameraCouldJoin(t *testing.T) {
	srv := livekittest.Start(t)
	good := livekit.Config{URL: srv.URL, APIKey: livekittest.Key, APISecret: livekittest.Secret, Room: "r", Identity: "cam"}
	if err := livekit.Check(context.Background(), good); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
	bad := good
	bad.APISecret = "not-the-secret-not-the-secret-not-the-secret"
	if err := livekit.Check(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a wrong secret: %v", err)
	}
	srv.Stop()
	if err := livekit.Check(context.Background(), good); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("a stopped server: %v", err)
	}
}

func TestAfterAServerRestartWhileLiveTheCutStillUnpublishes(t *testing.T) {
	srv := livekittest.Start(t)
	cam := startCamera(t, srv, t.TempDir(), "cam-3")
	sub := livekittest.Subscribe(t, srv, "cam-3", "desk")
	if err := sub.WaitFor(30*time.Second, "video", livekittest.Receiving("video", time.Time{})); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	sub2 := livekittest.Subscribe(t, srv, "cam-3", "desk-2")
	if err := sub2.WaitFor(20*time.Second, "video after the restart", livekittest.Receiving("video", time.Time{})); err != nil {
		t.Fatal(err)
	}
	cam.press(t, time.Now())
	if err := sub2.WaitFor(5*time.Second, "unpublished", func(s *livekittest.Subscriber) bool { return s.Published() == 0 }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	n := len(sub2.Packets())
	time.Sleep(500 * time.Millisecond)
	if m := len(sub2.Packets()); m != n {
		t.Fatalf("%d packets after the cut", m-n)
	}
}

func TestATokenMintedElsewhereJoinsAndPublishes(t *testing.T) {
	srv := livekittest.Start(t)
	at := auth.NewAccessToken(livekittest.Key, livekittest.Secret)
	at.SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: "porch", CanUpdateOwnMetadata: new(true)}).
		SetIdentity("porch-cam").SetValidFor(time.Hour)
	token, err := at.ToJWT()
	if err != nil {
		t.Fatal(err)
	}
	video := devicetest.NewDriver(device.KindVideo, devicetest.Options{Interval: 33 * time.Millisecond})
	dev, err := device.New(device.Config{Store: device.NewStore(t.TempDir())}, video)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := livekit.New(livekit.Config{URL: srv.URL, Token: token, Room: "porch", Identity: "porch-cam"})
	if err != nil {
		t.Fatal(err)
	}
	dev.AddSink(pub)
	dev.Watch(pub.StateChanged)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = dev.Run(ctx); done <- struct{}{} }()
	go func() { _ = pub.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	sub := livekittest.Subscribe(t, srv, "porch", "neighbour")
	if err := sub.WaitFor(30*time.Second, "video", livekittest.Receiving("video", time.Time{})); err != nil {
		t.Fatal(err)
	}
	if err := sub.WaitFor(5*time.Second, "attributes", func(s *livekittest.Subscriber) bool {
		return s.Attributes("porch-cam")["lenscap.video.private"] == "false"
	}); err != nil {
		t.Fatalf("%v: %v", err, sub.Attributes("porch-cam"))
	}
}

func TestNewRefusesAnIncompleteConfiguration(t *testing.T) {
	for _, c := range []livekit.Config{
		{Room: "r", Identity: "i", APIKey: "k", APISecret: "s"},                            // no URL
		{URL: "ws://x", Room: "r", Identity: "i"},                                          // no credentials
		{URL: "ws://x", Room: "r", Identity: "i", APIKey: "k"},                             // a key without its secret
		{URL: "ws://x", Room: "r", Identity: "i", APIKey: "k", APISecret: "s", Token: "t"}, // both
	} {
		if _, err := livekit.New(c); !errors.Is(err, livekit.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", c, err)
		}
	}
}
