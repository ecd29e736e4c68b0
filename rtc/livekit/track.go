package livekit

import (
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
}

func newPubTrack(t *device.Track, stats *Stats) (*pubTrack, error) {
	c, err := t.Clone()
	if err != nil {
		return nil, err
	}
	pt := &pubTrack{orig: t, clone: c, kind: t.Kind(), codec: rtc.Capability(t.Codec()), stats: stats}
	c.SetSink(pt.write)
	return pt, nil
}

// write is the clone's sink: each frame goes into the published track, video from a keyframe
// on (a subscriber can decode from the first frame it gets). RTP timestamps follow the
// frames' capture times.
func (pt *pubTrack) write(f device.Frame) {
	lt := pt.local.Load()
	if lt == nil {
		return
	}
	if pt.kind == device.KindVideo && pt.needKey.Load() {
		if !f.Keyframe {
			pt.clone.RequestKeyframe()
			return
		}
		pt.needKey.Store(false)
	}
	if err := lt.WriteSample(media.Sample{Data: f.Data, Duration: f.Duration, Timestamp: f.CaptureTime}, nil); err == nil {
		pt.stats.Frames.Add(1)
	}
}

// stop ends the clone: when it returns no frame is written any more.
func (pt *pubTrack) stop() {
	pt.local.Store(nil)
	pt.clone.Stop()
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
