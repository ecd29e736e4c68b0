//go:build linux

package main

// Reading the captured packets: when the last packet of a cut kind arrived, and whether any of
// them carried a frame captured after the cut.
//
// An RTP timestamp is the frame's capture time on the camera's clock, from a random base. The
// base is found from the packets before the press: for each, arrival - timestamp/clock is the
// capture time's offset plus that packet's delay; the smallest of them (the fastest packet's
// delay, d) anchors the rest, so a packet's estimated capture time is its true capture time +
// d, never earlier. A packet counts as captured after the cut when its estimate is at or after
// the moment the API answered the press (the trigger came before that answer, and d is below
// a millisecond on these links): a leak is never hidden, and one frame captured just before
// the answer could only be miscounted if it was captured less than d before it.

import (
	"fmt"
	"math"
	"time"
)

// streamCut is what one SSRC's packets say about a cut.
type streamCut struct {
	ssrc       uint32
	clock      int           // ticks per second, estimated from the stream
	before     int           // packets in the 3 s before the press
	after      int           // packets that arrived after the press
	leaks      int           // packets of frames captured at or after the API's answer
	lastAfter  time.Duration // the last packet's arrival after the press (0: none came)
	newest     time.Duration // the newest frame's estimated capture after the press
	anchorSpan time.Duration // the spread of the packets' delays before the press
}

// analyzeCut reads one SSRC's packets around a press sent at sent and answered at answered.
func analyzeCut(ssrc uint32, pkts []rtpPacket, sent, answered time.Time) (streamCut, error) {
	sc := streamCut{ssrc: ssrc}
	var pre, post []rtpPacket
	for _, p := range pkts {
		switch {
		case p.at.Before(sent.Add(-3 * time.Second)):
		case p.at.Before(sent):
			pre = append(pre, p)
		default:
			post = append(post, p)
		}
	}
	sc.before, sc.after = len(pre), len(post)
	if len(pre) < 2 {
		return sc, fmt.Errorf("ssrc %d: %d packets before the press: nothing to anchor its timestamps", ssrc, len(pre))
	}
	sc.clock = estimateClock(pre)
	ref := pre[0]
	rel := func(p rtpPacket) time.Duration {
		return time.Duration(int64(int32(p.ts-ref.ts)) * int64(time.Second) / int64(sc.clock))
	}
	base, worst := pre[0].at.Sub(sent)-rel(pre[0]), time.Duration(math.MinInt64)
	for _, p := range pre {
		o := p.at.Sub(sent) - rel(p)
		base, worst = min(base, o), max(worst, o)
	}
	sc.anchorSpan = worst - base
	sc.newest = time.Duration(math.MinInt64)
	for _, p := range post {
		est := base + rel(p) // capture time + d, relative to sent
		sc.newest = max(sc.newest, est)
		if !sent.Add(est).Before(answered) {
			sc.leaks++
		}
		sc.lastAfter = max(sc.lastAfter, p.at.Sub(sent))
	}
	return sc, nil
}

// estimateClock is the stream's RTP clock rate: the nearest of 90 kHz (video), 48 kHz (Opus)
// and 8 kHz (PCMU) to the timestamps' advance over the arrival times.
func estimateClock(pre []rtpPacket) int {
	first, last := pre[0], pre[len(pre)-1]
	secs := last.at.Sub(first.at).Seconds()
	if secs <= 0 {
		return 90000
	}
	rate := float64(int32(last.ts-first.ts)) / secs
	best := 90000
	for _, c := range []int{90000, 48000, 8000} {
		if math.Abs(rate-float64(c)) < math.Abs(rate-float64(best)) {
			best = c
		}
	}
	return best
}

// describeCut is a line about a viewer's streams at a cut.
func describeCut(cuts []streamCut) string {
	s := ""
	for i, c := range cuts {
		if i > 0 {
			s += "; "
		}
		kind := map[int]string{90000: "video", 48000: "audio", 8000: "audio"}[c.clock]
		if c.after == 0 {
			s += fmt.Sprintf("%s: %d packets in the 3 s before, none after the press", kind, c.before)
			continue
		}
		s += fmt.Sprintf("%s: %d after the press, the last +%.1f ms, newest frame captured %+.1f ms (est.), %d captured after the cut",
			kind, c.after, ms(c.lastAfter), ms(c.newest), c.leaks)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
