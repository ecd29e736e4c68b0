package livekit

import (
	"bytes"
	"fmt"
	"sync/atomic"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/rtc"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// pubTrack is one of the device's tracks as the room gets it: a clone of the device's track
// (its frames, behind the same gate) written into the current session's LiveKit track.
type pubTrack struct {
	orig, clone *device.Track
	kind        device.Kind
	codec       webrtc.RTPCodecCapability
	stats       *Stats

	local   atomic.Pointer[lksdk.LocalTrack] // nil: not published (frames are dropped)
	needKey atomic.Bool                      // video waits for a keyframe after each publish
	frames  chan device.Frame                // to the writer; closed by stop
}

// frameQueue is how many frames wait for the writer: a link to the SFU that stalls (a TCP
// fallback) drops frames rather than hold the clone's lock, which the device's cut waits for.
const frameQueue = 8

func newPubTrack(t *device.Track, stats *Stats) (*pubTrack, error) {
	c, err := t.Clone()
	if err != nil {
		return nil, err
	}
	pt := &pubTrack{orig: t, clone: c, kind: t.Kind(), codec: rtc.Capability(t.Codec()), stats: stats,
		frames: make(chan device.Frame, frameQueue)}
	c.SetSink(pt.queue)
	go pt.writer()
	return pt, nil
}

// queue is the clone's sink (on the source's goroutine, under the clone's lock): it copies the
// frame for the writer, never waiting. A video frame dropped breaks decoding until a keyframe.
func (pt *pubTrack) queue(f device.Frame) {
	if pt.local.Load() == nil {
		return
	}
	f.Data = bytes.Clone(f.Data) // valid only until the sink returns
	select {
	case pt.frames <- f:
	default:
		if pt.kind == device.KindVideo {
			pt.needKey.Store(true)
		}
	}
}

// writer writes the queued frames into the published track, video from a keyframe on (a
// subscriber can decode from the first frame it gets). RTP timestamps follow the frames'
// capture times. It ends when stop closes the queue.
func (pt *pubTrack) writer() {
	for f := range pt.frames {
		lt := pt.local.Load()
		if lt == nil {
			continue
		}
		if pt.kind == device.KindVideo && pt.needKey.Load() {
			if !f.Keyframe {
				pt.clone.RequestKeyframe()
				continue
			}
			pt.needKey.Store(false)
		}
		if err := lt.WriteSample(media.Sample{Data: f.Data, Duration: f.Duration, Timestamp: f.CaptureTime}, nil); err == nil {
			pt.stats.Frames.Add(1)
		}
	}
}

// stop ends the clone and the writer: when it returns no new frame is written (one being
// written, captured before the cut's trigger, may still finish).
func (pt *pubTrack) stop() {
	pt.local.Store(nil)
	pt.clone.Stop() // no sink call after it returns: the queue can close
	close(pt.frames)
}

// publish publishes the track into the room, keyframe first, and returns its sid.
func (pt *pubTrack) publish(room *lksdk.Room) (string, error) {
	lt, err := lksdk.NewLocalSampleTrack(pt.codec, lksdk.WithRTCPHandler(func(p rtcp.Packet) {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			pt.clone.RequestKeyframe()
		}
	}))
	if err != nil {
		return "", fmt.Errorf("livekit: %s track: %w", pt.kind, err)
	}
	name, source := trackSource(pt.kind)
	pt.needKey.Store(true)
	pt.local.Store(lt)
	pub, err := room.LocalParticipant.PublishTrack(lt, &lksdk.TrackPublicationOptions{Name: name, Source: source})
	if err != nil {
		pt.local.CompareAndSwap(lt, nil)
		return "", fmt.Errorf("livekit: publish %s: %w", pt.kind, err)
	}
	pt.clone.RequestKeyframe()
	return pub.SID(), nil
}
