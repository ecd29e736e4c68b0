package device

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Source is a capture device shared by tracks, as a MediaStreamTrack's source on the web: it is
// opened by its first track and closed when its last track stops, so the hardware (and the
// camera's own LED) is off whenever no track uses it.
type Source struct {
	driver Driver
	log    *slog.Logger

	mu       sync.Mutex // guards the fields below; held while opening and closing
	stream   Stream
	tracks   []*Track      // live tracks fed by the current stream
	done     chan struct{} // closed when the current stream's reader goroutine returns
	frames   atomic.Uint64 // frames read from the driver's streams, for metrics
	keyFirst atomic.Uint64 // streams whose first frame was a keyframe, for metrics
	opens    atomic.Uint64 // how many times the driver was opened, for tests and metrics
	closes   atomic.Uint64 // how many times a stream was closed
	keyReq   atomic.Bool   // a keyframe request not yet handed to the stream
	nextID   atomic.Uint64 // track ids
	onErr    func(error)   // called (from the reader goroutine) when the stream fails
	idBase   string
	hold     hold // the early gate of pending cuts (not guarded by mu)
}

// NewSource makes a source over a driver. It opens nothing.
func NewSource(d Driver, log *slog.Logger) *Source {
	return &Source{driver: d, log: log, idBase: string(d.Kind())}
}

// Kind is the kind of media the source produces.
func (s *Source) Kind() Kind { return s.driver.Kind() }

// Codec is the encoded format of the source's frames.
func (s *Source) Codec() Codec { return s.driver.Codec() }

// Opens and Closes count how often the hardware was opened and released.
func (s *Source) Opens() uint64  { return s.opens.Load() }
func (s *Source) Closes() uint64 { return s.closes.Load() }

// Frames counts the frames read from the driver, over the source's life.
func (s *Source) Frames() uint64 { return s.frames.Load() }

// KeyframeFirst counts the streams whose first frame was a keyframe: every stream's should
// be (a viewer can decode from the first frame after privacy is lifted).
func (s *Source) KeyframeFirst() uint64 { return s.keyFirst.Load() }

// Driver is the source's driver.
func (s *Source) Driver() Driver { return s.driver }

// IsOpen reports whether the hardware is held.
func (s *Source) IsOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream != nil
}

// setErrorHandler sets the function told when the stream fails by itself (a vanished camera).
func (s *Source) setErrorHandler(f func(error)) { s.onErr = f }

// NewTrack returns a new live track on the source, opening the hardware if it is the first.
func (s *Source) NewTrack() (*Track, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		st, err := s.driver.Open()
		if err != nil {
			return nil, fmt.Errorf("device: open %s source: %w", s.Kind(), err)
		}
		s.opens.Add(1)
		s.log.Info("source opened", "kind", s.Kind())
		s.stream = st
		s.done = make(chan struct{})
		go s.read(st, s.done)
	}
	t := &Track{
		id:  fmt.Sprintf("%s-%d", s.idBase, s.nextID.Add(1)),
		src: s,
	}
	s.tracks = append(s.tracks, t)
	return t, nil
}

// cloneTrack adds a track cloned from original on the open stream.
func (s *Source) cloneTrack(original *Track) (*Track, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil || original.ReadyState() == ReadyStateEnded {
		return nil, fmt.Errorf("device: clone of an ended %s track", s.Kind())
	}
	t := &Track{id: fmt.Sprintf("%s-%d", s.idBase, s.nextID.Add(1)), src: s, original: original}
	s.tracks = append(s.tracks, t)
	return t, nil
}

// read delivers the stream's frames to the live tracks until the stream ends.
func (s *Source) read(st Stream, done chan struct{}) {
	defer close(done)
	for first := true; ; first = false {
		if s.keyReq.Swap(false) {
			st.RequestKeyframe()
		}
		f, err := st.ReadFrame()
		if err != nil {
			s.streamEnded(st, err)
			return
		}
		s.frames.Add(1)
		if first && f.Keyframe {
			s.keyFirst.Add(1)
		}
		s.mu.Lock()
		tracks := s.tracks
		s.mu.Unlock()
		for _, t := range tracks {
			t.deliver(f)
		}
	}
}

// streamEnded handles a stream that stopped by itself or was closed.
func (s *Source) streamEnded(st Stream, err error) {
	s.mu.Lock()
	if s.stream != st { // closed by release: nothing to do
		s.mu.Unlock()
		return
	}
	// The hardware failed under live tracks: release it and end them, as a browser ends a
	// track whose camera was unplugged.
	s.stream = nil
	tracks := s.tracks
	s.tracks = nil
	// Close under the lock, as release does: a new track must not open the driver again
	// before the failed stream has released it.
	cerr := st.Close()
	s.closes.Add(1)
	s.mu.Unlock()
	if cerr != nil {
		s.log.Warn("close failed stream", "kind", s.Kind(), "err", cerr)
	}
	for _, t := range tracks {
		t.sourceEnded()
	}
	if s.onErr != nil {
		s.onErr(fmt.Errorf("device: %s source failed: %w", s.Kind(), err))
	}
}

// release drops a track; the last one closes the hardware and waits for the reader to return.
func (s *Source) release(t *Track) {
	s.mu.Lock()
	for i, x := range s.tracks {
		if x == t {
			s.tracks = append(s.tracks[:i:i], s.tracks[i+1:]...)
			break
		}
	}
	if len(s.tracks) > 0 || s.stream == nil {
		s.mu.Unlock()
		return
	}
	st, done := s.stream, s.done
	s.stream = nil
	// Close under the lock: the driver is never opened again before its stream is closed.
	err := st.Close()
	s.closes.Add(1)
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("close stream", "kind", s.Kind(), "err", err)
	}
	<-done
	s.log.Info("source closed", "kind", s.Kind())
}

// requestKeyframe asks the open stream for a keyframe; requests before the next frame merge.
func (s *Source) requestKeyframe() {
	s.keyReq.Store(true)
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	if st != nil && s.keyReq.Swap(false) {
		st.RequestKeyframe()
	}
}
