//go:build linux

package main

// The viewers' checks: each connects from the mobile network over MQTT signalling, through
// TURN only; a viewer that cannot reach TURN gets nothing.

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// checkSignalling finds what the viewers need: `lenscapctl view`, and a camera that answers
// MQTT signalling (a viewer in the mobile network gets its state or an offer within 10 s). It
// starts the packet capture on the viewers' interface and keeps the viewer for the relay check.
func (r *rig) checkSignalling(_ context.Context) result {
	out, _ := exec.Command(filepath.Join(r.opts.bin, "lenscapctl"), "view", "-h").CombinedOutput()
	if !strings.Contains(string(out), "--device") {
		return failf("lenscapctl has no view command: %.100s", out)
	}
	if r.cam.signalKey == "" {
		return failf("lenscap -h lists no --mqtt-signalling")
	}
	c, err := startCapture(r.topo.mobile, "eth0")
	if err != nil {
		return failf("packet capture in %s: %v", r.topo.mobile, err)
	}
	r.capture = c
	v, err := r.startPion("view-relayed", r.topo.mobile)
	if err != nil {
		return failf("%v", err)
	}
	answered := func(e event) bool { return e.name == "state" || e.name == "config" || e.name == "offer" }
	if _, ok := v.waitFor(time.Now().Add(-time.Second), 10*time.Second, answered); !ok {
		v.stop()
		return failf("the camera (%s: true) did not answer a viewer's hello in 10 s; %s", r.cam.signalKey, v.describe())
	}
	r.probe = v
	return passf("the camera answers MQTT signalling (%s: true, its own broker account); capturing RTP headers arriving on %s eth0",
		r.cam.signalKey, r.topo.mobile)
}

// checkPionRelay: lenscapctl view in the mobile network connects through a relay and gets
// video.
func (r *rig) checkPionRelay(_ context.Context) result {
	v := r.probe
	began := v.p.started
	conn, ok := v.waitFor(began, 20*time.Second, named("connected", ""))
	if !ok {
		return failf("no connection in 20 s; %s", v.describe())
	}
	if conn.str("pair") != "relay" {
		return failf("selected pair %s (%s -> %s): want relay", conn.str("pair"), conn.str("local"), conn.str("remote"))
	}
	ff, ok := v.waitFor(began, 15*time.Second, named("first-frame", "video"))
	if !ok {
		return failf("connected through a relay, but no video frame in 15 s; %s", v.describe())
	}
	r.pion = v
	return passf("pair=relay (%s %s -> %s %s), first video frame %.0f ms after hello",
		conn.str("local-type"), conn.str("local"), conn.str("remote-type"), conn.str("remote"), ff.num("after"))
}

// checkFirstKeyframe: the relayed pion viewer's first video frame was a keyframe.
func (r *rig) checkFirstKeyframe(_ context.Context) result {
	ff, ok := r.pion.waitFor(r.pion.p.started, 0, named("first-frame", "video"))
	if !ok {
		return failf("no first frame recorded")
	}
	if !ff.flag("keyframe") {
		return failf("lenscapctl view's first video frame through the relay was not a keyframe (first-frame %v)", ff.fields)
	}
	return passf("first video frame a keyframe, %.0f ms after hello", ff.num("after"))
}

// checkChromiumRelay: headless Chromium in the mobile network on the static page (lenscap page)
// connects over MQTT over WebSocket, through a relay, and decodes video.
func (r *rig) checkChromiumRelay(ctx context.Context) result {
	dir := filepath.Join(r.dir, "page")
	broker := fmt.Sprintf("ws://%s:%d", publicIP, mqttWSPort)
	_, err := r.cam.command(ctx, "page", "--out", dir, "--broker", broker, "--device", cameraID)
	if err != nil {
		return failf("%v", err)
	}
	frag := url.Values{"user": {viewerUser}, "password": {r.sec.viewer}, "token": {r.cam.viewToken}}.Encode()
	page := "file://" + filepath.Join(dir, "index.html") + "#" + frag
	v, err := r.startChromium("chromium-relayed", r.topo.mobile, page)
	if err != nil {
		return failf("%v", err)
	}
	began := time.Now()
	conn, ok := v.waitFor(began, 40*time.Second, named("connected", ""))
	if !ok {
		return failf("no selected candidate pair in 40 s; %s", v.describe())
	}
	if conn.str("pair") != "relay" {
		return failf("selected pair %s (%s -> %s): want relay", conn.str("pair"), conn.str("local"), conn.str("remote"))
	}
	ff, ok := v.waitFor(began, 20*time.Second, named("first-frame", "video"))
	if !ok {
		return failf("connected through a relay, but no video frame decoded in 20 s; %s", v.describe())
	}
	r.chrome = v
	return passf("getStats: selected pair relay (%s %s -> %s %s), first video frame decoded %.0f ms after the page loaded",
		conn.str("local-type"), conn.str("local"), conn.str("remote-type"), conn.str("remote"), ff.num("after"))
}

// checkDirectFails: a second viewer host on the mobile NAT whose network drops UDP to port 3478
// (no STUN, no TURN) has only its private host address and the camera's candidates: the
// symmetric NAT leaves no path, and it gets no connection in 6 s (a relayed one takes under
// 1 s here).
func (r *rig) checkDirectFails(ctx context.Context) result {
	rule := fmt.Sprintf("add table ip lnatblock\nadd chain ip lnatblock block { type filter hook forward priority 0; policy accept; }\n"+
		"add rule ip lnatblock block iifname lan2 ip daddr %s udp dport %d drop\n", publicIP, turnPort)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", r.topo.mobGW, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rule)
	if out, err := cmd.CombinedOutput(); err != nil {
		return failf("nft: %v: %s", err, out)
	}
	defer func() {
		_ = sh(context.Background(), "ip", "netns", "exec", r.topo.mobGW, "nft", "delete", "table", "ip", "lnatblock")
	}()
	v, err := r.startPion("view-no-turn", r.topo.blocked, "--for", "6s")
	if err != nil {
		return failf("%v", err)
	}
	defer v.stop()
	began := time.Now()
	v.p.wait(12 * time.Second)
	if c, ok := v.waitFor(began, 0, named("connected", "")); ok {
		return failf("connected without TURN: pair %s (%s -> %s)", c.str("pair"), c.str("local"), c.str("remote"))
	}
	if _, ok := v.waitFor(began, 0, named("offer", "")); !ok {
		return failf("no offer reached the viewer: the check proves nothing; %s", v.describe())
	}
	last := "no ice state"
	if e, ok := v.lastEvent("ice"); ok {
		last = "ice " + e.str("state")
	}
	return passf("STUN/TURN blocked for the viewer: an offer arrived, no connection in 6 s (%s)", last)
}

// lastEvent is the last event of that name.
func (v *viewerRun) lastEvent(name string) (event, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := len(v.events) - 1; i >= 0; i-- {
		if v.events[i].name == name {
			return v.events[i], true
		}
	}
	return event{}, false
}
