//go:build linux

package main

// The cut, the lift and the ICE restart at the relayed viewers, read on the wire (capture.go)
// and from what each viewer prints.

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// relayed is the relayed viewers that connected.
func (r *rig) relayed() []*viewerRun {
	var out []*viewerRun
	for _, v := range []*viewerRun{r.pion, r.chrome} {
		if v != nil && !v.p.exited() {
			out = append(out, v)
		}
	}
	return out
}

// cutAt presses the button (a cut) and reads every relayed viewer's streams around it.
func (r *rig) cutAt(ctx context.Context) (cuts map[*viewerRun][]streamCut, sent, answered time.Time, err error) {
	sent, answered, st, err := r.cam.press(ctx)
	if err != nil {
		return nil, sent, answered, err
	}
	r.cutPressed = true
	if !st.Video.Private || st.Video.By != "button" {
		return nil, sent, answered, fmt.Errorf("after the press the state says video private=%v by %q", st.Video.Private, st.Video.By)
	}
	if !r.pause(1500 * time.Millisecond) { // what was on its way has arrived
		return nil, sent, answered, errInterrupted()
	}
	out := map[*viewerRun][]streamCut{}
	for _, v := range r.relayed() {
		for ssrc := range v.ssrcSet("") {
			pk := r.capture.packets(map[uint32]bool{ssrc: true}, sent.Add(-3*time.Second), time.Now())
			if len(pk) == 0 {
				continue // an SSRC of an earlier track
			}
			sc, err := analyzeCut(ssrc, pk, sent, answered)
			if err != nil {
				return nil, sent, answered, fmt.Errorf("%s: %w", v.name, err)
			}
			out[v] = append(out[v], sc)
		}
	}
	return out, sent, answered, nil
}

// checkCut: the button's cut reaches every relayed viewer, and no packet of a frame captured
// after it arrives.
func (r *rig) checkCut(ctx context.Context) result {
	vs := r.relayed()
	if len(vs) == 0 || r.capture == nil {
		return skipf("needs a relayed viewer (viewer.pion-relay or viewer.chromium-relay)")
	}
	if !r.pause(time.Second) { // a second of packets to anchor the timestamps
		return failf("%v", errInterrupted())
	}
	began := time.Now()
	cuts, sent, answered, err := r.cutAt(ctx)
	if err != nil {
		return failf("%v", err)
	}
	var lines, bad []string
	for _, v := range vs {
		if len(cuts[v]) == 0 {
			bad = append(bad, fmt.Sprintf("%s: no packets of its SSRCs %v on the wire (seen there: %v)",
				v.name, v.ssrcSet(""), r.capture.seen(sent.Add(-3*time.Second), sent)))
		}
		for _, c := range cuts[v] {
			if c.leaks > 0 {
				bad = append(bad, fmt.Sprintf("%s ssrc %d: %d packets captured after the cut", v.name, c.ssrc, c.leaks))
			}
		}
		lines = append(lines, v.name+": "+describeCut(cuts[v]))
	}
	if r.pion != nil {
		if _, ok := r.pion.waitFor(began, 3*time.Second, named("ended", "video")); !ok {
			bad = append(bad, "lenscapctl view reported no ended video track")
		}
	}
	if len(bad) > 0 {
		return failf("%s (%s)", strings.Join(bad, "; "), strings.Join(lines, " / "))
	}
	at, err := r.cam.lastJournal(ctx, "cut")
	if err != nil {
		return failf("%v", err)
	}
	return passf("POST /api/button answered in %.1f ms, the journal's cut entry %.1f ms after it was sent; %s",
		ms(answered.Sub(sent)), ms(at.Sub(sent)), strings.Join(lines, " / "))
}

// checkLift: the second press lifts; each relayed viewer gets video again, pion's first
// frame of the new track a keyframe.
func (r *rig) checkLift(ctx context.Context) result {
	if !r.cutPressed {
		return skipf("needs the cut's press (cut.button)")
	}
	began := time.Now()
	before := map[*viewerRun]event{}
	for _, v := range r.relayed() {
		before[v], _ = v.lastStats("video")
	}
	_, _, st, err := r.cam.press(ctx)
	if err != nil {
		return failf("%v", err)
	}
	if st.Video.Private {
		return failf("after the second press the state says video private by %q", st.Video.By)
	}
	var lines []string
	if v := r.pion; v != nil {
		ff, ok := v.waitFor(began, 10*time.Second, named("first-frame", "video"))
		if !ok {
			return failf("lenscapctl view: no video frame within 10 s of the lift; %s", v.describe())
		}
		if !ff.flag("keyframe") {
			return failf("lenscapctl view: the first video frame after the lift (add %.0f) was not a keyframe", ff.num("add"))
		}
		lines = append(lines, fmt.Sprintf("%s: first frame a keyframe, %.0f ms after the press (add %.0f)",
			v.name, ms(ff.at.Sub(began)), ff.num("add")))
	}
	if v := r.chrome; v != nil {
		e, ok := v.waitFor(began, 10*time.Second, decodedSince(before[v]))
		if !ok {
			return failf("chromium: no video frame decoded within 10 s of the lift; %s", v.describe())
		}
		lines = append(lines, fmt.Sprintf("%s: decoding again within %.0f ms (%s: ssrc %.0f, frames %.0f, keyframes decoded %.0f, PLIs sent %.0f)",
			v.name, ms(e.at.Sub(began)), e.name, e.num("ssrc"), e.num("frames"), e.num("keyframes"), e.num("plis")))
	}
	return passf("%s", strings.Join(lines, "; "))
}

// checkRestart: the viewer's public address changes (the mobile NAT forgets its UDP mappings:
// the relay no longer knows the viewer's allocation); the camera offers an ICE restart over the
// MQTT signalling, which stays up, and video reaches each relayed viewer again within 5 s.
func (r *rig) checkRestart(ctx context.Context) result {
	vs := r.relayed()
	if len(vs) == 0 || r.capture == nil {
		return skipf("needs a relayed viewer (viewer.pion-relay or viewer.chromium-relay)")
	}
	if err := r.ensureLive(ctx); err != nil {
		return failf("%v", err)
	}
	if !r.pause(time.Second) {
		return failf("%v", errInterrupted())
	}
	moved := time.Now()
	if err := r.topo.rebindMobile(ctx); err != nil {
		return failf("%v", err)
	}
	var lines, bad []string
	for _, v := range vs {
		line, good := r.recovered(v, moved)
		if good {
			lines = append(lines, line)
		} else {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		return failf("%s", strings.Join(append(bad, lines...), "; "))
	}
	return passf("the mobile NAT forgot its UDP mappings (every flow of the viewer on a new port); %s", strings.Join(lines, "; "))
}

// restartNote says what the viewer saw of the restart: the offer and the new pair.
func restartNote(v *viewerRun, since time.Time) string {
	note := ""
	restart := func(e event) bool { return e.name == "offer" && e.flag("restart") }
	pageOffer := func(e event) bool { return e.name == "page" && e.str("type") == "offer" }
	if o, ok := v.waitFor(since, 0, restart); ok {
		note += fmt.Sprintf(" (ICE restart offer at %.2f s", o.at.Sub(since).Seconds())
	} else if o, ok := v.waitFor(since, 0, pageOffer); ok {
		note += fmt.Sprintf(" (the page got an offer at %.2f s", o.at.Sub(since).Seconds())
	} else {
		note += " (no offer seen"
	}
	if c, ok := v.waitFor(since, 0, named("connected", "")); ok {
		note += fmt.Sprintf(", pair %s %s -> %s)", c.str("pair"), c.str("local"), c.str("remote"))
	} else {
		note += ")"
	}
	return note
}

// resumed waits up to d after since for the video of ssrcs to come back after a gap: it
// returns the gap and when the first packet after it arrived (after since).
func (r *rig) resumed(ssrcs map[uint32]bool, since time.Time, d time.Duration) (gap, back time.Duration, ok bool) {
	for deadline := since.Add(d); time.Now().Before(deadline) && r.pause(100*time.Millisecond); {
		pk := r.capture.packets(ssrcs, since.Add(-time.Second), time.Now())
		gap = 0
		for i := 1; i < len(pk); i++ {
			g := pk[i].at.Sub(pk[i-1].at)
			if pk[i].at.After(since) && g > gap {
				gap, back = g, pk[i].at.Sub(since)
			}
		}
		if gap >= 500*time.Millisecond && time.Since(since.Add(back)) > 300*time.Millisecond {
			return gap, back, true
		}
	}
	return gap, back, gap > 0
}

// ensureLive lifts privacy the earlier checks left engaged (a cut whose check failed before its
// lift), so that what follows measures a live camera.
func (r *rig) ensureLive(ctx context.Context) error {
	st, err := r.cam.state(ctx)
	if err != nil || !st.Video.Private {
		return err
	}
	if _, _, st, err = r.cam.press(ctx); err == nil && st.Video.Private {
		err = fmt.Errorf("video still private (by %s) after a press", st.Video.By)
	}
	return err
}

// lastStats is the viewer's last stats event of kind.
func (v *viewerRun) lastStats(kind string) (event, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := len(v.events) - 1; i >= 0; i-- {
		if e := v.events[i]; e.name == "stats" && e.kind == kind {
			return e, true
		}
	}
	return event{}, false
}

// decodedSince matches a video frame decoded after the stats event before: a first frame of a
// new stream, or a stats event of the same stream with more frames.
func decodedSince(before event) func(event) bool {
	return func(e event) bool {
		if e.kind != "video" {
			return false
		}
		if e.name == "first-frame" {
			return true
		}
		return e.name == "stats" && (e.num("ssrc") != before.num("ssrc") || e.num("frames") > before.num("frames"))
	}
}

// recovered says whether video flows to v again 5 s after its address changed at moved: the
// viewer itself reports frames decoded between 3.5 and 6.5 s after (its stats come every
// second), and the wire says when the packets came back after a gap (or that they never
// stopped).
func (r *rig) recovered(v *viewerRun, moved time.Time) (string, bool) {
	gap, back, ok := r.resumed(v.ssrcSet("video"), moved, 10*time.Second)
	// The viewer's stats up to 6.5 s after the move are in once it reported anything later.
	v.waitFor(moved.Add(6500*time.Millisecond), 8*time.Second, func(e event) bool {
		return e.kind == "video" && (e.name == "stats" || e.name == "first-frame")
	})
	wire := "no video packet on the wire within 10 s"
	switch {
	case ok && gap < 500*time.Millisecond:
		wire = fmt.Sprintf("packets never stopped (longest gap %.0f ms)", ms(gap))
	case ok:
		wire = fmt.Sprintf("packets back %.2f s after the move (gap %.2f s)", back.Seconds(), gap.Seconds())
	}
	note := wire + restartNote(v, moved)
	if !v.decoding(moved.Add(3500*time.Millisecond), moved.Add(6500*time.Millisecond)) {
		return fmt.Sprintf("%s: not decoding video 5 s after the move; %s", v.name, note), false
	}
	if ok && gap >= 500*time.Millisecond && back > 5*time.Second {
		return fmt.Sprintf("%s: video back after %.2f s, want within 5 s; %s", v.name, back.Seconds(), note), false
	}
	return fmt.Sprintf("%s: decoding 5 s after the move; %s", v.name, note), true
}

// decoding reports whether the viewer's video frame count grew between two of its stats
// events in [from, to], or a new video stream began there.
func (v *viewerRun) decoding(from, to time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	var prev *event
	for i := range v.events {
		e := &v.events[i]
		if e.kind != "video" || e.at.Before(from) || e.at.After(to) {
			continue
		}
		if e.name == "first-frame" {
			return true
		}
		if e.name != "stats" {
			continue
		}
		if prev != nil && prev.num("ssrc") == e.num("ssrc") && e.num("frames") > prev.num("frames") {
			return true
		}
		prev = e
	}
	return false
}
