package chromiumtest

import (
	"context"
	"fmt"
)

// InboundStats is the part of an RTCInboundRtpStreamStats entry that tests
// read. Counters are zero when the browser did not report them.
type InboundStats struct {
	Kind                        string  `json:"kind"`
	SSRC                        uint32  `json:"ssrc"`
	Mid                         string  `json:"mid"`
	PacketsReceived             int64   `json:"packetsReceived"`
	PacketsLost                 int64   `json:"packetsLost"`
	BytesReceived               int64   `json:"bytesReceived"`
	FramesDecoded               int64   `json:"framesDecoded"`
	FramesPerSecond             float64 `json:"framesPerSecond"`
	FrameWidth                  int     `json:"frameWidth"`
	FrameHeight                 int     `json:"frameHeight"`
	LastPacketReceivedTimestamp float64 `json:"lastPacketReceivedTimestamp"` // ms since the epoch; 0 before the first packet
}

// inboundRTPScript collects window.lenscap.pc's inbound-rtp entries by kind.
// When a kind has several (a new SSRC after privacy is lifted, before the old
// entry is dropped), the one that received a packet last wins.
const inboundRTPScript = `(async () => {
  const pc = window.lenscap && window.lenscap.pc;
  if (!pc) throw new Error('window.lenscap.pc is not set');
  const byKind = {};
  (await pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    const prev = byKind[s.kind];
    if (prev && (prev.lastPacketReceivedTimestamp || 0) > (s.lastPacketReceivedTimestamp || 0)) return;
    byKind[s.kind] = {
      kind: s.kind, ssrc: s.ssrc, mid: s.mid || '',
      packetsReceived: s.packetsReceived || 0, packetsLost: s.packetsLost || 0,
      bytesReceived: s.bytesReceived || 0, framesDecoded: s.framesDecoded || 0,
      framesPerSecond: s.framesPerSecond || 0,
      frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0,
      lastPacketReceivedTimestamp: s.lastPacketReceivedTimestamp || 0,
    };
  });
  return byKind;
})()`

// InboundRTP reads getStats() of the viewer page's peer connection
// (window.lenscap.pc) and returns its inbound-rtp entries keyed by kind,
// "video" and "audio". A kind that is not being received is absent.
func (b *Browser) InboundRTP(ctx context.Context) (map[string]InboundStats, error) {
	stats := map[string]InboundStats{}
	if err := b.Eval(ctx, inboundRTPScript, &stats); err != nil {
		return nil, fmt.Errorf("chromiumtest: inbound-rtp stats: %w", err)
	}
	return stats, nil
}
