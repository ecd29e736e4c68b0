package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lenscap/lenscap/mqtt/mqtttest"
	"github.com/pion/webrtc/v4"
)

func TestViewArguments(t *testing.T) {
	e := env(map[string]string{"LENSCAP_MQTT": "mqtt://alice:pw@127.0.0.1:1883", envViewToken: "tok-from-env"})
	inv, isView, err := parseView([]string{"--timeout", "2s", "view", "--device", "cam-1", "--for", "3s", "--json", "--relay",
		"--ice-ip", "127.0.0.1/8,10.0.0.1"}, e)
	if err != nil || !isView {
		t.Fatalf("view: %v %v", isView, err)
	}
	if inv.device != "cam-1" || inv.duration != 3*time.Second || !inv.json || !inv.relay || inv.account != "alice" ||
		inv.token != "tok-from-env" || len(inv.nets) != 2 || inv.cfg.Timeout != 2*time.Second || inv.cfg.TopicPrefix != "lenscap" {
		t.Errorf("parsed %+v", inv)
	}
	for _, other := range [][]string{{"list"}, {"--device", "cam-1", "state"}, {"privacy", "on", "--all"}, {}, {"-h"}, {"--version"}} {
		if _, isView, _ := parseView(other, e); isView {
			t.Errorf("%q: taken for view", other)
		}
	}
	bad := map[string][]string{
		"--device":    {"view"},
		"all":         {"view", "--device", "all"},
		"--for":       {"view", "--device", "cam-1", "--for", "-1s"},
		"unexpected":  {"view", "--device", "cam-1", "extra"},
		"-video":      {"view", "--device", "cam-1", "--video"},
		"--ice-ip":    {"view", "--device", "cam-1", "--ice-ip", "nowhere"},
		"not both":    {"view", "--device", "cam-1", "--token", "a", "--token-file", "b"},
		"topic":       {"view", "--device", "cam-1", "--topic-prefix", "a/#"},
		"--account":   {"view", "--device", "cam-1", "--account", "a/b"},
		"--token-fil": {"view", "--device", "cam-1", "--token-file", filepath.Join(t.TempDir(), "none")},
	}
	for want, args := range bad {
		if _, isView, err := parseView(args, e); !isView || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: isView %v, err %v, want one that says %q", args, isView, err, want)
		}
	}
	// No user in the broker URL: the account must be given.
	noUser := env(map[string]string{"LENSCAP_MQTT": "mqtt://127.0.0.1:1883"})
	if _, _, err := parseView([]string{"view", "--device", "cam-1"}, noUser); err == nil || !strings.Contains(err.Error(), "--account") {
		t.Errorf("no account: %v", err)
	}
	if inv, _, err := parseView([]string{"view", "--device", "cam-1", "--account", "bob.x"}, noUser); err != nil || inv.account != "bob.x" || !inv.noneToken {
		t.Errorf("--account: %+v %v", inv, err)
	}
	// Through runEnv, as main runs it.
	if err := runEnv(t.Context(), []string{"view"}, e, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--device") {
		t.Errorf("runEnv view: %v", err)
	}
}

func TestViewHelpDocumentsEveryEvent(t *testing.T) {
	_, isView, err := parseView([]string{"view", "-h"}, env(nil))
	if !isView || !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("view -h: %v %v", isView, err)
	}
	help := err.Error()
	for _, ev := range []string{"hello", "state", "config", "offer", "ice", "connected", "track", "first-frame", "stats",
		"ended", "error", "bye", "summary", "t_ms", "--token-file", envViewToken, envViewTokenFile, "-relay", "-for", "-mqtt", "-token-file"} {
		if !strings.Contains(help, ev) {
			t.Errorf("view -h does not mention %q", ev)
		}
	}
	if strings.Contains(help, "-video") || strings.Contains(help, "-expire") {
		t.Error("view -h lists another command's flags")
	}
}

func TestViewTokenSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	both := env(map[string]string{envViewToken: "from-env", envViewTokenFile: file})
	cases := []struct {
		flagTok, flagFile string
		getenv            func(string) string
		want              string
	}{
		{"from-flag", "", both, "from-flag"},
		{"", file, env(map[string]string{envViewToken: "from-env"}), "from-file"},
		{"", "", both, "from-env"},
		{"", "", env(map[string]string{envViewTokenFile: file}), "from-file"},
		{"", "", env(nil), ""},
	}
	for _, c := range cases {
		if got, err := viewToken(c.flagTok, c.flagFile, c.getenv); err != nil || got != c.want {
			t.Errorf("%q %q: %q %v, want %q", c.flagTok, c.flagFile, got, err, c.want)
		}
	}
	if _, err := viewToken("", empty, env(nil)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty file: %v", err)
	}
	secret := filepath.Join(dir, "big")
	if err := os.WriteFile(secret, bytes.Repeat([]byte("s3cret"), maxTokenFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := viewToken("", secret, env(nil)); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("an oversized file: %v (must not show its content)", err)
	}
}

func TestViewOutputFormats(t *testing.T) {
	start := time.Now()
	var text, js bytes.Buffer
	for _, p := range []*printer{newPrinter(&text, false, start), newPrinter(&js, true, start)} {
		p.emit("state", "", bare("state", json.RawMessage(`{ "video": {"private": true} }`)))
		p.emit("offer", "", kv("video", "inactive"), kv("audio", "sendonly"), kv("restart", false), kv("n", 2))
		p.emit("first-frame", "video", kv("keyframe", true), kv("after", int64(230)))
		p.emit("error", "", bare("error", "token expired: at 12:00"))
		p.emit("summary", "audio", kv("first-frame-ms", optionalMS{}), kv("first-keyframes", []bool{true, false}),
			kv("servers", []string(nil)))
	}
	wantText := `state {"video":{"private":true}}
offer video=inactive audio=sendonly restart=false n=2
first-frame video keyframe=true after=230
error token expired: at 12:00
summary audio first-frame-ms=-1 first-keyframes=true,false servers=-
`
	if text.String() != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", text.String(), wantText)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("json: %d lines:\n%s", len(lines), js.String())
	}
	var objs []map[string]any
	for _, l := range lines {
		var o map[string]any
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("not JSON: %s: %v", l, err)
		}
		if _, ok := o["t_ms"].(float64); !ok {
			t.Errorf("no t_ms: %s", l)
		}
		objs = append(objs, o)
	}
	if objs[0]["event"] != "state" || objs[0]["state"].(map[string]any)["video"] == nil ||
		objs[1]["video"] != "inactive" || objs[1]["restart"] != false || objs[1]["n"] != 2.0 ||
		objs[2]["kind"] != "video" || objs[2]["keyframe"] != true || objs[3]["error"] != "token expired: at 12:00" ||
		objs[4]["first-frame-ms"] != nil || len(objs[4]["first-keyframes"].([]any)) != 2 {
		t.Errorf("json:\n%s", js.String())
	}
	if !strings.HasPrefix(lines[2], `{"event":"first-frame","kind":"video",`) {
		t.Errorf("json keys out of order: %s", lines[2])
	}
}

// h264 payloads: a STAP-A with SPS and PPS, an IDR fragment's start, a P-slice fragment.
var (
	stapSPS  = []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}
	fuIDR    = []byte{0x7c, 0x85, 0x00}
	fuIDRmid = []byte{0x7c, 0x05, 0x00}
	fuP      = []byte{0x7c, 0x81, 0x00}
)

func TestRecorderCountsFramesKeyframesAndFirstFramesPerTrack(t *testing.T) {
	r := newRecorder()
	t0 := time.Now()
	r.offered("video", true, t0)
	r.offered("video", true, t0.Add(time.Second)) // a renegotiation that changes nothing
	add := r.trackAdded("video", "H264", t0)
	pkt := func(add int, ts uint32, marker bool, pl []byte) (firstFrame, bool) {
		return r.packet("video", add, ts, 1, marker, pl, t0.Add(time.Duration(ts)*time.Millisecond))
	}
	if _, ok := pkt(add, 10, false, stapSPS); ok {
		t.Error("a first frame before its end")
	}
	pkt(add, 10, false, fuIDR)
	ff, ok := pkt(add, 10, true, fuIDRmid)
	if !ok || !ff.key || ff.add != 1 || ff.at.Sub(t0) != 10*time.Millisecond || !ff.offered.Equal(t0) {
		t.Errorf("first frame: %+v %v", ff, ok)
	}
	pkt(add, 20, true, fuP)
	pkt(add, 30, false, fuP) // still open at the end
	// A cut, then a lift: a new track whose first frame is not a keyframe, and has no marker.
	r.offered("video", false, t0.Add(2*time.Second))
	lift := t0.Add(3 * time.Second)
	r.offered("video", true, lift)
	add2 := r.trackAdded("video", "H264", lift)
	if add2 != 2 {
		t.Fatalf("second add is %d", add2)
	}
	pkt(add2, 40, false, fuP)
	if ff, ok := pkt(add2, 50, false, fuIDR); !ok || ff.key || ff.add != 2 || !ff.offered.Equal(lift) {
		t.Errorf("the second track's first frame, complete when the next began: %+v %v", ff, ok)
	}
	if !r.flowing("video") || r.flowing("video") {
		t.Error("flowing: want true once, then false")
	}
	s := r.summary("video", true)
	if s.Packets != 7 || s.Frames != 5 || s.Keyframes != 2 || s.Adds != 2 || len(s.FirstKeyframes) != 2 ||
		!s.FirstKeyframes[0] || s.FirstKeyframes[1] || s.FirstFrame.Sub(t0) != 10*time.Millisecond || s.LastTS != 50 {
		t.Errorf("summary %+v", s)
	}
	// Audio: every packet is a frame.
	a := r.trackAdded("audio", "opus", t0)
	for i := range 3 {
		r.packet("audio", a, uint32(960*i), uint16(i), false, []byte{0xfc}, t0)
	}
	if s := r.summary("audio", false); s.Packets != 3 || s.Frames != 3 || s.Keyframes != 0 || len(s.FirstKeyframes) != 1 {
		t.Errorf("audio %+v", s)
	}
}

func TestRecorderLogIsBounded(t *testing.T) {
	r := newRecorder()
	add := r.trackAdded("audio", "PCMU", time.Now())
	for i := range packetLogSize + 10 {
		r.packet("audio", add, uint32(i), uint16(i), false, nil, time.Now())
	}
	r.mu.Lock()
	n := len(r.kinds["audio"].log)
	r.mu.Unlock()
	if s := r.summary("audio", false); n != packetLogSize || s.LastTS != uint32(packetLogSize+9) || s.Packets != packetLogSize+10 {
		t.Errorf("log %d, summary %+v", n, s)
	}
}

func TestKeyframeDetection(t *testing.T) {
	cases := []struct {
		codec string
		pl    []byte
		want  bool
	}{
		{"H264", stapSPS, true},
		{"H264", fuIDR, true},
		{"H264", fuIDRmid, false},
		{"H264", fuP, false},
		{"H264", []byte{0x65, 0x88}, true},                  // IDR alone
		{"H264", []byte{0x41, 0x9a}, false},                 // P slice alone
		{"VP8", []byte{0x10, 0x00}, true},                   // S, partition 0, P=0
		{"VP8", []byte{0x10, 0x01}, false},                  // an interframe
		{"VP8", []byte{0x90, 0x80, 0x81, 0x02, 0x00}, true}, // X, I with a 2-byte picture id
		{"VP8", []byte{0x00, 0x00}, false},                  // not a partition start
		{"opus", []byte{0x00}, false},
		{"H264", nil, false},
	}
	for _, c := range cases {
		if got := isKeyStart(c.codec, c.pl); got != c.want {
			t.Errorf("%s % x: %v, want %v", c.codec, c.pl, got, c.want)
		}
	}
}

const testOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=sendonly\r\na=rtpmap:96 H264/90000\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=inactive\r\na=rtpmap:111 opus/48000/2\r\n"

func TestParseOfferSaysWhatEachKindSends(t *testing.T) {
	info, err := parseOffer(testOffer)
	if err != nil {
		t.Fatal(err)
	}
	if info.direction("video") != "sendonly" || info.direction("audio") != "inactive" || info.ufrag != "abcd" ||
		len(info.sections) != 2 || info.sections[1].mid != "1" {
		t.Errorf("%+v", info)
	}
	videoOnly, err := parseOffer(strings.Split(testOffer, "m=audio")[0])
	if err != nil || videoOnly.direction("audio") != "absent" {
		t.Errorf("no audio section: %+v %v", videoOnly, err)
	}
	recv, _ := parseOffer(strings.Replace(testOffer, "a=sendonly", "a=recvonly", 1))
	if recv.direction("video") != "inactive" {
		t.Error("a recvonly m-section sends nothing")
	}
	if _, err := parseOffer("not sdp"); err == nil {
		t.Error("not SDP: no error")
	}
}

func TestSessionTopicsFollowTheSignallingContract(t *testing.T) {
	st, err := newSessionTopics("site/cams", "cam-1", "alice", "0123456789abcdef")
	if err != nil || st.viewer != "site/cams/cam-1/session/alice/0123456789abcdef/viewer" ||
		st.camera != "site/cams/cam-1/session/alice/0123456789abcdef/camera" || sessionOf(st.viewer) != "0123456789abcdef" {
		t.Errorf("%+v %v", st, err)
	}
	for _, bad := range [][2]string{{"al+ce", "0123456789abcdef"}, {"alice", "a/b"}, {"", "x"}, {strings.Repeat("a", 65), "x"}} {
		if _, err := newSessionTopics("lenscap", "cam-1", bad[0], bad[1]); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	nets, err := parseNets("127.0.0.1, ::1,10.0.0.0/8")
	if err != nil || len(nets) != 3 || !nets[0].Contains([]byte{127, 0, 0, 1}) || nets[0].Contains([]byte{127, 0, 0, 2}) {
		t.Errorf("nets %v %v", nets, err)
	}
}

// signallingACL is the MQTT signalling contract's ACL (issue 12) for camera cam-1 and viewer
// alice, with the camera's other topics and an operator who sees everything.
const signallingACL = `pattern read lenscap/%u/cmd
pattern write lenscap/%u/ack
pattern write lenscap/%u/state
pattern write lenscap/%u/availability
pattern write homeassistant/+/%u/+/config
pattern read lenscap/all/cmd
pattern read lenscap/group/+/cmd
pattern read lenscap/%u/session/+/+/viewer
pattern write lenscap/%u/session/+/+/camera

user alice
topic write lenscap/cam-1/session/alice/+/viewer
topic read lenscap/cam-1/session/alice/+/camera

user operator
topic readwrite lenscap/#
`

// TestViewWithoutACameraSaysHelloThenByeAndFails checks the viewer's side of the contract on
// a real broker with no camera: it publishes hello with the credential on its own session's
// viewer topic, waits --timeout for an answer, fails with a message that names the camera,
// and says bye.
func TestViewWithoutACameraSaysHelloThenByeAndFails(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"alice": "a-pw", "operator": "op-pw", "cam-1": "c-pw"},
		ACL: signallingACL})
	got := watchTopic(t, b, "lenscap/cam-1/session/+/+/viewer")
	var out, errb bytes.Buffer
	err := runEnv(t.Context(), []string{"view", "--device", "cam-1", "--timeout", "700ms"},
		env(map[string]string{"LENSCAP_MQTT": b.URL("alice", "a-pw"), envViewToken: "view-token-1234567890"}), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "no answer from camera cam-1") {
		t.Errorf("err = %v", err)
	}
	var msgs []string
	for _, what := range []string{"the hello", "the bye"} {
		m := nextMessage(t, got, what)
		parts := strings.Split(m.Topic(), "/")
		if len(parts) != 6 || parts[3] != "alice" || len(parts[4]) != 32 || parts[5] != "viewer" {
			t.Errorf("topic %s", m.Topic())
		}
		msgs = append(msgs, string(m.Payload()))
	}
	if msgs[0] != `{"type":"hello","token":"view-token-1234567890"}` || msgs[1] != byeMessage {
		t.Errorf("messages %q", msgs)
	}
	if !strings.Contains(out.String(), "hello device=cam-1 account=alice session=") || !strings.Contains(out.String(), "error no answer") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestRelayNeedsATURNServerFromTheCamera(t *testing.T) {
	api, err := newViewAPI(nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{inv: &viewInvocation{relay: true}, api: api, ice: []iceServerJSON{{URLs: []string{"stun:127.0.0.1:3478"}}}}
	if err := v.ensurePC(); err == nil || !strings.Contains(err.Error(), "no TURN server") {
		t.Errorf("--relay with STUN only: %v", err)
	}
	v.ice = append(v.ice, iceServerJSON{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "u", Credential: "p"})
	if err := v.ensurePC(); err != nil {
		t.Fatalf("--relay with TURN: %v", err)
	}
	defer v.pc.Close()
	if got := v.pc.GetConfiguration().ICETransportPolicy; got != webrtc.ICETransportPolicyRelay {
		t.Errorf("policy %s, want relay", got)
	}
}

func TestDescribePairNamesTheMostIndirectCandidate(t *testing.T) {
	host := &webrtc.ICECandidate{Typ: webrtc.ICECandidateTypeHost, Address: "127.0.0.1", Port: 5000, Protocol: webrtc.ICEProtocolUDP}
	relay := &webrtc.ICECandidate{Typ: webrtc.ICECandidateTypeRelay, Address: "::1", Port: 6000, Protocol: webrtc.ICEProtocolUDP}
	p := describePair(&webrtc.ICECandidatePair{Local: relay, Remote: host})
	if p.typ != "relay" || p.local != "[::1]:6000" || p.remote != "127.0.0.1:5000" || p.localType != "relay" ||
		p.remoteType != "host" || p.protocol != "udp" {
		t.Errorf("%+v", p)
	}
	if p := describePair(&webrtc.ICECandidatePair{Local: host, Remote: host}); p.typ != "host" {
		t.Errorf("host pair: %+v", p)
	}
	if p := describePair(nil); p.typ != "" {
		t.Errorf("no pair: %+v", p)
	}
}
