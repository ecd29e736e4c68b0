//go:build linux

package main

// The viewers the rig runs: `lenscapctl view --json` (pion) and a headless Chromium on the
// static page (this program's chromium-viewer command), each in a namespace of the rig. Both
// print one JSON object per line with an "event" field; the rig keeps them with the time it
// read them.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// event is one line a viewer printed.
type event struct {
	at     time.Time
	name   string // "connected", "first-frame", "stats", "track", ...
	kind   string // "video", "audio" or ""
	fields map[string]any
}

func (e event) str(key string) string {
	s, _ := e.fields[key].(string)
	return s
}

func (e event) num(key string) float64 {
	f, _ := e.fields[key].(float64)
	return f
}

func (e event) flag(key string) bool {
	b, _ := e.fields[key].(bool)
	return b
}

// viewerRun is one running viewer and what it printed.
type viewerRun struct {
	name  string
	ns    string
	p     *proc
	abort <-chan struct{} // the rig's: waits end when it closes

	mu     sync.Mutex
	events []event
	ssrcs  map[uint32]string // the SSRCs it received, by kind
}

func (v *viewerRun) onLine(line string) {
	var m map[string]any
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &m) != nil {
		return
	}
	e := event{at: time.Now(), fields: m}
	e.name, _ = m["event"].(string)
	e.kind, _ = m["kind"].(string)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.events = append(v.events, e)
	if ssrc, ok := m["ssrc"].(float64); ok && e.kind != "" {
		v.ssrcs[uint32(ssrc)] = e.kind
	}
}

// ssrcSet is the SSRCs of kind the viewer received so far.
func (v *viewerRun) ssrcSet(kind string) map[uint32]bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := map[uint32]bool{}
	for s, k := range v.ssrcs {
		if kind == "" || k == kind {
			out[s] = true
		}
	}
	return out
}

// waitFor waits up to d for an event read at or after since that satisfies ok.
func (v *viewerRun) waitFor(since time.Time, d time.Duration, ok func(event) bool) (event, bool) {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		v.mu.Lock()
		for _, e := range v.events {
			if !e.at.Before(since) && ok(e) {
				v.mu.Unlock()
				return e, true
			}
		}
		v.mu.Unlock()
		select {
		case <-v.abort:
			return event{}, false
		default:
		}
		if time.Now().After(deadline) || v.p.exited() {
			return event{}, false
		}
	}
}

// named matches events by name and, when kind is not empty, kind.
func named(name, kind string) func(event) bool {
	return func(e event) bool { return e.name == name && (kind == "" || e.kind == kind) }
}

// describe is the viewer's last lines, for a failure.
func (v *viewerRun) describe() string {
	return fmt.Sprintf("%s's last lines: %s", v.name, strings.ReplaceAll(v.p.out.last(6), "\n", " | "))
}

// startPion runs `lenscapctl view` in ns with the viewer's broker account and view token.
func (r *rig) startPion(name, ns string, extra ...string) (*viewerRun, error) {
	bin := filepath.Join(r.opts.bin, "lenscapctl")
	args := append([]string{"view", "--device", cameraID, "--json", "--for", "170s"}, extra...)
	cmd := execIn(ns, bin, args...)
	// Secrets in the environment, not in arguments anyone can read in ps.
	cmd.Env = append(os.Environ(), "LENSCAPCTL_TOKEN="+r.cam.viewToken,
		fmt.Sprintf("LENSCAP_MQTT=mqtt://%s:%s@%s:%d", viewerUser, r.sec.viewer, publicIP, mqttPort))
	v := &viewerRun{name: name, ns: ns, ssrcs: map[uint32]string{}, abort: r.abort}
	p, err := startProc(name, cmd, v.onLine)
	if err != nil {
		return nil, err
	}
	v.p = p
	r.track(p)
	return v, nil
}

// startChromium runs this program's chromium-viewer command in ns on the static page.
func (r *rig) startChromium(name, ns, pageURL string) (*viewerRun, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{chromiumSubcommand, "--for", "170s"} // the URL in pageURLEnv: it holds secrets
	if r.opts.chromium != "" {
		args = append(args, "--chromium", r.opts.chromium)
	}
	v := &viewerRun{name: name, ns: ns, ssrcs: map[uint32]string{}, abort: r.abort}
	cmd := execIn(ns, self, args...)
	cmd.Env = append(os.Environ(), pageURLEnv+"="+pageURL)
	p, err := startProc(name, cmd, v.onLine)
	if err != nil {
		return nil, err
	}
	v.p = p
	r.track(p)
	return v, nil
}

// stop ends the viewer (SIGTERM: lenscapctl says bye).
func (v *viewerRun) stop() {
	if v != nil {
		v.p.stop(3 * time.Second)
	}
}
