package rtc

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// nackGate keeps the NACK responder from retransmitting media of a kind that is private. It is
// the innermost RTCP reader (registered first): a NACK for an SSRC no live fanout is sending
// (a WHEP sender whose track was replaced by none, a WebSocket sender whose removeTrack is
// still queued) reaches the responder with its lost-packet list emptied, so packets captured
// before the cut are not sent again during privacy.
type nackGate struct {
	interceptor.NoOp
	live func(ssrc uint32) bool
}

type nackGateFactory struct{ live func(ssrc uint32) bool }

func (f nackGateFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &nackGate{live: f.live}, nil
}

// BindRTCPReader implements interceptor.Interceptor.
func (g *nackGate) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attr, err := reader.Read(b, a)
		if err != nil || n == 0 {
			return n, attr, err
		}
		pkts, perr := rtcp.Unmarshal(b[:n])
		if perr != nil {
			return n, attr, err // not ours to judge: the responder ignores what it cannot parse
		}
		changed := false
		for _, p := range pkts {
			if nk, ok := p.(*rtcp.TransportLayerNack); ok && len(nk.Nacks) > 0 && !g.live(nk.MediaSSRC) {
				nk.Nacks = nil // an empty NACK: valid, and nothing to resend
				changed = true
			}
		}
		if !changed {
			return n, attr, err
		}
		out, merr := rtcp.Marshal(pkts)
		if merr != nil || len(out) > len(b) {
			return 0, attr, merr
		}
		return copy(b, out), attr, err
	})
}

// liveSSRC reports whether a fanout with a live track is sending on ssrc.
func (s *Server) liveSSRC(ssrc uint32) bool {
	for _, f := range s.fanouts {
		f.mu.Lock()
		live := false
		if f.track != nil {
			for _, b := range f.bindings {
				if b.hdr.SSRC == ssrc {
					live = true
					break
				}
			}
		}
		f.mu.Unlock()
		if live {
			return true
		}
	}
	return false
}
