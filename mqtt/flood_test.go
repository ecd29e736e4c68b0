package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

// floodBrokerConf is the broker configuration of the flood tests, as README's "A broker for a
// fleet" recommends: the broker sends a camera every command waiting for it at once (mosquitto
// keeps 20 in flight per client by default, and the rest queued, so a cut behind a flood would
// wait at the broker), and queues a flood for a camera instead of dropping it beyond 1,000.
var floodBrokerConf = []string{"max_inflight_messages 0", "max_queued_messages 100000"}

// gateTimer is a Device that notes when each early gate of video is taken, and when each
// batch that cuts video has been applied.
type gateTimer struct {
	Device

	mu      sync.Mutex
	gates   []gateEvent // every Hold of video: the command's arrival and when the gate was taken
	applied []time.Time // every batch with a video cut: when it was applied
}

type gateEvent struct{ arrived, gated time.Time }

func (g *gateTimer) Hold(at time.Time, kinds ...device.Kind) func() {
	release := g.Device.Hold(at, kinds...)
	if slices.Contains(kinds, device.KindVideo) {
		now := time.Now()
		g.mu.Lock()
		g.gates = append(g.gates, gateEvent{at, now})
		g.mu.Unlock()
	}
	return release
}

func (g *gateTimer) SetPrivacyBatch(ctx context.Context, cs []device.Change) (device.Status, []error) {
	st, errs := g.Device.SetPrivacyBatch(ctx, cs)
	if slices.ContainsFunc(cs, func(c device.Change) bool { return c.Video != nil && *c.Video }) {
		now := time.Now()
		g.mu.Lock()
		g.applied = append(g.applied, now)
		g.mu.Unlock()
	}
	return st, errs
}

func (g *gateTimer) events() ([]gateEvent, []time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.gates), slices.Clone(g.applied)
}

// ackTally counts a camera's acks by id, cheaply enough for a flood.
type ackTally struct {
	mu      sync.Mutex
	count   map[string]int
	bad     []string // acks not ok, or duplicates
	total   int
	last    time.Time
	watched map[string]time.Time // arrival of the first ack of each watched id
	changed chan struct{}        // closed and replaced on every ack
}

func newAckTally(tb testing.TB, brokerURL, ackTopic string, watch ...string) *ackTally {
	tb.Helper()
	a := &ackTally{count: map[string]int{}, watched: map[string]time.Time{}, changed: make(chan struct{})}
	for _, id := range watch {
		a.watched[id] = time.Time{}
	}
	opts, err := BrokerOptions(brokerURL, TLS{})
	if err != nil {
		tb.Fatal(err)
	}
	opts.SetClientID(fmt.Sprintf("tally-%d", observerSeq.Add(1))).SetProtocolVersion(4).SetAutoReconnect(false)
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { a.add(m.Payload()) })
	pc := paho.NewClient(opts)
	if tok := pc.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		tb.Fatalf("tally: connect: %v", tok.Error())
	}
	tb.Cleanup(func() { pc.Disconnect(50) })
	if tok := pc.Subscribe(ackTopic, 1, nil); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		tb.Fatalf("tally: subscribe: %v", tok.Error())
	}
	return a
}

func (a *ackTally) add(payload []byte) {
	now := time.Now()
	var ack struct {
		ID        string `json:"id"`
		OK        bool   `json:"ok"`
		Duplicate bool   `json:"duplicate"`
	}
	if json.Unmarshal(payload, &ack) != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count[ack.ID]++
	a.total++
	a.last = now
	if !ack.OK || ack.Duplicate {
		a.bad = append(a.bad, string(payload))
	}
	if at, ok := a.watched[ack.ID]; ok && at.IsZero() {
		a.watched[ack.ID] = now
	}
	close(a.changed)
	a.changed = make(chan struct{})
}

// waitTotal waits until n acks arrived in all, or fails after timeout.
func (a *ackTally) waitTotal(tb testing.TB, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		total, ch := a.total, a.changed
		a.mu.Unlock()
		if total >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("%d acks within %v, want %d", total, timeout, n)
		}
	}
}

// floodRig is one camera on a mosquitto configured as floodBrokerConf, a publisher and a tally
// of the camera's acks.
type floodRig struct {
	tb    testing.TB
	cam   *camera
	gates *gateTimer
	pub   paho.Client
	url   string
}

func newFloodRig(tb testing.TB, stateDir string) *floodRig {
	tb.Helper()
	broker := mqtttest.Start(tb, mqtttest.Options{Extra: floodBrokerConf})
	r := &floodRig{tb: tb, url: broker.URL("", "")}
	if stateDir == "" {
		stateDir = tb.TempDir()
	}
	r.cam = newCameraIn(tb, stateDir, r.url, "cam-1", func(c *Config) {
		r.gates = &gateTimer{Device: c.Device}
		c.Device = r.gates
	})
	watch := newObserver(tb, r.url, topics.Availability("cam-1"))
	r.cam.startClient()
	waitOnline(watch, topics, "cam-1")
	opts, err := BrokerOptions(r.url, TLS{})
	if err != nil {
		tb.Fatal(err)
	}
	opts.SetClientID("flooder").SetProtocolVersion(4).SetAutoReconnect(false).SetWriteTimeout(waitTimeout)
	r.pub = paho.NewClient(opts)
	if tok := r.pub.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		tb.Fatalf("flooder: connect: %v", tok.Error())
	}
	tb.Cleanup(func() { r.pub.Disconnect(50) })
	return r
}

// floodResult is what a flood measured.
type floodResult struct {
	commands     int
	elapsed      time.Duration // first publication to the last ack
	gate         time.Duration // the cut's arrival at the camera to its early gate
	publishGate  time.Duration // the cut's publication to its early gate
	publishAck   time.Duration // the cut's publication to its ack
	arriveApply  time.Duration // the cut's arrival to the end of the batch that applied it
	seqBefore    uint64
	seqAfter     uint64
	finalPrivate device.Status
}

func (f floodResult) rate() float64 { return float64(f.commands) / f.elapsed.Seconds() }

// flood publishes floodPayloads to the camera as fast as the publisher can and waits for every
// ack.
func (r *floodRig) flood(prefix string, n int) (floodResult, *ackTally) {
	r.tb.Helper()
	cutID := prefix + "-cut"
	tally := newAckTally(r.tb, r.url, topics.Ack("cam-1"), cutID)
	// Both kinds live, so that every command changes the state.
	if _, err := r.cam.dev.SetPrivacy(context.Background(), device.Change{Video: ptr(false), Audio: ptr(false), By: device.ByRemote}); err != nil {
		r.tb.Fatal(err)
	}
	before := r.cam.dev.Status()
	payloads := floodPayloads(prefix, n)
	gatesBefore, _ := r.gates.events()
	start := time.Now()
	var cutPublished time.Time
	toks := make([]paho.Token, 0, len(payloads))
	for i, p := range payloads {
		if i == n/2 {
			cutPublished = time.Now()
		}
		toks = append(toks, r.pub.Publish(topics.Cmd("cam-1"), 1, false, p))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			r.tb.Fatalf("flooder: publish: %v", tok.Error())
		}
	}
	tally.waitTotal(r.tb, len(payloads), 2*time.Minute)
	res := floodResult{commands: len(payloads), seqBefore: before.Seq, seqAfter: r.cam.dev.Status().Seq,
		finalPrivate: r.cam.dev.Status()}
	tally.mu.Lock()
	res.elapsed = tally.last.Sub(start)
	res.publishAck = tally.watched[cutID].Sub(cutPublished)
	tally.mu.Unlock()
	gates, applied := r.gates.events()
	if g := gates[len(gatesBefore):]; len(g) != 1 {
		r.tb.Fatalf("%d early gates of video taken during the flood, want 1 (the cut's)", len(g))
	} else {
		res.gate = g[0].gated.Sub(g[0].arrived)
		res.publishGate = g[0].gated.Sub(cutPublished)
		if len(applied) > 0 {
			res.arriveApply = applied[len(applied)-1].Sub(g[0].arrived)
		}
	}
	return res, tally
}

// floodPayloads are the commands of a flood: n privacy commands that each change the state
// (audio cut, lifted, cut...), with a video cut, id prefix-cut, after the first half.
func floodPayloads(prefix string, n int) [][]byte {
	payloads := make([][]byte, 0, n+1)
	for i := range n {
		if i == n/2 {
			payloads = append(payloads, fmt.Appendf(nil, `{"id":"%s-cut","action":"privacy","video":true}`, prefix))
		}
		payloads = append(payloads, fmt.Appendf(nil, `{"id":"%s-%05d","action":"privacy","audio":%t}`, prefix, i, i%2 == 0))
	}
	return payloads
}

// checkExactlyOnce checks that every command of a flood was acked once, ok, and applied once.
func checkExactlyOnce(tb testing.TB, prefix string, n int, res floodResult, tally *ackTally) {
	tb.Helper()
	tally.mu.Lock()
	defer tally.mu.Unlock()
	if len(tally.bad) > 0 {
		tb.Errorf("%d acks not ok or duplicates, the first: %s", len(tally.bad), tally.bad[0])
	}
	missing := 0
	for i := range n {
		if tally.count[fmt.Sprintf("%s-%05d", prefix, i)] != 1 {
			missing++
		}
	}
	if missing > 0 || tally.count[prefix+"-cut"] != 1 {
		tb.Errorf("%d commands not acked exactly once (the cut: %d acks)", missing, tally.count[prefix+"-cut"])
	}
	// Each command changed the state once: applied twice, one would have changed it again.
	if got := res.seqAfter - res.seqBefore; got != uint64(n+1) {
		tb.Errorf("seq grew by %d over the flood, want %d (one change per command)", got, n+1)
	}
	if st := res.finalPrivate; !st.Video.Private || st.Audio.Private != ((n-1)%2 == 0) {
		tb.Errorf("status after the flood %+v, want video private and audio as the last command set it", st)
	}
}

func TestFloodIsAppliedExactlyOnceAtAThousandPerSecondAndACutInItIsGatedOnArrival(t *testing.T) {
	const n = 10_000
	r := newFloodRig(t, "")
	res, tally := r.flood("f", n)
	t.Logf("%d commands in %v: %.0f/s; the cut: gate %v after its arrival, %v after its publication; applied %v after arrival; acked %v after publication",
		res.commands, res.elapsed.Round(time.Millisecond), res.rate(), res.gate, res.publishGate.Round(time.Microsecond),
		res.arriveApply.Round(time.Microsecond), res.publishAck.Round(time.Millisecond))
	checkExactlyOnce(t, "f", n, res, tally)
	if res.gate > 100*time.Millisecond {
		t.Errorf("the cut's early gate was taken %v after its arrival, want within 100ms", res.gate)
	}
	if res.rate() < 1000 {
		t.Errorf("%.0f commands per second, want at least 1,000", res.rate())
	}
}

// BenchmarkFlood measures one camera under a flood of 10,000 privacy commands on a mosquitto
// configured as README recommends: commands per second (first publication to last ack, every
// command changing the state), and the early gate of a video cut published in the middle of
// the flood, from its arrival at the camera (cut-gate-µs) and from its publication
// (cut-publish-gate-ms), with its ack's latency from publication (cut-ack-ms). "disk" keeps the
// camera's state in the benchmark's temporary directory; "tmpfs" in $LENSCAP_FLEET_DIR, else
// /dev/shm (skipped when neither exists): it leaves out the fsyncs.
func BenchmarkFlood(b *testing.B) {
	b.Run("disk", func(b *testing.B) { benchmarkFlood(b, b.TempDir()) })
	b.Run("tmpfs", func(b *testing.B) {
		dir := os.Getenv("LENSCAP_FLEET_DIR")
		if dir == "" {
			dir = "/dev/shm"
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			b.Skipf("no tmpfs directory (%s): set LENSCAP_FLEET_DIR", dir)
		}
		d, err := os.MkdirTemp(dir, "flood")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		benchmarkFlood(b, d)
	})
}

func benchmarkFlood(b *testing.B, dir string) {
	const n = 10_000
	r := newFloodRig(b, dir)
	var results []floodResult
	i := 0
	for b.Loop() {
		i++
		prefix := fmt.Sprintf("b%d", i)
		res, tally := r.flood(prefix, n)
		checkExactlyOnce(b, prefix, n, res, tally)
		results = append(results, res)
	}
	var cmds int
	var elapsed, gate, publishGate, publishAck time.Duration
	for _, res := range results {
		cmds += res.commands
		elapsed += res.elapsed
		gate = max(gate, res.gate)
		publishGate = max(publishGate, res.publishGate)
		publishAck = max(publishAck, res.publishAck)
	}
	b.ReportMetric(float64(cmds)/elapsed.Seconds(), "cmds/s")
	b.ReportMetric(float64(gate.Nanoseconds())/1e3, "cut-gate-µs")
	b.ReportMetric(float64(publishGate.Nanoseconds())/1e6, "cut-publish-gate-ms")
	b.ReportMetric(float64(publishAck.Nanoseconds())/1e6, "cut-ack-ms")
}
