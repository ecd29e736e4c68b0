//go:build linux

package main

// The checks of lenscap itself on the emulated board's profile: doctor, start (trying the
// profile's variants), its HTTP API, its MQTT state and commands, and its stop.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// checkDoctor runs `lenscap doctor` on the emulated board's profile: what lenscap finds of the
// board (the gpio-sim chip and lines, the camera, the encoder) before it starts.
func checkDoctor(ctx context.Context, h *harness) result {
	if err := os.MkdirAll("/tmp/hil", 0o700); err != nil {
		return failf("%v", err)
	}
	path, err := h.writeProfile(variantGeneric, profile{})
	if err != nil {
		return skipf("v4l2.find-camera, v4l2.find-encoder, gpio.find-chip (%v)", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(dctx, h.opts.lenscap, "doctor", "--config", path).CombinedOutput()
	text := strings.TrimSpace(string(out))
	fmt.Println("HIL doctor output:")
	for _, l := range strings.Split(text, "\n") {
		fmt.Println("HIL | " + l)
	}
	if !strings.Contains(text, "gpio chip") {
		return skipf("issue 4: lenscap doctor reporting the generic board (%v: %s)", err, lastError(text))
	}
	var found []string
	for _, label := range []string{"button", "privacy LED", "live LED"} {
		line := ""
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, label+" ") {
				line = l
			}
		}
		switch {
		case line == "":
			return skipf("issue 4: lenscap doctor reporting the %s line", label)
		case !strings.Contains(line, " ok"):
			return failf("lenscap doctor: %s", line)
		}
		found = append(found, label)
	}
	// The camera, encoder and audio lines are checked by camera.held once issue 5 lands.
	return passf("doctor finds the gpio-sim chip and %s ok (exit %v: output above)", strings.Join(found, ", "), err)
}

func checkStart(ctx context.Context, h *harness) result {
	b, err := startBroker(brokerAddr)
	if err != nil {
		return failf("MQTT broker on %s: %v", brokerAddr, err)
	}
	h.broker = b
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return failf("%v", err)
	}
	h.why = map[variant]string{}
	for v := variantFull; v <= variantSim; v++ {
		start := time.Now()
		fw, err := h.startProfile(v, profile{})
		if err != nil {
			h.why[v] = brief(err)
			continue
		}
		h.fw, h.variant = fw, v
		return passf("%s: %s, listening after %.2fs", variantNames[v], fw.base, time.Since(start).Seconds())
	}
	return failf("lenscap did not start even as --board sim: %s", h.why[variantSim])
}

// profile is what a check changes in the emulated board's profile.
type profile struct {
	latching    bool // the button is a latching switch
	cameraPower bool // the camera's power interlock on the cam-power line
}

// writeProfile writes the emulated board's profile (board.yaml.tmpl) for v to a file.
func (h *harness) writeProfile(v variant, o profile) (string, error) {
	p := boardParams{Board: v.board(), Listen: "127.0.0.1:0", StateDir: stateDir, MQTT: "mqtt://" + brokerAddr,
		ID: deviceID, Latching: o.latching, WithCamera: v == variantFull, WithGPIO: v <= variantSimGPIO,
		CodedFormat: h.opts.coded, Button: lineButton, LEDPrivacy: linePriv, LEDLive: lineLive}
	if o.cameraPower {
		p.CameraPower = lineCamPower
	}
	if v <= variantGeneric && (h.camera == nil || h.encoder == nil) {
		return "", fmt.Errorf("the camera or the encoder was not found")
	}
	if h.camera != nil && h.encoder != nil {
		p.Camera, p.Encoder = h.camera.Path, h.encoder.Path
	}
	if p.WithGPIO {
		if h.chip == nil {
			return "", fmt.Errorf("the gpio-sim chip was not found")
		}
		p.Chip, p.ChipLabel = h.chip.Name, h.chip.Label
	}
	cfg, err := renderBoard(p)
	if err != nil {
		return "", err
	}
	path := "/tmp/hil/board.yaml"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// startProfile starts lenscap on the emulated board's profile for v.
func (h *harness) startProfile(v variant, o profile) (*firmware, error) {
	path, err := h.writeProfile(v, o)
	if err != nil {
		return nil, err
	}
	return startFirmware(h.opts.lenscap, []string{"--config", path}, 20*time.Second)
}

func checkHealthz(ctx context.Context, h *harness) result {
	if h.fw == nil {
		return skipf("lenscap.start")
	}
	code, body, err := h.fw.get(ctx, "/healthz")
	if err != nil {
		return failf("%v", err)
	}
	if code != http.StatusOK {
		return failf("GET /healthz: %d %s", code, body)
	}
	return passf("200 %s", strings.TrimSpace(string(body)))
}

func checkAPIState(ctx context.Context, h *harness) result {
	if h.fw == nil {
		return skipf("lenscap.start")
	}
	s, err := h.fw.state(ctx)
	if err != nil {
		return failf("%v", err)
	}
	return passf("board %q video private=%v audio private=%v viewers=%d", s.Board, s.Video.Private, s.Audio.Private, s.Viewers)
}

func checkMetrics(ctx context.Context, h *harness) result {
	if h.fw == nil {
		return skipf("lenscap.start")
	}
	code, body, err := h.fw.get(ctx, "/metrics")
	if err != nil {
		return failf("%v", err)
	}
	if code == http.StatusNotFound || (code == http.StatusOK && !strings.Contains(string(body), "lenscap_")) {
		return skipf("the lead: /metrics served by newMetrics (cmd/lenscap/metrics.go) in main.go")
	}
	if code != http.StatusOK {
		return failf("GET /metrics: %d", code)
	}
	n := 0
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "lenscap_") {
			n++
		}
	}
	return passf("%d lenscap_ samples", n)
}

func checkMQTTState(_ context.Context, h *harness) result {
	if h.fw == nil {
		return skipf("lenscap.start")
	}
	topic := "lenscap/" + deviceID + "/state"
	m, err := h.broker.waitMessage(topic, 10*time.Second, func(m map[string]any) bool { return m["video"] != nil })
	if err != nil {
		return failf("%v", err)
	}
	return passf("%s: video=%v", topic, m["video"])
}

// checkMQTTCommand: a privacy command over MQTT is acked and changes /api/state; then lifted.
func checkMQTTCommand(ctx context.Context, h *harness) result {
	if h.fw == nil {
		return skipf("lenscap.start")
	}
	var took []string
	for _, private := range []bool{true, false} {
		id, cmd := h.command(private)
		start := time.Now()
		if err := h.broker.publish("lenscap/"+deviceID+"/cmd", cmd); err != nil {
			return failf("publish: %v", err)
		}
		ack, err := h.broker.waitMessage("lenscap/"+deviceID+"/ack", 10*time.Second, func(m map[string]any) bool { return m["id"] == id })
		if err != nil {
			return failf("video=%v: %v", private, err)
		}
		if ack["ok"] != true {
			return failf("video=%v: ack %v", private, ack)
		}
		ackTook := time.Since(start)
		if _, _, err := h.fw.waitState(ctx, 5*time.Second, func(s apiState) bool { return s.Video.Private == private }); err != nil {
			return failf("video=%v acked but /api/state: %v", private, err)
		}
		took = append(took, fmt.Sprintf("video=%v acked in %.0fms", private, ackTook.Seconds()*1000))
	}
	return passf("%s", strings.Join(took, ", "))
}

func checkProfile(_ context.Context, h *harness) result {
	if h.fw == nil {
		return skipf("lenscap.start")
	}
	var refused []string
	for v := variantFull; v < h.variant; v++ {
		refused = append(refused, fmt.Sprintf("%s: %s", variantNames[v], h.why[v]))
	}
	if h.variant == variantFull {
		return passf("lenscap runs the generic board described by board.yaml.tmpl")
	}
	need := "issue 5"
	if h.variant > variantSimGPIO {
		need = "issue 4"
	}
	return skipf("%s: lenscap runs %q; refused: %s", need, variantNames[h.variant], strings.Join(refused, "; "))
}

func checkStop(_ context.Context, h *harness) result {
	if h.fw == nil {
		return skipf("lenscap.start")
	}
	start := time.Now()
	if err := h.fw.stop(); err != nil {
		return failf("%v", err)
	}
	return passf("SIGINT: exited in %.0fms (%v)", time.Since(start).Seconds()*1000, h.fw.err)
}

// checkJournal verifies the privacy journal the button and MQTT presses above wrote (lenscap
// still running: every line is written whole and fsync'd), then shows that an edited copy of it
// is caught, the broken line named.
func checkJournal(ctx context.Context, h *harness) result {
	if h.fw == nil {
		return skipf("lenscap.start")
	}
	verify := func(args ...string) (string, error) {
		vctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(vctx, h.opts.lenscap, append([]string{"journal", "verify", "--state-dir", stateDir}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	out, err := verify()
	if err != nil {
		return failf("journal verify: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(stateDir, "journal.jsonl"))
	if err != nil {
		return failf("%v", err)
	}
	edited := bytes.Replace(b, []byte(`"by":"button"`), []byte(`"by":"remote"`), 1) // blame someone else
	if bytes.Equal(edited, b) {
		return failf("no entry by the button in the journal after the presses")
	}
	copyPath := "/tmp/hil/journal-edited.jsonl"
	if err := os.WriteFile(copyPath, edited, 0o600); err != nil {
		return failf("%v", err)
	}
	bad, err := verify(copyPath)
	if err == nil {
		return failf("an edited journal verified: %s", bad)
	}
	return passf("%s; an edited copy: %s", out, lastError(bad))
}
