package device

import (
	"sync"
	"sync/atomic"
	"time"
)

// hold is a source's early gate: while a request that may cut the kind is pending (waiting for
// the device's lock, or for the button's handler), frames captured at or after its trigger are
// not delivered. It needs neither lock, so a slow lift (a camera taking seconds to open) or a
// save in progress cannot delay the gate of a cut that arrives meanwhile. A pending request that
// turns out to be a lift holds back only frames of kinds that are dark anyway.
type hold struct {
	mu    sync.Mutex
	n     int          // pending requests
	since atomic.Int64 // earliest trigger among them, Unix nanoseconds; 0: none
}

// add registers a pending request triggered at at; the returned func ends it.
func (h *hold) add(at time.Time) (release func()) {
	ns := at.UnixNano()
	h.mu.Lock()
	h.n++
	if cur := h.since.Load(); cur == 0 || ns < cur {
		h.since.Store(ns)
	}
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			if h.n--; h.n == 0 {
				h.since.Store(0)
			}
			h.mu.Unlock()
		})
	}
}

// blocks reports whether a frame captured at at is held back.
func (h *hold) blocks(at time.Time) bool {
	s := h.since.Load()
	return s != 0 && at.UnixNano() >= s
}

// Hold holds back the kinds' frames captured at or after at, at once and without waiting for
// anything, until release is called: call it where a trigger that may cut them arrives (the
// button's input loop, a command's arrival), before queueing the request, and release once the
// request has been applied. SetPrivacy and the Press methods hold for themselves too.
func (d *Device) Hold(at time.Time, kinds ...Kind) (release func()) {
	var rs []func()
	for _, k := range kinds {
		if s := d.sources[k]; s != nil {
			rs = append(rs, s.hold.add(at))
		}
	}
	return func() {
		for _, r := range rs {
			r()
		}
	}
}
