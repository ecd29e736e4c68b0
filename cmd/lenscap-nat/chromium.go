//go:build linux

package main

// chromium-viewer: run inside a namespace (ip netns exec), it starts headless Chromium there
// (rtc/rtctest/chromiumtest, over the DevTools protocol), opens the static viewer page and
// prints, as JSON lines in lenscapctl view's vocabulary, what getStats says: the selected
// candidate pair ("connected"), each inbound stream ("track", "first-frame", "stats").

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lenscap/lenscap/rtc/rtctest/chromiumtest"
)

const chromiumSubcommand = "chromium-viewer"

// pageStatsScript reads the page's peer connection (window.lenscap.pc): its selected candidate
// pair and its inbound RTP streams.
const pageStatsScript = `(async () => {
  const events = ((window.lenscap && window.lenscap.events) || []).map((e) => e.type + (e.kind ? ':' + e.kind : ''));
  const pc = window.lenscap && window.lenscap.pc;
  if (!pc) return {pc: false, inbound: [], events};
  const out = {pc: true, ice: pc.iceConnectionState, inbound: [], pair: null, events};
  const stats = await pc.getStats();
  let pairId = null;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
  stats.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    out.inbound.push({kind: s.kind, ssrc: s.ssrc, packets: s.packetsReceived || 0,
      frames: s.framesDecoded || 0, keyframes: s.keyFramesDecoded || 0, plis: s.pliCount || 0});
  });
  const p = pairId && stats.get(pairId);
  if (p && p.state === 'succeeded') {
    const l = stats.get(p.localCandidateId) || {}, r = stats.get(p.remoteCandidateId) || {};
    out.pair = {id: pairId, local: l.candidateType || '', remote: r.candidateType || '',
      localAddr: (l.address || '') + ':' + (l.port || ''), remoteAddr: (r.address || '') + ':' + (r.port || ''),
      protocol: l.protocol || ''};
  }
  return out;
})()`

type pageStats struct {
	PC      bool   `json:"pc"`
	ICE     string `json:"ice"`
	Inbound []struct {
		Kind      string `json:"kind"`
		SSRC      uint32 `json:"ssrc"`
		Packets   int64  `json:"packets"`
		Frames    int64  `json:"frames"`
		Keyframes int64  `json:"keyframes"`
		PLIs      int64  `json:"plis"`
	} `json:"inbound"`
	Pair *struct {
		ID, Local, Remote, LocalAddr, RemoteAddr, Protocol string
	} `json:"pair"`
	Events []string `json:"events"` // the page's own record: offer, state, addtrack:video, ...
}

// pageURLEnv names the variable that gives chromium-viewer its page: the URL's fragment holds
// the viewer's password and token, which arguments would show in ps.
const pageURLEnv = "LENSCAP_NAT_PAGE_URL"

// runChromiumViewer is the chromium-viewer command; it returns the exit status.
func runChromiumViewer(args []string) int {
	fs := flag.NewFlagSet(chromiumSubcommand, flag.ContinueOnError)
	url := fs.String("url", os.Getenv(pageURLEnv), "the page to open (default $"+pageURLEnv+")")
	path := fs.String("chromium", "", "the Chromium executable")
	life := fs.Duration("for", time.Minute, "how long to watch")
	if err := fs.Parse(args); err != nil || *url == "" {
		fmt.Fprintln(os.Stderr, "usage: lenscap-nat chromium-viewer --url URL [--for D] [--chromium PATH]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *life)
	defer cancel()
	out, start := json.NewEncoder(os.Stdout), time.Now()
	emit := func(m map[string]any) {
		m["t_ms"] = time.Since(start).Milliseconds()
		_ = out.Encode(m)
	}
	b, err := chromiumtest.Start(ctx, chromiumtest.Options{Path: *path})
	if err != nil {
		emit(map[string]any{"event": "error", "error": err.Error()})
		return 1
	}
	defer func() {
		if logs := b.Logs(); logs != "" {
			emit(map[string]any{"event": "console", "text": logs})
		}
		_ = b.Close()
	}()
	if err := b.Navigate(ctx, *url); err != nil {
		// Navigate's errors name the URL: without its fragment (secrets) in the rig's logs.
		bare, _, _ := strings.Cut(*url, "#")
		emit(map[string]any{"event": "error", "error": strings.ReplaceAll(err.Error(), *url, bare+"#...")})
		return 1
	}
	emit(map[string]any{"event": "hello"})
	watchPage(ctx, b, emit)
	return 0
}

// watchPage reads the page's statistics every 200 ms until ctx ends and prints what changed.
func watchPage(ctx context.Context, b *chromiumtest.Browser, emit func(map[string]any)) {
	start := time.Now()
	pair, events := "", 0
	seen := map[uint32]bool{}
	framed := map[uint32]bool{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var st pageStats
		ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := b.Eval(ectx, pageStatsScript, &st)
		cancel()
		if err != nil {
			emit(map[string]any{"event": "error", "error": err.Error()})
			continue
		}
		for ; events < len(st.Events); events++ {
			emit(map[string]any{"event": "page", "type": st.Events[events]})
		}
		if st.Pair != nil && st.Pair.ID+st.Pair.LocalAddr+st.Pair.RemoteAddr != pair {
			pair = st.Pair.ID + st.Pair.LocalAddr + st.Pair.RemoteAddr
			emit(map[string]any{"event": "connected", "pair": pairType(st.Pair.Local, st.Pair.Remote),
				"local": st.Pair.LocalAddr, "remote": st.Pair.RemoteAddr, "local-type": st.Pair.Local,
				"remote-type": st.Pair.Remote, "protocol": st.Pair.Protocol})
		}
		for _, in := range st.Inbound {
			if !seen[in.SSRC] {
				seen[in.SSRC] = true
				emit(map[string]any{"event": "track", "kind": in.Kind, "ssrc": in.SSRC})
			}
			if in.Kind == "video" && in.Frames > 0 && !framed[in.SSRC] {
				framed[in.SSRC] = true
				emit(map[string]any{"event": "first-frame", "kind": in.Kind, "ssrc": in.SSRC,
					"keyframe": in.Keyframes > 0, "after": time.Since(start).Milliseconds(), "plis": in.PLIs})
			}
			if n%5 == 0 {
				emit(map[string]any{"event": "stats", "kind": in.Kind, "ssrc": in.SSRC, "packets": in.Packets,
					"frames": in.Frames, "keyframes": in.Keyframes, "plis": in.PLIs})
			}
		}
	}
}

// pairType names a candidate pair as lenscapctl view does: the more indirect of its two
// candidates' types (relay, srflx, prflx, host).
func pairType(local, remote string) string {
	for _, t := range []string{"relay", "srflx", "prflx"} {
		if local == t || remote == t {
			return t
		}
	}
	return "host"
}
