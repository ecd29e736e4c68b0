package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lenscap/lenscap/device"
)

func TestParseCommand(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	ok := []struct {
		payload string
		want    Command
	}{
		{`{"id":"a","action":"privacy","video":true,"audio":false}`, Command{ID: "a", Action: ActionPrivacy, Video: yes, Audio: no}},
		{`{"action":"privacy","audio":true}`, Command{Action: ActionPrivacy, Audio: yes}},
		{`{"id":"","action":"privacy","video":null,"audio":true}`, Command{Action: ActionPrivacy, Audio: yes}},
		{`{"id":"s","action":"state","video":true}`, Command{ID: "s", Action: ActionState}}, // a report changes nothing
		{`{"id":"e","action":"privacy","video":true,"exp":1767225600.9}`, Command{ID: "e", Action: ActionPrivacy, Video: yes, Exp: ptr(int64(1767225600))}},
		{` {"id":"u","action":"privacy","video":true,"reason":{"why":["meeting"]}} `, Command{ID: "u", Action: ActionPrivacy, Video: yes}},
	}
	for _, tc := range ok {
		got, err := ParseCommand([]byte(tc.payload), 0)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseCommand(%s) = %+v, %v; want %+v", tc.payload, got, err, tc.want)
		}
	}
	bad := []struct {
		payload, id, code string
	}{
		{`nope`, "", CodeMalformed},
		{`[]`, "", CodeMalformed},
		{`null`, "", CodeMalformed},
		{`{"id":"x","action":"privacy","video":true`, "", CodeMalformed},
		{`{"id":"x","action":"privacy","video":true} {}`, "", CodeMalformed},
		{`{"id":3,"action":"state"}`, "", CodeBadField},
		{`{"id":"` + strings.Repeat("i", MaxIDLength+1) + `","action":"state"}`, "", CodeBadField},
		{`{"id":"x"}`, "x", CodeBadField},
		{`{"id":"x","action":["privacy"]}`, "x", CodeBadField},
		{`{"id":"x","action":"Privacy","video":true}`, "x", CodeUnknownAction},
		{`{"id":"x","action":"privacy"}`, "x", CodeNoKind},
		{`{"id":"x","action":"privacy","video":null}`, "x", CodeNoKind},
		{`{"id":"x","action":"privacy","video":"true"}`, "x", CodeBadField},
		{`{"id":"x","action":"privacy","audio":0}`, "x", CodeBadField},
		{`{"id":"x","action":"privacy","video":true,"exp":"tomorrow"}`, "x", CodeBadField},
		{`{"id":"x","action":"privacy","video":true,"exp":-5}`, "x", CodeBadField},
		{`{"id":"x","action":"privacy","video":true,"exp":1e300}`, "x", CodeBadField},
		{`{"id":"x","action":"privacy","video":true,"pad":"` + strings.Repeat("p", MaxPayload) + `"}`, "x", CodeTooLarge},
	}
	for _, tc := range bad {
		got, err := ParseCommand([]byte(tc.payload), 0)
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Code != tc.code || got != (Command{ID: tc.id}) {
			t.Errorf("ParseCommand(%.80s) = %+v, %v; want id %q and code %s", tc.payload, got, err, tc.id, tc.code)
		}
	}
}

func TestCheckRefusesRetainedAndExpiredCommands(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := Command{ID: "x", Action: ActionPrivacy, Video: ptr(false)}
	if err := c.Check(false, now); err != nil {
		t.Errorf("fresh command: %v", err)
	}
	var ce *CommandError
	if err := c.Check(true, now); !errors.As(err, &ce) || ce.Code != CodeRetained {
		t.Errorf("retained command: %v, want code %s", err, CodeRetained)
	}
	c.Exp = ptr(now.Unix() - 1)
	if err := c.Check(false, now); !errors.As(err, &ce) || ce.Code != CodeExpired {
		t.Errorf("expired command: %v, want code %s", err, CodeExpired)
	}
	c.Exp = ptr(now.Unix())
	if err := c.Check(false, now); err != nil {
		t.Errorf("command expiring this second: %v, want accepted", err)
	}
}

func TestChangeIsARemoteChangeAtArrival(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	c := Command{Action: ActionPrivacy, Video: ptr(true)}
	ch, ok := c.Change(at)
	if !ok || ch.By != device.ByRemote || !ch.At.Equal(at) || ch.Video == nil || !*ch.Video || ch.Audio != nil {
		t.Errorf("Change = %+v, %t", ch, ok)
	}
	if _, ok := (Command{Action: ActionState}).Change(at); ok {
		t.Error("a state command yields a change")
	}
}

// fakeDevice is a Device in memory, counting changes and early gates.
type fakeDevice struct {
	calls atomic.Int64 // changes asked for
	holds atomic.Int64 // early gates taken and not released
	st    device.Status
	err   error
}

func (d *fakeDevice) SetPrivacyBatch(_ context.Context, cs []device.Change) (device.Status, []error) {
	d.calls.Add(int64(len(cs)))
	errs := make([]error, len(cs))
	for i, c := range cs {
		if d.err != nil {
			errs[i] = d.err
			continue
		}
		if c.Video != nil {
			d.st.Video.Private = *c.Video
		}
		if c.Audio != nil {
			d.st.Audio.Private = *c.Audio
		}
		d.st.Seq++
	}
	return d.st, errs
}

func (d *fakeDevice) Hold(time.Time, ...device.Kind) func() {
	d.holds.Add(1)
	var once sync.Once
	return func() { once.Do(func() { d.holds.Add(-1) }) }
}

func (d *fakeDevice) Status() device.Status { return d.st }

// handle applies one command as a batch of one, as it arrives now, and returns its ack.
func (c *Client) handle(ctx context.Context, payload string) (*Ack, bool) {
	in := c.arrival(topics.Cmd(c.cfg.ID), []byte(payload), false, time.Now(), func() {})
	acks, done := c.applyBatch(ctx, []inbound{in})
	if !done {
		return nil, false
	}
	return acks[0], true
}

// newTestClient is a client that is not run: handle is called directly.
func newTestClient(t testing.TB, dev Device, dir string) *Client {
	t.Helper()
	c, err := New(Config{BrokerURL: "mqtt://127.0.0.1:1", ID: "cam-1", Device: dev, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	path := ""
	if dir != "" {
		path = dir + "/" + RecordFile
	}
	c.rec, err = loadRecord(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func FuzzParseCommand(f *testing.F) {
	f.Add([]byte(`{"id":"c-1","action":"privacy","video":true}`))
	f.Add([]byte(`{"id":"c-2","action":"state"}`))
	codes := []string{CodeMalformed, CodeTooLarge, CodeBadField, CodeUnknownAction, CodeNoKind}
	dev := &fakeDevice{}
	c := newTestClient(f, dev, "")
	f.Fuzz(func(t *testing.T, payload []byte) {
		cmd, err := ParseCommand(payload, 0)
		if err != nil {
			var ce *CommandError
			if !errors.As(err, &ce) || !slices.Contains(codes, ce.Code) || ce.Msg == "" {
				t.Fatalf("error %v: want a *CommandError with a known code", err)
			}
			if cmd != (Command{ID: cmd.ID}) {
				t.Fatalf("a parse error returned a command with more than an id: %+v", cmd)
			}
			if _, ok := cmd.Change(time.Now()); ok {
				t.Fatal("a parse error yields a change")
			}
		} else {
			if cmd.Action != ActionPrivacy && cmd.Action != ActionState {
				t.Fatalf("accepted action %q", cmd.Action)
			}
			if _, ok := cmd.Change(time.Now()); ok != (cmd.Action == ActionPrivacy) {
				t.Fatalf("command %+v: Change ok = %t", cmd, ok)
			}
			if len(cmd.ID) > MaxIDLength {
				t.Fatalf("accepted an id of %d bytes", len(cmd.ID))
			}
			// What was accepted survives a round trip.
			b, err := json.Marshal(cmd)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseCommand(b, 0)
			if err != nil || !reflect.DeepEqual(again, cmd) {
				t.Fatalf("round trip of %+v: %+v, %v", cmd, again, err)
			}
		}

		// The whole handling: a parse error never reaches the device.
		dev.calls.Store(0)
		c.rec, _ = loadRecord("", 0) // every input on a fresh record
		ack, done := c.handle(t.Context(), string(payload))
		if !done {
			t.Fatal("handle did not finish")
		}
		if err != nil {
			if n := dev.calls.Load(); n != 0 {
				t.Fatalf("a payload that does not parse (%v) changed privacy %d times", err, n)
			}
			if (ack != nil) != (cmd.ID != "") || (ack != nil && (ack.OK || ack.ID != cmd.ID)) {
				t.Fatalf("ack %+v for a parse error of a command with id %q", ack, cmd.ID)
			}
		}
	})
}

func TestHandleAcksARepeatedIDWithTheFirstResult(t *testing.T) {
	dir := t.TempDir()
	dev := &fakeDevice{}
	c := newTestClient(t, dev, dir)
	dev.err = device.ErrButtonWins
	first, _ := c.handle(t.Context(), `{"id":"r","action":"privacy","video":false}`)
	if first.OK || first.Code != CodeButtonWins {
		t.Fatalf("first ack %+v, want button_wins", first)
	}
	dev.err = nil
	again, _ := c.handle(t.Context(), `{"id":"r","action":"privacy","video":false}`)
	if again.OK || again.Code != CodeButtonWins || !again.Duplicate || dev.calls.Load() != 1 {
		t.Errorf("repeated ack %+v (calls %d), want the first result, duplicate, not applied", again, dev.calls.Load())
	}
	// A client over the same directory (a restart) remembers it.
	c2 := newTestClient(t, dev, dir)
	again, _ = c2.handle(t.Context(), `{"id":"r","action":"privacy","video":false}`)
	if !again.Duplicate || again.Code != CodeButtonWins || dev.calls.Load() != 1 {
		t.Errorf("after a restart: ack %+v (calls %d), want the first result, not applied", again, dev.calls.Load())
	}
}

func TestHandleDoesNotAckACommandInterruptedByShutdown(t *testing.T) {
	dev := &fakeDevice{err: context.Canceled}
	c := newTestClient(t, dev, "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ack, done := c.handle(ctx, `{"id":"s","action":"privacy","video":true}`)
	if done || ack != nil {
		t.Errorf("handle = %+v, %t; want no ack and not done (redelivered next session)", ack, done)
	}
	if _, seen := c.rec.lookup("s"); seen {
		t.Error("an interrupted command was recorded")
	}
}

func TestACommandsChangeNamesTheCommand(t *testing.T) {
	v := true
	c, ok := Command{ID: "c-42", Action: ActionPrivacy, Video: &v}.Change(time.Now())
	if !ok || c.Who != "mqtt:c-42" || c.By != device.ByRemote {
		t.Errorf("change %+v, want by remote, who mqtt:c-42", c)
	}
	if c, _ := (Command{Action: ActionPrivacy, Video: &v}).Change(time.Now()); c.Who != "mqtt" {
		t.Errorf("without an id: who %q, want mqtt", c.Who)
	}
}
