package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/cmd/internal/auth"
	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/mqtt"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// ctl runs lenscapctl with args and the environment m.
func ctl(t *testing.T, m map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = runEnv(t.Context(), args, env(m), &out, &errb)
	return out.String(), errb.String(), err
}

// fleet is a broker with a password file and ACL, and cameras (device control planes with
// their mqtt.Client, no media) that can be stopped one by one.
type fleet struct {
	t       *testing.T
	broker  *mqtttest.Broker
	devices map[string]*device.Device
	stops   map[string]func()
}

const fleetACL = `pattern read lenscap/%u/cmd
pattern write lenscap/%u/ack
pattern write lenscap/%u/state
pattern write lenscap/%u/availability
pattern write homeassistant/+/%u/+/config
pattern read lenscap/all/cmd
pattern read lenscap/group/+/cmd

user operator
topic readwrite lenscap/#
`

func startFleet(t *testing.T, groups map[string][]string) *fleet {
	t.Helper()
	users := map[string]string{"operator": "op-secret"}
	for id := range groups {
		users[id] = id + "-secret"
	}
	f := &fleet{t: t, devices: map[string]*device.Device{}, stops: map[string]func(){},
		broker: mqtttest.Start(t, mqtttest.Options{Users: users, ACL: fleetACL})}
	for id, gs := range groups {
		f.start(id, gs)
	}
	// Wait until every device is online, as the operator sees it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, err := ctl(t, f.env(), "list", "--json")
		if err == nil && strings.Count(out, `"availability":"online"`) == len(groups) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet not online: %s %v", out, err)
		}
	}
	return f
}

func (f *fleet) start(id string, groups []string) {
	dir := f.t.TempDir()
	dev, err := device.New(device.Config{Store: device.NewStore(dir)})
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := mqtt.New(mqtt.Config{BrokerURL: f.broker.URL(id, id+"-secret"), ID: id, Groups: groups, Device: dev,
		StoreDir: dir, RetryInterval: 50 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
	if err != nil {
		f.t.Fatal(err)
	}
	dev.Watch(func(device.Status) { c.StateChanged() })
	dctx, stopDev := context.WithCancel(context.Background())
	cctx, stopClient := context.WithCancel(context.Background())
	devDone, clientDone := make(chan error, 1), make(chan error, 1)
	go func() { devDone <- dev.Run(dctx) }()
	go func() { clientDone <- c.Run(cctx) }()
	<-dev.Ready()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		stopClient()
		<-clientDone
		stopDev()
		<-devDone
	}
	f.t.Cleanup(stop)
	f.devices[id], f.stops[id] = dev, stop
}

func (f *fleet) env() map[string]string {
	return map[string]string{"LENSCAP_MQTT": f.broker.URL("operator", "op-secret"), "LENSCAP_TIMEOUT": "3s"}
}

func TestPrivacyOnAllIsAckedByEveryDevice(t *testing.T) {
	t.Parallel()
	f := startFleet(t, map[string][]string{"cam-1": {"hall"}, "cam-2": {"hall"}, "cam-3": nil})
	out, stderr, err := ctl(t, f.env(), "privacy", "on", "--all")
	if err != nil {
		t.Fatalf("privacy on --all: %v\n%s%s", err, out, stderr)
	}
	for _, id := range []string{"cam-1", "cam-2", "cam-3"} {
		if !strings.Contains(out, id) || !f.devices[id].Status().Video.Private || !f.devices[id].Status().Audio.Private {
			t.Errorf("%s: not in the output or not private:\n%s", id, out)
		}
	}
	if !strings.Contains(out, "3 ok, 0 refused, 0 silent") || !strings.Contains(stderr, "3/3") {
		t.Errorf("output:\n%s\nstderr:\n%s", out, stderr)
	}
}

func TestPrivacyOffOnAGroupReportsTheButtonsRefusal(t *testing.T) {
	t.Parallel()
	f := startFleet(t, map[string][]string{"cam-1": {"hall"}, "cam-2": {"hall"}, "cam-3": nil})
	if _, _, err := ctl(t, f.env(), "privacy", "on", "--video", "--all"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.devices["cam-2"].PressButton(t.Context(), time.Now()); err != nil { // the button takes over
		t.Fatal(err)
	}
	out, _, err := ctl(t, f.env(), "--timeout", "3s", "privacy", "off", "--video", "--group", "hall")
	if !errors.Is(err, errNotAllOK) {
		t.Errorf("err = %v, want %v", err, errNotAllOK)
	}
	if !strings.Contains(out, "cam-1") || !strings.Contains(out, "cam-2") || strings.Contains(out, "cam-3") {
		t.Errorf("the group's devices are cam-1 and cam-2:\n%s", out)
	}
	if !strings.Contains(out, "refused") || !strings.Contains(out, mqtt.CodeButtonWins) || !strings.Contains(out, "1 ok, 1 refused, 0 silent") {
		t.Errorf("output does not show cam-2's refusal:\n%s", out)
	}
	if f.devices["cam-1"].Status().Video.Private || !f.devices["cam-2"].Status().Video.Private || !f.devices["cam-3"].Status().Video.Private {
		t.Error("the command changed the wrong devices")
	}
}

func TestPrivacyReportsSilentOfflineDevices(t *testing.T) {
	t.Parallel()
	f := startFleet(t, map[string][]string{"cam-1": nil, "cam-2": nil})
	f.stops["cam-2"]() // cleanly: "offline" retained, its session kept
	out, _, err := ctl(t, map[string]string{"LENSCAP_MQTT": f.broker.URL("operator", "op-secret")},
		"privacy", "on", "--audio", "--all", "--timeout", "500ms")
	if !errors.Is(err, errNotAllOK) || !strings.Contains(out, "silent") || !strings.Contains(out, "offline") ||
		!strings.Contains(out, "1 ok, 0 refused, 1 silent") {
		t.Errorf("err %v, output:\n%s", err, out)
	}
	if !f.devices["cam-1"].Status().Audio.Private || f.devices["cam-1"].Status().Video.Private {
		t.Error("cam-1: want audio private only")
	}
	// A device never seen: silent, unknown.
	out, _, err = ctl(t, f.env(), "privacy", "on", "--device", "cam-9", "--timeout", "300ms")
	if !errors.Is(err, errNotAllOK) || !strings.Contains(out, "unknown") {
		t.Errorf("unknown device: err %v, output:\n%s", err, out)
	}
}

func TestStateAndList(t *testing.T) {
	t.Parallel()
	f := startFleet(t, map[string][]string{"cam-1": {"hall", "yard"}, "cam-2": nil})
	if _, _, err := ctl(t, f.env(), "privacy", "on", "--device", "cam-1"); err != nil {
		t.Fatal(err)
	}
	out, _, err := ctl(t, f.env(), "state", "--device", "cam-1")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		ID           string `json:"id"`
		Availability string `json:"availability"`
		Video        struct{ Private bool }
		Groups       []string
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.ID != "cam-1" || st.Availability != "online" || !st.Video.Private || len(st.Groups) != 2 {
		t.Errorf("state --device cam-1: %+v, %v:\n%s", st, err, out)
	}
	out, _, err = ctl(t, f.env(), "state")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"id":"cam-2"`) {
		t.Errorf("state: %v:\n%s", err, out)
	}
	if _, _, err := ctl(t, f.env(), "state", "--device", "cam-9"); err == nil {
		t.Error("state of an unknown device: no error")
	}
	out, _, err = ctl(t, f.env(), "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "cam-1") || !strings.Contains(lines[1], "private(remote)") ||
		!strings.Contains(lines[1], "hall,yard") || !strings.Contains(lines[2], "cam-2") || !strings.Contains(lines[2], "online") {
		t.Errorf("list:\n%s", out)
	}
}

func TestArgumentsAndConfiguration(t *testing.T) {
	bad := [][]string{
		{},
		{"reboot"},
		{"privacy"},
		{"privacy", "maybe", "--all"},
		{"privacy", "on"},
		{"privacy", "on", "--all", "--device", "cam-1"},
		{"privacy", "on", "--device", "all"},
		{"privacy", "on", "--group", "a/b"},
		{"list", "--video"},
		{"state", "--group", "g"},
		{"list", "extra"},
		{"--timeout", "0s", "list"},
		{"--mqtt", "http://x", "list"},
		{"--topic-prefix", "a/#", "list"},
	}
	for _, args := range bad {
		if _, err := parseArgs(args, env(nil)); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	if _, err := parseArgs([]string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "usage:") {
		t.Errorf("-h: %v", err)
	}

	// Flags before or after the command; flags over the environment over the file.
	file := filepath.Join(t.TempDir(), "ctl.yaml")
	os.WriteFile(file, []byte("mqtt: mqtt://file:1883\ntopic_prefix: site\ntimeout: 2s\nboard: sim\nid: cam-1\n"), 0o600)
	inv, err := parseArgs([]string{"--config", file, "privacy", "off", "--video", "--group", "hall", "--expire", "1m"},
		env(map[string]string{"LENSCAP_TOPIC_PREFIX": "env"}))
	if err != nil {
		t.Fatal(err)
	}
	if inv.cfg.MQTT != "mqtt://file:1883" || inv.cfg.TopicPrefix != "env" || inv.cfg.Timeout != 2*time.Second ||
		inv.command != "privacy" || inv.args[0] != "off" || !inv.video || inv.audio || inv.group != "hall" || inv.expire != time.Minute {
		t.Errorf("parsed %+v", inv)
	}
	inv, err = parseArgs([]string{"list", "--mqtt", "mqtt://flag:1"}, env(map[string]string{"LENSCAP_MQTT": "mqtt://env:1", "LENSCAP_CONFIG": file}))
	if err != nil || inv.cfg.MQTT != "mqtt://flag:1" || inv.cfg.TopicPrefix != "site" {
		t.Errorf("list: %+v, %v", inv, err)
	}
	inv, _ = parseArgs([]string{"list"}, env(nil))
	if inv.cfg.MQTT != defaultBroker || inv.cfg.Timeout != 5*time.Second || inv.cfg.TopicPrefix != "lenscap" {
		t.Errorf("defaults: %+v", inv.cfg)
	}
}

func TestUnreachableBrokerIsAnErrorWithoutThePassword(t *testing.T) {
	_, _, err := ctl(t, nil, "--mqtt", fmt.Sprintf("mqtt://op:hunter2@127.0.0.1:%d", 1), "--timeout", "1s", "list")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("err = %v, want an error that does not show the password", err)
	}
}

func TestVersionFlagReturnsTheVersion(t *testing.T) {
	_, err := parseArgs([]string{"--version"}, env(nil))
	if !errors.Is(err, flag.ErrHelp) || err.Error() != "lenscapctl "+version {
		t.Errorf("--version: %v", err)
	}
}

func TestConfigFileOfLenscapServesLenscapctl(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lenscap.yaml")
	os.WriteFile(file, []byte("board: auto\nmqtt: mqtts://cam-1:pw@broker\ngroups: [hall, indoor]\nbutton_kinds: [video]\n"+
		"remote_may_lift: false\nbutton_debounce: 30ms\ntopic_prefix: site/cams\n"), 0o600)
	inv, err := parseArgs([]string{"--config", file, "list"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if inv.cfg.MQTT != "mqtts://cam-1:pw@broker" || inv.cfg.TopicPrefix != "site/cams" {
		t.Errorf("config %+v", inv.cfg)
	}
	// Its own keys are still checked.
	os.WriteFile(file, []byte("board: auto\ntimeout: soon\n"), 0o600)
	if _, err := parseArgs([]string{"--config", file, "list"}, env(nil)); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("a bad timeout in the file: %v", err)
	}
}

func TestAFleetKeyGrantsAViewerAccessToItsCameras(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "fleet.key")
	var pub bytes.Buffer
	if err := runEnv(context.Background(), []string{"token", "keygen", "--out", keyFile}, env(nil), &pub, io.Discard); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, %v", fi, err)
	}
	if err := runEnv(context.Background(), []string{"token", "keygen", "--out", keyFile}, env(nil), io.Discard, io.Discard); err == nil {
		t.Error("keygen replaced an existing key")
	}
	pubFile := filepath.Join(dir, "fleet.pub")
	if err := os.WriteFile(pubFile, pub.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var tok bytes.Buffer
	args := []string{"token", "create", "--key", keyFile, "--name", "grandma", "--role", "view", "--ttl", "1h", "--aud", "group:hall"}
	if err := runEnv(context.Background(), args, env(nil), &tok, io.Discard); err != nil {
		t.Fatal(err)
	}
	keys, err := auth.ReadPublicKeys([]string{pubFile})
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewVerifier(auth.VerifierConfig{Keys: keys, ID: "cam-7", Groups: []string{"hall"}})
	if id, err := v.Verify(strings.TrimSpace(tok.String())); err != nil || id.Name != "grandma" || id.Role != auth.RoleView {
		t.Errorf("a camera of the hall: %+v, %v", id, err)
	}
	other := auth.NewVerifier(auth.VerifierConfig{Keys: keys, ID: "cam-8", Groups: []string{"yard"}})
	if _, err := other.Verify(strings.TrimSpace(tok.String())); err == nil {
		t.Error("a camera outside the group accepted the token")
	}
	for _, bad := range [][]string{
		{"token", "create", "--key", keyFile, "--name", "x", "--role", "admin", "--aud", "cam-1"},
		{"token", "create", "--key", keyFile, "--name", "x", "--ttl", "9000h", "--aud", "cam-1"},
		{"token", "create", "--key", keyFile, "--name", "x"},
		{"token", "rotate"},
	} {
		if err := runEnv(context.Background(), bad, env(nil), io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
