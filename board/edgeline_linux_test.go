package board

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// event is a gpio_v2_line_event: timestamp_ns, id (1 rising, 2 falling), then zeros.
func event(ns uint64, rising bool) []byte {
	b := make([]byte, gpioEventSize)
	binary.LittleEndian.PutUint64(b, ns)
	id := uint32(2)
	if rising {
		id = 1
	}
	binary.LittleEndian.PutUint32(b[8:], id)
	return b
}

func TestQueuedEdgesAreReadAfterATimedWaitExpired(t *testing.T) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "edges"), os.NewFile(uintptr(fds[1]), "kernel")
	defer r.Close()
	defer w.Close()
	l := &edgeLine{f: r}
	// A timed wait that ends with nothing: its deadline stays expired on the file.
	if _, _, ok := l.ReadEdge(20 * time.Millisecond); ok {
		t.Fatal("an edge from an empty line")
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	now := uint64(ts.Nano())
	for _, e := range [][]byte{event(now-2_000_000, false), event(now-1_000_000, true)} {
		if _, err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	// The edges that came meanwhile are there without waiting, in order, with their times.
	lvl, at, ok := l.ReadEdge(0)
	if !ok || bool(lvl) || time.Since(at) < 2*time.Millisecond || time.Since(at) > time.Second {
		t.Fatalf("first queued edge: level %v at %v ago, ok %v; want falling, 2 ms ago", lvl, time.Since(at), ok)
	}
	if lvl, _, ok := l.ReadEdge(0); !ok || !bool(lvl) {
		t.Fatalf("second queued edge: level %v ok %v; want rising", lvl, ok)
	}
	if _, _, ok := l.ReadEdge(0); ok {
		t.Fatal("a third edge from two")
	}
}
