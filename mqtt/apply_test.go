package mqtt

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/device"
)

// runningDevice is a device without media, run until the test ends.
func runningDevice(t *testing.T) *device.Device {
	t.Helper()
	dev, err := device.New(device.Config{Store: device.NewStore(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-dev.Ready()
	return dev
}

func TestABatchHasTheResultsOfItsCommandsOneByOneInArrivalOrder(t *testing.T) {
	dev := runningDevice(t)
	if _, err := dev.SetPrivacy(t.Context(), device.Change{Video: ptr(true), By: device.ByRemote}); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, dev, t.TempDir())
	now := time.Now()
	in := func(payload string, retained bool) inbound {
		return c.arrival(topics.Cmd("cam-1"), []byte(payload), retained, now, func() {})
	}
	batch := []inbound{
		in(`{"id":"lift","action":"privacy","video":false}`, false), // before the cut: no undoing it
		in(`{"id":"cut","action":"privacy","video":true,"audio":true}`, false),
		in(`{"id":"cut","action":"privacy","video":true,"audio":true}`, false), // a redelivery
		in(`{"id":"lift-audio","action":"privacy","audio":false}`, false),      // after the cut: lifts
		in(`{"id":"stale","action":"privacy","video":false}`, true),            // retained: refused
		in(`{"id":"report","action":"state"}`, false),
		in(`{"action":"privacy","audio":true}`, false), // no id: applied, acked with no id
	}
	acks, done := c.applyBatch(t.Context(), batch)
	if !done {
		t.Fatal("batch not done")
	}
	want := []Ack{
		{ID: "lift", OK: true}, {ID: "cut", OK: true}, {ID: "cut", OK: true, Duplicate: true},
		{ID: "lift-audio", OK: true}, {ID: "stale", Code: CodeRetained}, {ID: "report", OK: true}, {OK: true},
	}
	for i, w := range want {
		a := acks[i]
		if a == nil || a.ID != w.ID || a.OK != w.OK || a.Code != w.Code || a.Duplicate != w.Duplicate {
			t.Errorf("ack %d: %+v, want %+v", i, a, w)
			continue
		}
		// seq 1 before; lift, cut, lift-audio and the last cut each change the state.
		if st := parseState(t, string(a.State)); !st.Video.Private || !st.Audio.Private || st.Seq != 5 {
			t.Errorf("ack %d: state %+v, want the state after the batch (both private, seq 5)", i, st)
		}
	}
	// A new client over the same record: every id is known, with its first result.
	again := newTestClient(t, dev, c.cfg.StoreDir)
	for _, id := range []string{"lift", "cut", "lift-audio", "stale", "report"} {
		if _, seen := again.rec.lookup(id); !seen {
			t.Errorf("%s not in the persisted record", id)
		}
	}
}

// stubPaho is the part of a paho client processBatch uses: it records the acks published.
type stubPaho struct {
	paho.Client
	mu     sync.Mutex
	topics []string
}

func (s *stubPaho) Publish(topic string, _ byte, _ bool, _ any) paho.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.topics = append(s.topics, topic)
	return nil
}

// stubMessage is a message as paho hands it to the handler.
type stubMessage struct {
	paho.Message
	topic   string
	payload []byte
	acked   *int
}

func (m stubMessage) Topic() string   { return m.topic }
func (m stubMessage) Payload() []byte { return m.payload }
func (m stubMessage) Retained() bool  { return false }
func (m stubMessage) Ack()            { *m.acked++ }

func TestACutTakesItsGateOnArrivalAndReleasesItOnceApplied(t *testing.T) {
	dev := &fakeDevice{}
	c := newTestClient(t, dev, t.TempDir())
	acked := 0
	for i, p := range []string{
		`{"id":"c1","action":"privacy","video":true}`,
		`{"id":"l1","action":"privacy","video":false}`, // a lift: no gate
		`{"id":"bad","action":"privacy","video":"yes"}`,
		`{"id":"c2","action":"privacy","audio":true}`,
	} {
		c.onMessage(nil, stubMessage{topic: topics.Cmd("cam-1"), payload: []byte(p), acked: &acked})
		if want := []int64{1, 1, 1, 2}[i]; dev.holds.Load() != want {
			t.Fatalf("after message %d: %d gates held, want %d", i, dev.holds.Load(), want)
		}
	}
	if acked != 0 {
		t.Fatal("a message was acknowledged to the broker before it was applied")
	}
	msgs, _ := c.inbox.take(c.batchLimit())
	pc := &stubPaho{}
	if !c.processBatch(t.Context(), pc, msgs) {
		t.Fatal("batch not done")
	}
	if dev.holds.Load() != 0 || acked != 4 || len(pc.topics) != 4 {
		t.Errorf("after the batch: %d gates held, %d PUBACKs, %d acks published; want 0, 4, 4", dev.holds.Load(), acked, len(pc.topics))
	}
}

func TestAClosedInboxReleasesTheGatesOfWhatWaitsAndTakesNoMore(t *testing.T) {
	dev := &fakeDevice{}
	c := newTestClient(t, dev, "")
	acked := 0
	cut := func(id string) stubMessage {
		return stubMessage{topic: topics.Cmd("cam-1"), payload: fmt.Appendf(nil, `{"id":%q,"action":"privacy","video":true}`, id), acked: &acked}
	}
	c.onMessage(nil, cut("waiting"))
	c.inbox.close()
	c.onMessage(nil, cut("late"))
	if n := dev.holds.Load(); n != 0 {
		t.Errorf("%d gates held after close, want 0", n)
	}
	if msgs, _ := c.inbox.take(10); len(msgs) != 0 || acked != 0 {
		t.Errorf("%d messages waiting, %d acknowledged after close; want none", len(msgs), acked)
	}
}

func TestBatchesAreAtMostHalfTheRecord(t *testing.T) {
	dev := &fakeDevice{}
	c := newTestClient(t, dev, "")
	acked := 0
	for i := range 1500 {
		c.onMessage(nil, stubMessage{topic: topics.Cmd("cam-1"), payload: fmt.Appendf(nil, `{"id":"s-%d","action":"state"}`, i), acked: &acked})
	}
	first, _ := c.inbox.take(c.batchLimit())
	if len(first) != DefaultRecordSize/2 {
		t.Errorf("first batch of %d, want %d", len(first), DefaultRecordSize/2)
	}
	select {
	case <-c.inbox.ready:
	default:
		t.Error("more messages wait, but the inbox is not ready")
	}
}
