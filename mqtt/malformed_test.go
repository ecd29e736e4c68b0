package mqtt

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

func TestMalformedCommandsGetAnErrorAckAndChangeNothing(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	cam := newCamera(t, url, "cam-1")
	op := newObserver(t, url, topics.Availability("cam-1"), topics.Ack("cam-1"))
	cam.startClient()
	waitOnline(op, topics, "cam-1")
	before := cam.dev.Status()
	past := time.Now().Add(-time.Minute).Unix()

	withID := []struct {
		id, payload, code string
	}{
		{"m1", `{"id":"m1","action":"privacy","video":"yes"}`, CodeBadField},
		{"m2", `{"id":"m2","action":"explode","video":true}`, CodeUnknownAction},
		{"m3", `{"id":"m3","action":"privacy"}`, CodeNoKind},
		{"m4", fmt.Sprintf(`{"id":"m4","action":"privacy","video":true,"exp":%d}`, past), CodeExpired},
		{"m5", `{"id":"m5","action":"privacy","video":true,"pad":"` + strings.Repeat("x", MaxPayload) + `"}`, CodeTooLarge},
		{"m6", `{"id":"m6","action":7}`, CodeBadField},
		{"m7", `{"id":"m7","action":"privacy","video":true,"exp":"soon"}`, CodeBadField},
		{"m8", `{"id":"m8","action":"privacy","video":true,"audio":1}`, CodeBadField},
		{"m9", `{"action":"privacy","id":"m9","video":[true]}`, CodeBadField},
	}
	withoutID := []string{
		`not json`, `[1,2]`, `null`, `""`, `{`, "\x00\xff\xfe", ``,
		`{"id":5,"action":"privacy","video":true}`, // an id that is not a string cannot be read
		`{"action":"privacy","video":"no"}`,
	}
	for _, c := range withID {
		op.publish(topics.Cmd("cam-1"), false, c.payload)
	}
	for _, p := range withoutID {
		op.publish(topics.Cmd("cam-1"), false, p)
	}
	op.publish(topics.Cmd("cam-1"), false, Command{ID: "marker", Action: ActionState})
	ms := op.waitFor("ack of marker", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), "marker")) > 0 })

	acks := acksOn(ms, topics.Ack("cam-1"))
	if len(acks) != len(withID)+1 {
		t.Errorf("%d acks, want %d (one per command with an id):\n%s", len(acks), len(withID)+1, formatMsgs(ms))
	}
	for _, c := range withID {
		got := acksWithID(ms, topics.Ack("cam-1"), c.id)
		if len(got) != 1 {
			t.Errorf("%s: %d acks, want 1", c.payload[:min(60, len(c.payload))], len(got))
			continue
		}
		if a := got[0]; a.OK || a.Code != c.code || a.Error == "" || len(a.State) == 0 {
			t.Errorf("%s: ack %+v, want an error with code %s, a message and the state", c.id, a, c.code)
		}
	}
	if n := cam.counted.calls.Load(); n != 0 {
		t.Errorf("%d privacy changes applied for malformed commands, want 0", n)
	}
	if after := cam.dev.Status(); after.Seq != before.Seq || after.Video.Private || after.Audio.Private {
		t.Errorf("status %+v after malformed commands, want unchanged %+v", after, before)
	}

	// Unknown fields are ignored: a valid command with extra fields is applied.
	op.publish(topics.Cmd("cam-1"), false, `{"id":"extra","action":"privacy","video":true,"reason":"meeting","n":[1,2]}`)
	ms = op.waitFor("ack of extra", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), "extra")) > 0 })
	if a := acksWithID(ms, topics.Ack("cam-1"), "extra")[0]; !a.OK || !cam.dev.Status().Video.Private {
		t.Errorf("command with unknown fields: ack %+v, want ok and video private", a)
	}
}

func TestRetainedCommandIsRefused(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	op := newObserver(t, url, topics.Availability("cam-r"), topics.Ack("cam-r"))
	// A stale "privacy off" kept by the broker, waiting for a device that subscribes later.
	op.publish(topics.Cmd("cam-r"), true, Command{ID: "stale", Action: ActionPrivacy, Video: ptr(false), Audio: ptr(false)})
	cam := newCamera(t, url, "cam-r")
	if _, err := cam.dev.SetPrivacy(t.Context(), device.Change{Video: ptr(true), Audio: ptr(true), By: device.ByRemote}); err != nil {
		t.Fatal(err)
	}
	cam.startClient()
	ms := op.waitFor("ack of stale", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-r"), "stale")) > 0 })
	if a := acksWithID(ms, topics.Ack("cam-r"), "stale")[0]; a.OK || a.Code != CodeRetained {
		t.Errorf("ack of a retained command %+v, want code %s", a, CodeRetained)
	}
	if st := cam.dev.Status(); !st.Video.Private || !st.Audio.Private {
		t.Errorf("a retained command lifted privacy: %+v", st)
	}
	if n := cam.counted.calls.Load(); n != 0 {
		t.Errorf("%d privacy changes applied, want 0", n)
	}
	op.publish(topics.Cmd("cam-r"), true, "") // clear it
}
