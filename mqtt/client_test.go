package mqtt

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var topics = Topics{}

func TestCommandsReachExactlyTheDevicesAddressed(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	groups := map[string][]string{"cam-a": {"hall"}, "cam-b": {"hall", "yard"}, "cam-c": nil}
	ids := []string{"cam-a", "cam-b", "cam-c"}
	cams := map[string]*camera{}
	for _, id := range ids {
		cams[id] = newCamera(t, url, id, func(c *Config) { c.Groups = groups[id] })
	}
	op := newObserver(t, url, topics.Every("ack"), topics.Every("availability"))
	for _, id := range ids {
		cams[id].startClient()
	}
	waitOnline(op, topics, ids...)

	cases := []struct {
		topic string
		want  []string
	}{
		{topics.Cmd("cam-a"), []string{"cam-a"}},
		{topics.GroupCmd("hall"), []string{"cam-a", "cam-b"}},
		{topics.GroupCmd("yard"), []string{"cam-b"}},
		{topics.GroupCmd("nobody"), nil},
		{topics.AllCmd(), []string{"cam-a", "cam-b", "cam-c"}},
	}
	for i, tc := range cases {
		id := fmt.Sprintf("route-%d", i)
		op.publish(tc.topic, false, Command{ID: id, Action: ActionPrivacy, Video: ptr(i%2 == 0)})
		// A broadcast after it: once every device acked that, each device has handled
		// (and acked) the command before it, if it received it.
		marker := fmt.Sprintf("after-%d", i)
		op.publish(topics.AllCmd(), false, Command{ID: marker, Action: ActionState})
		ms := op.waitFor("acks of "+marker, func(ms []msg) bool {
			for _, d := range ids {
				if len(acksWithID(ms, topics.Ack(d), marker)) == 0 {
					return false
				}
			}
			return true
		})
		var got []string
		for _, d := range ids {
			acks := acksWithID(ms, topics.Ack(d), id)
			if len(acks) > 1 {
				t.Errorf("%s: %s acked %d times", tc.topic, d, len(acks))
			}
			if len(acks) == 1 {
				got = append(got, d)
				if !acks[0].OK || acks[0].ID != id {
					t.Errorf("%s: %s: ack %+v, want ok with id %s", tc.topic, d, acks[0], id)
				}
				st := parseState(t, string(acks[0].State))
				if st.ID != d || st.Video.Private != (i%2 == 0) {
					t.Errorf("%s: %s: ack state %+v, want id %s and video private=%t", tc.topic, d, st, d, i%2 == 0)
				}
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("command on %s acked by %v, want %v", tc.topic, got, tc.want)
		}
	}
	if got := cams["cam-c"].dev.Status().Video.Private; !got {
		t.Errorf("cam-c video private = %t after the last broadcast (video true), want true", got)
	}
}

func TestRetainedStateAndAvailabilityFollowConnectChangeAndUncleanDisconnect(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	var viewers atomic.Int64
	cam := newCamera(t, url, "cam-1", func(c *Config) {
		c.Groups = []string{"hall"}
	})
	cam.cfg.State = func() any { // as cmd/lenscap's stateJSON: the device's status plus viewers
		st := cam.dev.Status()
		return map[string]any{"id": "cam-1", "video": st.Video, "audio": st.Audio, "seq": st.Seq,
			"viewers": viewers.Load(), "uptime_seconds": 1.5}
	}
	watch := newObserver(t, url, topics.Availability("cam-1"), topics.State("cam-1"), topics.Ack("cam-1"))
	client := cam.startClient()

	// After connect: online and the state, retained for anyone who subscribes later.
	waitOnline(watch, topics, "cam-1")
	watch.waitFor("state", func(ms []msg) bool { _, ok := last(ms, topics.State("cam-1")); return ok })
	late := newObserver(t, url, topics.Availability("cam-1"), topics.State("cam-1"))
	ms := late.waitFor("retained state and availability", func(ms []msg) bool {
		_, okS := last(ms, topics.State("cam-1"))
		_, okA := last(ms, topics.Availability("cam-1"))
		return okS && okA
	})
	m, _ := last(ms, topics.State("cam-1"))
	st := parseState(t, m.Payload)
	if !m.Retained || st.ID != "cam-1" || st.Video.Private || !slices.Equal(st.Groups, []string{"hall"}) || st.Uptime == nil {
		t.Errorf("retained state after connect: %+v (retained %t), want cam-1, video live, groups [hall], uptime", st, m.Retained)
	}
	if a, _ := last(ms, topics.Availability("cam-1")); !a.Retained || a.Payload != Online {
		t.Errorf("retained availability after connect: %+v, want online", a)
	}

	// After a change: the new state, with a higher seq.
	watch.publish(topics.Cmd("cam-1"), false, Command{ID: "cut-1", Action: ActionPrivacy, Video: ptr(true)})
	ms = watch.waitFor("state with video private", func(ms []msg) bool {
		m, ok := last(ms, topics.State("cam-1"))
		return ok && parseState(t, m.Payload).Video.Private
	})
	m, _ = last(ms, topics.State("cam-1"))
	if got := parseState(t, m.Payload).Seq; got <= st.Seq {
		t.Errorf("seq after a change = %d, want more than %d", got, st.Seq)
	}
	// StateChanged (a viewer joined) republishes.
	viewers.Store(2)
	client.StateChanged()
	watch.waitFor("state with 2 viewers", func(ms []msg) bool {
		m, ok := last(ms, topics.State("cam-1"))
		return ok && parseState(t, m.Payload).Viewers != nil && *parseState(t, m.Payload).Viewers == 2
	})

	// An unclean disconnect: the broker publishes the will; the client comes back online and
	// republishes its state.
	n := len(watch.all())
	cam.cut()
	watch.waitFor("offline (the last will)", func(ms []msg) bool {
		m, _ := last(ms[n:], topics.Availability("cam-1"))
		return m.Payload == Offline
	})
	cam.restore()
	watch.waitFor("online again", func(ms []msg) bool {
		m, _ := last(ms[n:], topics.Availability("cam-1"))
		return m.Payload == Online
	})
	watch.waitFor("state republished after reconnect", func(ms []msg) bool {
		for _, m := range ms[n:] {
			if m.Topic == topics.State("cam-1") && parseState(t, m.Payload).Video.Private {
				return true
			}
		}
		return false
	})

	// A clean stop: "offline", retained.
	cam.stopClient()
	after := newObserver(t, url, topics.Availability("cam-1"))
	after.waitFor("retained offline after a clean stop", func(ms []msg) bool {
		m, ok := last(ms, topics.Availability("cam-1"))
		return ok && m.Payload == Offline && m.Retained
	})
}

func TestCommandPublishedWhileDisconnectedIsAppliedOnceOnReconnect(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	cam := newCamera(t, url, "cam-1")
	op := newObserver(t, url, topics.Availability("cam-1"), topics.Ack("cam-1"))
	cam.startClient()
	waitOnline(op, topics, "cam-1") // the persistent session and its subscriptions exist
	cam.stopClient()
	op.waitFor("offline", func(ms []msg) bool { m, _ := last(ms, topics.Availability("cam-1")); return m.Payload == Offline })

	op.publish(topics.Cmd("cam-1"), false, Command{ID: "while-away", Action: ActionPrivacy, Video: ptr(true), Audio: ptr(true)})
	if cam.dev.Status().Video.Private {
		t.Fatal("applied while the client was stopped")
	}
	cam.startClient()
	ms := op.waitFor("ack of while-away", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), "while-away")) > 0 })
	if a := acksWithID(ms, topics.Ack("cam-1"), "while-away")[0]; !a.OK || a.Duplicate {
		t.Errorf("ack %+v, want ok, not a duplicate", a)
	}
	st := cam.dev.Status()
	if !st.Video.Private || !st.Audio.Private || st.Video.By != "remote" {
		t.Errorf("status after reconnect %+v, want video and audio private by remote", st)
	}
	// Once: a later command's ack comes after exactly one ack of it, and one change.
	op.publish(topics.Cmd("cam-1"), false, Command{ID: "later", Action: ActionState})
	ms = op.waitFor("ack of later", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), "later")) > 0 })
	if n := len(acksWithID(ms, topics.Ack("cam-1"), "while-away")); n != 1 {
		t.Errorf("while-away acked %d times, want 1", n)
	}
	if n := cam.counted.calls.Load(); n != 1 {
		t.Errorf("%d privacy changes applied, want 1", n)
	}
}

func TestSameCommandIDIsAppliedOnceAlsoAcrossRestarts(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	cam := newCamera(t, url, "cam-1")
	op := newObserver(t, url, topics.Availability("cam-1"), topics.Ack("cam-1"))
	cam.startClient()
	waitOnline(op, topics, "cam-1")
	ackTopic := topics.Ack("cam-1")
	waitAcks := func(id string, n int) []msg {
		t.Helper()
		return op.waitFor(fmt.Sprintf("%d acks of %s", n, id), func(ms []msg) bool { return len(acksWithID(ms, ackTopic, id)) >= n })
	}

	cut := Command{ID: "x-1", Action: ActionPrivacy, Video: ptr(true)}
	op.publish(topics.Cmd("cam-1"), false, cut)
	waitAcks("x-1", 1)
	op.publish(topics.Cmd("cam-1"), false, Command{ID: "y-1", Action: ActionPrivacy, Video: ptr(false)})
	waitAcks("y-1", 1)
	op.publish(topics.Cmd("cam-1"), false, cut) // the same id again: not applied
	ms := waitAcks("x-1", 2)
	acks := acksWithID(ms, ackTopic, "x-1")
	if !acks[1].OK || !acks[1].Duplicate || acks[0].Duplicate {
		t.Errorf("acks of x-1: %+v, want the first result again, marked duplicate", acks)
	}
	if cam.dev.Status().Video.Private {
		t.Error("the repeated cut was applied again: video private, want live")
	}
	if n := cam.counted.calls.Load(); n != 2 {
		t.Errorf("%d privacy changes applied, want 2", n)
	}

	// A new client over the same state directory remembers x-1.
	cam.stopClient()
	cam.startClient()
	op.waitFor("online again", func(ms []msg) bool { m, _ := last(ms, topics.Availability("cam-1")); return m.Payload == Online })
	op.publish(topics.Cmd("cam-1"), false, cut)
	waitAcks("x-1", 3)
	if cam.dev.Status().Video.Private {
		t.Error("the repeated cut was applied after a restart")
	}
	if n := cam.counted.calls.Load(); n != 2 {
		t.Errorf("%d privacy changes applied after the restart, want 2", n)
	}
}

func TestBrokerRestartUnderAConnectedDevice(t *testing.T) {
	t.Parallel()
	broker := startBroker(t) // no persistence: the restart loses sessions and retained messages
	url := broker.URL("", "")
	cam := newCamera(t, url, "cam-1", func(c *Config) { c.Groups = []string{"hall"} })
	op := newObserver(t, url, topics.Availability("cam-1"))
	cam.startClient()
	waitOnline(op, topics, "cam-1")

	broker.Restart()
	op2 := newObserver(t, url, topics.Availability("cam-1"), topics.State("cam-1"), topics.Ack("cam-1"))
	op2.waitFor("state and online republished after the restart", func(ms []msg) bool {
		a, okA := last(ms, topics.Availability("cam-1"))
		_, okS := last(ms, topics.State("cam-1"))
		return okA && a.Payload == Online && okS
	})
	// The client subscribed again: commands on each of its topics are applied.
	op2.publish(topics.GroupCmd("hall"), false, Command{ID: "after-restart", Action: ActionPrivacy, Audio: ptr(true)})
	ms := op2.waitFor("ack after restart", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), "after-restart")) > 0 })
	if a := acksWithID(ms, topics.Ack("cam-1"), "after-restart")[0]; !a.OK {
		t.Errorf("ack %+v, want ok", a)
	}
	if !cam.dev.Status().Audio.Private {
		t.Error("audio not private after the command sent after the broker restart")
	}
}

func TestButtonWinsOverARemoteLiftButARemoteCutCanBeLifted(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	cam := newCamera(t, url, "cam-1")
	op := newObserver(t, url, topics.Availability("cam-1"), topics.Ack("cam-1"))
	cam.startClient()
	waitOnline(op, topics, "cam-1")
	send := func(c Command) Ack {
		t.Helper()
		op.publish(topics.Cmd("cam-1"), false, c)
		ms := op.waitFor("ack of "+c.ID, func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), c.ID)) > 0 })
		return acksWithID(ms, topics.Ack("cam-1"), c.ID)[0]
	}

	// A remote cut, then a remote lift: both work.
	if a := send(Command{ID: "cut", Action: ActionPrivacy, Video: ptr(true)}); !a.OK {
		t.Fatalf("remote cut: %+v", a)
	}
	if a := send(Command{ID: "lift", Action: ActionPrivacy, Video: ptr(false)}); !a.OK {
		t.Fatalf("remote lift after a remote cut: %+v", a)
	}
	if cam.dev.Status().Video.Private {
		t.Fatal("video still private after the remote lift")
	}
	// The button cuts; a remote lift is refused with button_wins and changes nothing.
	if _, err := cam.dev.PressButton(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	before := cam.dev.Status()
	a := send(Command{ID: "lift-2", Action: ActionPrivacy, Video: ptr(false), Audio: ptr(false)})
	if a.OK || a.Code != CodeButtonWins || !strings.Contains(a.Error, "button") {
		t.Errorf("remote lift of the button's privacy: %+v, want code %s", a, CodeButtonWins)
	}
	if st := parseState(t, string(a.State)); !st.Video.Private || !st.Audio.Private {
		t.Errorf("ack state %+v, want both private", st)
	}
	if after := cam.dev.Status(); after.Seq != before.Seq || !after.Video.Private || !after.Audio.Private {
		t.Errorf("status after a refused lift %+v, want unchanged %+v", after, before)
	}
	if cam.video.IsOpen() {
		t.Error("camera open after a refused lift")
	}
}

func TestDeviceLeftAGroupIgnoresItsCommandsAlthoughTheSessionKeptTheSubscription(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	cam := newCamera(t, url, "cam-1", func(c *Config) { c.Groups = []string{"old"} })
	op := newObserver(t, url, topics.Availability("cam-1"), topics.Ack("cam-1"))
	cam.startClient()
	waitOnline(op, topics, "cam-1")
	cam.stopClient()
	op.waitFor("offline", func(ms []msg) bool { m, _ := last(ms, topics.Availability("cam-1")); return m.Payload == Offline })

	cam.cfg.Groups = []string{"new"} // reconfigured; the broker's session still has lenscap/group/old/cmd
	cam.startClient()
	waitOnline(op, topics, "cam-1")
	for i := range 2 { // the client also unsubscribes from the stale topic after the first
		id := fmt.Sprintf("old-group-%d", i)
		op.publish(topics.GroupCmd("old"), false, Command{ID: id, Action: ActionPrivacy, Video: ptr(true)})
		op.publish(topics.GroupCmd("new"), false, Command{ID: "new-" + id, Action: ActionState})
		ms := op.waitFor("ack on the new group", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), "new-"+id)) > 0 })
		if n := len(acksWithID(ms, topics.Ack("cam-1"), id)); n != 0 || cam.dev.Status().Video.Private {
			t.Fatalf("a command to the group the device left was applied (%d acks)", n)
		}
	}
}

func TestTheNewStateIsPublishedBeforeTheAck(t *testing.T) {
	t.Parallel()
	broker := startBroker(t)
	url := broker.URL("", "")
	newCamera(t, url, "cam-1").startClient()
	watch := newObserver(t, url, topics.Availability("cam-1"), topics.State("cam-1"), topics.Ack("cam-1"))
	waitOnline(watch, topics, "cam-1")
	for i, private := range []bool{true, false, true} {
		id := fmt.Sprintf("c-%d", i)
		watch.publish(topics.Cmd("cam-1"), false, Command{ID: id, Action: ActionPrivacy, Video: ptr(private)})
		ms := watch.waitFor("ack "+id, func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), id)) > 0 })
		// One subscriber, both topics: the broker delivers in the order the camera published.
		var before []msg
		for _, m := range ms {
			if m.Topic == topics.Ack("cam-1") && strings.Contains(m.Payload, `"`+id+`"`) {
				break
			}
			before = append(before, m)
		}
		st, ok := last(before, topics.State("cam-1"))
		if !ok || parseState(t, st.Payload).Video.Private != private {
			t.Fatalf("command %s (video private %t): the state before its ack is %+v", id, private, st)
		}
	}
}
