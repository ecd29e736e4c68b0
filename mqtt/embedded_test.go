package mqtt

import (
	"testing"
	"time"
)

func TestEmbeddedBrokerListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:1883", ":1883", "192.168.1.2:1883", "example.com:1883", "nope"} {
		if _, err := NewEmbeddedBroker(addr, nil); err == nil {
			t.Errorf("%s: accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if _, err := NewEmbeddedBroker(addr, nil); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestEmbeddedBrokerCarriesTheContract(t *testing.T) {
	t.Parallel()
	b, err := NewEmbeddedBroker("127.0.0.1:0", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the camera's client stopped (cleanups run last first)
		if err := b.Close(); err != nil {
			t.Error(err)
		}
		if err := b.Close(); err != nil { // idempotent
			t.Error(err)
		}
	})
	url := b.URL()
	// mochi drops a client after int(1.5*keepalive) seconds without a packet: 1 s for a
	// keepalive of 1 s, as soon as paho pings. Real keepalives are 30 s.
	cam := newCamera(t, url, "cam-1", func(c *Config) { c.KeepAlive = 5 * time.Second })
	op := newObserver(t, url, topics.Availability("cam-1"), topics.Ack("cam-1"), topics.State("cam-1"))
	cam.startClient()
	waitOnline(op, topics, "cam-1")
	op.publish(topics.AllCmd(), false, Command{ID: "e-1", Action: ActionPrivacy, Audio: ptr(true)})
	ms := op.waitFor("ack through the embedded broker", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-1"), "e-1")) > 0 })
	if a := acksWithID(ms, topics.Ack("cam-1"), "e-1")[0]; !a.OK || !cam.dev.Status().Audio.Private {
		t.Errorf("ack %+v, want ok and audio private", a)
	}
	// Retained state for a late subscriber, and the last will on an unclean disconnect.
	audioPrivate := func(retained bool) func(ms []msg) bool {
		return func(ms []msg) bool {
			m, ok := last(ms, topics.State("cam-1"))
			return ok && m.Retained == retained && parseState(t, m.Payload).Audio.Private
		}
	}
	op.waitFor("state with audio private", audioPrivate(false))
	late := newObserver(t, url, topics.State("cam-1"), topics.Availability("cam-1"))
	late.waitFor("retained state with audio private", audioPrivate(true))
	late.waitFor("retained availability", func(ms []msg) bool { m, _ := last(ms, topics.Availability("cam-1")); return m.Retained })
	n := len(late.all())
	cam.cut()
	late.waitFor("last will", func(ms []msg) bool {
		m, _ := last(ms[n:], topics.Availability("cam-1"))
		return m.Payload == Offline
	})
	cam.restore()
	late.waitFor("online again", func(ms []msg) bool {
		m, _ := last(ms[n:], topics.Availability("cam-1"))
		return m.Payload == Online
	})
}

func TestEmbeddedBrokerInlineClientPublishesAndSubscribes(t *testing.T) {
	t.Parallel()
	b, err := NewEmbeddedBroker("127.0.0.1:0", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("hil/early", []byte("x"), false, 1); err == nil {
		t.Error("Publish before Start: no error")
	}
	if err := b.Subscribe("#", func(string, []byte) {}); err == nil {
		t.Error("Subscribe before Start: no error")
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	got := make(chan msg, 16)
	record := func(topic string, payload []byte) { got <- msg{Topic: topic, Payload: string(payload)} }
	if err := b.Publish("hil/retained", []byte("kept"), true, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe("hil/#", record); err != nil {
		t.Fatal(err)
	}
	want := func(what string, w msg) {
		t.Helper()
		select {
		case m := <-got:
			if m != w {
				t.Errorf("%s: got %+v, want %+v", what, m, w)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("%s: nothing within %v", what, waitTimeout)
		}
	}
	want("the retained message, at once", msg{Topic: "hil/retained", Payload: "kept"})

	// A network client's message reaches the inline subscriber; an inline one reaches it.
	op := newObserver(t, b.URL(), "hil/to-network")
	op.publish("hil/from-network", false, "hello")
	want("a network client's message", msg{Topic: "hil/from-network", Payload: "hello"})
	if err := b.Publish("hil/to-network", []byte("cmd"), false, 1); err != nil {
		t.Fatal(err)
	}
	want("its own message", msg{Topic: "hil/to-network", Payload: "cmd"})
	op.waitFor("the inline message at a network client", func(ms []msg) bool {
		m, ok := last(ms, "hil/to-network")
		return ok && m.Payload == "cmd"
	})

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("hil/late", nil, false, 0); err == nil {
		t.Error("Publish after Close: no error")
	}
}
