package device

import (
	"sync"
	"sync/atomic"
)

// ReadyState is MediaStreamTrack.readyState.
type ReadyState string

// The two ready states of a track.
const (
	ReadyStateLive  ReadyState = "live"
	ReadyStateEnded ReadyState = "ended"
)

// Track is a MediaStreamTrack: one consumer's handle on a Source. A track delivers the
// source's frames to its sink until it is cut or stopped.
type Track struct {
	id  string
	src *Source

	mu      sync.Mutex  // held while a frame is handed to the sink, so cut and Stop wait for it
	ended   atomic.Bool // set under mu; read without it, so a sink may call ReadyState and RequestKeyframe
	gated   atomic.Bool // cut: no frame is delivered any more, though the track may still be live; set under mu
	sink    func(Frame)
	onEnded []func()
	// original is the track this one was cloned from (nil: none): its gate is this one's too.
	original *Track
	clones   []*Track // guarded by mu
}

// ID is the track's unique id.
func (t *Track) ID() string { return t.id }

// Kind is the track's kind of media.
func (t *Track) Kind() Kind { return t.src.Kind() }

// Codec is the encoded format of the track's frames.
func (t *Track) Codec() Codec { return t.src.Codec() }

// ReadyState is "live" until the track is stopped or its source fails, then "ended".
func (t *Track) ReadyState() ReadyState {
	if t.ended.Load() {
		return ReadyStateEnded
	}
	return ReadyStateLive
}

// SetSink sets the function each frame is handed to, on the source's goroutine. The sink must
// not block for long, must not keep Frame.Data after it returns, and must not call Stop,
// SetSink or OnEnded (it may call ReadyState and RequestKeyframe). A track has one sink;
// setting another replaces it.
func (t *Track) SetSink(f func(Frame)) {
	t.mu.Lock()
	t.sink = f
	t.mu.Unlock()
}

// OnEnded adds a listener of the track's ended event, run once when the track's source ends
// by itself (a vanished camera). As on the web, a track ended by its own Stop fires no ended
// event. A listener added to an ended track never runs. Listeners run on the source's
// goroutine and must not block.
func (t *Track) OnEnded(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ended.Load() {
		t.onEnded = append(t.onEnded, f)
	}
}

// RequestKeyframe asks the source for a keyframe (a viewer's PLI or FIR). Requests from many
// viewers before the next frame become one keyframe.
func (t *Track) RequestKeyframe() {
	if t.ReadyState() == ReadyStateLive {
		t.src.requestKeyframe()
	}
}

// Stop is MediaStreamTrack.stop(): readyState is "ended" when it returns, no frame is
// delivered after it returns, and the source has been closed if this was its last track. As on
// the web, it fires no ended event (those are for a source that ended by itself). Stop is
// idempotent.
func (t *Track) Stop() {
	if _, ended := t.end(); ended {
		t.src.release(t)
	}
}

// sourceEnded ends the track because its source ended by itself, and fires its ended event.
func (t *Track) sourceEnded() {
	listeners, _ := t.end()
	for _, f := range listeners {
		f()
	}
}

// end marks the track ended and reports whether this call ended it, with the ended listeners
// to fire then; after it no listener is added.
func (t *Track) end() (listeners []func(), ended bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended.Load() {
		return nil, false
	}
	t.ended.Store(true)
	listeners, t.onEnded = t.onEnded, nil
	return listeners, true
}

// cut closes the gate: once it returns no frame reaches the sink, nor a clone's, any more,
// including one being handed over while it was called.
func (t *Track) cut() {
	t.mu.Lock()
	t.gated.Store(true)
	clones := t.clones
	t.mu.Unlock()
	for _, c := range clones { // wait for a frame a clone is handing over
		c.mu.Lock()
		//lint:ignore SA2001 a barrier: the clone's delivery in progress has ended
		c.mu.Unlock()
	}
}

// deliver hands a frame to the sink unless the track (or its original) is cut, or it ended.
func (t *Track) deliver(f Frame) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended.Load() || t.gated.Load() || t.original != nil && t.original.gated.Load() ||
		t.sink == nil || t.src.hold.blocks(f.CaptureTime) {
		return
	}
	t.sink(f)
}

// Clone is MediaStreamTrack.clone(): a new live track on the same source, with its own sink and
// its own Stop, for a second consumer of the same encoded frames (a publisher into an SFU). It
// shares the original's gate: once the device cuts the original, the clone delivers nothing
// more either. The source stays open until the clone is stopped too, so a Sink that clones the
// tracks it is given stops its clones in RemoveTracks. Cloning an ended track fails.
func (t *Track) Clone() (*Track, error) {
	if t.original != nil {
		return t.original.Clone()
	}
	c, err := t.src.cloneTrack(t)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.clones = append(t.clones, c)
	t.mu.Unlock()
	return c, nil
}
