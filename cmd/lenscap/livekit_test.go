package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/rtc/livekit/livekittest"
)

func TestTheCameraPublishesIntoALiveKitRoomOnDemandAndTheButtonCutsIt(t *testing.T) {
	srv := livekittest.Start(t)
	d := startDaemon(t, t.TempDir(), "--id", "hall", "--livekit-url", srv.URL,
		"--livekit-api-key", livekittest.Key, "--livekit-api-secret", livekittest.Secret)
	// On demand (the default), the room's first subscriber opens the camera as a direct viewer
	// would.
	sub := livekittest.Subscribe(t, srv, "hall", "grandma")
	for _, k := range []string{"video", "audio"} {
		if err := sub.WaitFor(30*time.Second, k, livekittest.Receiving(k, time.Time{})); err != nil {
			t.Fatalf("%v; state %+v", err, d.state(t))
		}
	}
	if code, b := d.do(t, "POST", "/api/button", "", nil); code != http.StatusOK {
		t.Fatalf("button: %d %s", code, b)
	}
	if err := sub.WaitFor(5*time.Second, "unpublished", func(s *livekittest.Subscriber) bool {
		a := s.Attributes("hall")
		return s.Published() == 0 && a["lenscap.video.private"] == "true" && a["lenscap.video.by"] == "button"
	}); err != nil {
		t.Fatalf("%v: attributes %v", err, sub.Attributes("hall"))
	}
	time.Sleep(200 * time.Millisecond)
	n := len(sub.Packets())
	time.Sleep(500 * time.Millisecond)
	if m := len(sub.Packets()); m != n {
		t.Fatalf("%d packets arrived more than 200 ms after the cut", m-n)
	}
	_, metrics := d.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{"lenscap_livekit_connected 1", "lenscap_livekit_participants 1", "lenscap_livekit_publishes_total 2", "lenscap_livekit_unpublishes_total 2"} {
		if !bytes.Contains(metrics, []byte(want+"\n")) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	lift := time.Now()
	if code, b := d.do(t, "POST", "/api/button", "", nil); code != http.StatusOK {
		t.Fatalf("button: %d %s", code, b)
	}
	if err := sub.WaitFor(10*time.Second, "video after the lift", livekittest.Receiving("video", lift)); err != nil {
		t.Fatal(err)
	}
}

func TestDoctorReportsTheLiveKitConnection(t *testing.T) {
	srv := livekittest.Start(t)
	for _, tc := range []struct {
		secret, want string
	}{
		{livekittest.Secret, "ok (room hall as hall: reachable, credentials accepted)"},
		{strings.Repeat("x", 40), "FAILING: livekit: " + srv.URL + " refused the camera's credentials"},
	} {
		cfg := mustLoad(t, testPlatform(), []string{"--id", "hall", "--livekit-url", srv.URL,
			"--livekit-api-key", livekittest.Key, "--livekit-api-secret", tc.secret}, env(nil))
		var out bytes.Buffer
		err := doctor(cfg, boardOptions(cfg), &out)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("doctor:\n%s\nwant %q", out.String(), tc.want)
		}
		if (tc.secret != livekittest.Secret) != (err != nil) {
			t.Errorf("doctor's error %v for secret ok=%v", err, tc.secret == livekittest.Secret)
		}
	}
}
