//go:build linux

package camera

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lenscap/lenscap/camera/v4l2"
	"github.com/lenscap/lenscap/device"
)

// m2mStream is a camera (any raw source) encoded by a memory-to-memory encoder. Frames are
// produced inside ReadFrame, on the caller's goroutine: no goroutine is started.
type m2mStream struct {
	name     string
	src      rawStream
	enc      *m2mEncoder
	duration time.Duration

	readMu sync.Mutex // held by ReadFrame, and by Close while it releases the devices
	seq    int64      // frames queued; guarded by readMu
	times  [16]time.Time
	keyReq atomic.Bool
	failed error // the stream's end; guarded by readMu
	ctrlMu sync.Mutex

	closed    chan struct{}
	closeOnce sync.Once
}

// ReadFrame captures raw frames and encodes them until a coded frame comes out, and returns
// it: for H.264 an access unit with SPS and PPS before every IDR (the first frame is an
// IDR), for FWHT the coded frame. Frame.Data is the encoder's mapped buffer, valid until
// the next ReadFrame or Close. It allocates nothing per frame. A vanished camera (ErrGone)
// or an encoder error (ErrEncoder) ends the stream; after Close it returns an error
// wrapping device.ErrStreamClosed.
func (s *m2mStream) ReadFrame() (device.Frame, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if err := s.stopErr(); err != nil {
		return device.Frame{}, err
	}
	if err := s.enc.release(); err != nil {
		return device.Frame{}, s.fail(err)
	}
	// An encoder may take several raw frames before it gives a coded one; one that takes
	// too many has stalled.
	for stalled := 0; ; stalled++ {
		if stalled > m2mStallFrames {
			return device.Frame{}, s.fail(fmt.Errorf("no coded frame for %d raw frames", stalled))
		}
		if err := s.encodeNext(); err != nil {
			return device.Frame{}, err
		}
		f, ok, err := s.nextCodedFrame()
		if err != nil || ok {
			return f, err
		}
	}
}

// encodeNext captures the next raw frame and queues it on the encoder. The frame's
// sequence number is its timestamp there, which the coded frame carries back: it finds the
// capture time again in s.times.
func (s *m2mStream) encodeNext() error {
	raw, at, err := s.src.next()
	if err != nil {
		if s.stopErr() != nil {
			return s.stopErr()
		}
		s.failed = err
		return err
	}
	seq := s.seq
	s.seq++
	s.times[seq%int64(len(s.times))] = at
	if err := s.enc.queueRaw(raw, seq, s.keyReq.Swap(false) || seq == 0); err != nil {
		return s.fail(err)
	}
	return nil
}

// nextCodedFrame waits two frame periods for a coded frame, and reports false when none
// came (an encoder that wants more input first gets the next raw frame). H.264 parameter
// sets that come alone are remembered and the picture that follows is waited for.
func (s *m2mStream) nextCodedFrame() (device.Frame, bool, error) {
	timeout := int(2*s.duration/time.Millisecond) + 10
	for {
		d, ok, err := s.enc.nextCoded(timeout)
		if err != nil {
			return device.Frame{}, false, s.fail(err)
		}
		if !ok {
			return device.Frame{}, false, nil
		}
		data := s.enc.cap.Data(d)
		key := d.Flags&v4l2.BufFlagKeyframe != 0 || (s.enc.coded == v4l2.PixFmtFWHT && fwhtIntra(data))
		if s.enc.coded == v4l2.PixFmtH264 {
			var whole bool
			data, key, whole, err = s.enc.asm.assemble(data)
			if err != nil {
				return device.Frame{}, false, s.fail(err)
			}
			if !whole { // parameter sets alone: remembered; the picture follows
				if err := s.enc.release(); err != nil {
					return device.Frame{}, false, s.fail(err)
				}
				continue
			}
		}
		stamp := int64(d.Timestamp.Sec)*1e6 + int64(d.Timestamp.Usec)
		return device.Frame{Data: data, CaptureTime: s.times[stamp%int64(len(s.times))],
			Duration: s.duration, Keyframe: key}, true, nil
	}
}

// fail ends the stream with an encoder error (or closed, when Close woke it).
func (s *m2mStream) fail(err error) error {
	if e := s.stopErr(); e != nil {
		return e
	}
	s.failed = fmt.Errorf("camera: read %s: %w: %s: %v", s.name, ErrEncoder, s.enc.node.Path, err)
	return s.failed
}

func (s *m2mStream) stopErr() error {
	select {
	case <-s.closed:
		return fmt.Errorf("camera: read %s: %w", s.name, device.ErrStreamClosed)
	default:
	}
	return s.failed
}

// RequestKeyframe makes the next frame queued an IDR (V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME).
// It never blocks; requests before the next frame give one keyframe.
func (s *m2mStream) RequestKeyframe() { s.keyReq.Store(true) }

// SetBitrate changes the encoder's bitrate while streaming (V4L2_CID_MPEG_VIDEO_BITRATE).
func (s *m2mStream) SetBitrate(bps int) error {
	s.ctrlMu.Lock()
	defer s.ctrlMu.Unlock()
	select {
	case <-s.closed:
		return fmt.Errorf("camera: %s: set bitrate: %w", s.name, device.ErrStreamClosed)
	default:
	}
	if err := s.enc.dev.SetControl(v4l2.CIDBitrate, int32(bps)); err != nil {
		return fmt.Errorf("camera: %s: set bitrate: %w", s.name, err)
	}
	return nil
}

// Close stops capture and encoding and closes both device files before it returns,
// unblocking a pending ReadFrame. Idempotent.
func (s *m2mStream) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.enc.dev.Wake()
		s.src.stop()
		// ReadFrame may be copying a captured frame into the encoder: the capture buffers
		// are unmapped only once it has returned.
		s.readMu.Lock()
		s.src.close()
		s.ctrlMu.Lock()
		s.enc.close()
		s.ctrlMu.Unlock()
		s.readMu.Unlock()
	})
	return nil
}

// fwhtIntra reports whether a FWHT frame (struct fwht_cframe_hdr: two magic words, version,
// width, height, then the big-endian flags) is an intra frame.
func fwhtIntra(frame []byte) bool {
	if len(frame) < 24 {
		return false
	}
	flags := uint32(frame[20])<<24 | uint32(frame[21])<<16 | uint32(frame[22])<<8 | uint32(frame[23])
	return flags&v4l2.FWHTFlagIFrame != 0
}
