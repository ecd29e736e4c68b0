package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lenscap/lenscap/mqtt"
)

// runPrivacy publishes a privacy command and reports each device's ack.
func runPrivacy(ctx context.Context, inv *invocation, stdout, stderr io.Writer) error {
	cfg := inv.cfg
	s, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.close()

	// The devices expected to answer: from the broker's retained states, subscribed to
	// together with the acks (so that no ack is missed).
	topic, ackFilter, only := s.topics.AllCmd(), s.topics.Every("ack"), ""
	switch {
	case inv.device != "":
		topic, ackFilter, only = s.topics.Cmd(inv.device), s.topics.Ack(inv.device), inv.device
	case inv.group != "":
		topic = s.topics.GroupCmd(inv.group)
	}
	if err := s.loadRetained(ctx, cfg.Timeout, only, ackFilter); err != nil {
		return err
	}
	expected := expectedDevices(s.snapshot(), inv)

	cmd := privacyCommand(inv, time.Now())
	payload, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.want = cmd.ID
	s.mu.Unlock()
	if err := s.publish(ctx, cfg.Timeout, topic, payload); err != nil {
		return err
	}
	if len(expected) == 0 {
		fmt.Fprintf(stderr, "no device known on %s (no retained state): waiting %s for acks\n", topic, cfg.Timeout)
	}
	awaitAcks(ctx, s, cmd.ID, expected, cfg.Timeout, stderr)
	if err := ctx.Err(); err != nil {
		return err
	}
	return report(s, expected, cfg.Timeout, stdout)
}

// expectedDevices are the devices of devices that inv addresses, and the device it names
// even when the broker does not know it.
func expectedDevices(devices []known, inv *invocation) map[string]known {
	expected := map[string]known{}
	for _, d := range devices {
		switch {
		case inv.device != "" && d.ID == inv.device,
			inv.group != "" && slices.Contains(d.Groups, inv.group),
			inv.all && (d.State != nil || d.Availability != ""):
			expected[d.ID] = d
		}
	}
	if inv.device != "" {
		if _, ok := expected[inv.device]; !ok {
			expected[inv.device] = known{ID: inv.device}
		}
	}
	return expected
}

// privacyCommand is the command of `privacy on|off`, made at now.
func privacyCommand(inv *invocation, now time.Time) mqtt.Command {
	private := inv.args[0] == "on"
	cmd := mqtt.Command{ID: fmt.Sprintf("ctl-%d-%s", now.UnixMilli(), randomHex(3)), Action: mqtt.ActionPrivacy}
	if inv.video || !inv.audio {
		cmd.Video = &private
	}
	if inv.audio || !inv.video {
		cmd.Audio = &private
	}
	if inv.expire > 0 {
		exp := now.Add(inv.expire + time.Second - 1).Unix()
		cmd.Exp = &exp
	}
	return cmd
}

// awaitAcks waits until every expected device acked command id (with none expected, the
// whole timeout), showing the progress on stderr.
func awaitAcks(ctx context.Context, s *session, id string, expected map[string]known, timeout time.Duration, stderr io.Writer) {
	start := time.Now()
	acked := func() int { // with s.mu held
		got := 0
		for id := range expected {
			if _, ok := s.acks[id]; ok {
				got++
			}
		}
		return got
	}
	progress := func() {
		fmt.Fprintf(stderr, "\rwaiting for acks of %s: %d/%d (%.1fs)", id, acked(), len(expected), time.Since(start).Seconds())
	}
	s.waitUntil(ctx, timeout, func() bool {
		return len(expected) > 0 && acked() == len(expected) // none expected: anyone may answer
	}, progress)
	fmt.Fprintln(stderr)
}

// report prints one line per device (expected or that acked anyway) and fails unless every
// one acked ok.
func report(s *session, expected map[string]known, timeout time.Duration, stdout io.Writer) error {
	s.mu.Lock()
	acks := maps.Clone(s.acks)
	s.mu.Unlock()
	ids := slices.Collect(maps.Keys(expected))
	for id := range acks {
		if _, ok := expected[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)

	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEVICE\tRESULT\tDETAIL")
	count := map[string]int{}
	for _, id := range ids {
		a, acked := acks[id]
		result, detail := ackResult(a, acked, expected[id], timeout)
		count[result]++
		fmt.Fprintf(w, "%s\t%s\t%s\n", id, result, detail)
	}
	w.Flush()
	ok, refused, silent := count["ok"], count["refused"], count["silent"]
	fmt.Fprintf(stdout, "%d ok, %d refused, %d silent\n", ok, refused, silent)
	if refused+silent > 0 || ok == 0 {
		return fmt.Errorf("%w: %d ok, %d refused, %d silent", errNotAllOK, ok, refused, silent)
	}
	return nil
}

// ackResult is a device's line in the report: "ok", "refused" or "silent", and the detail.
func ackResult(a mqtt.Ack, acked bool, d known, timeout time.Duration) (result, detail string) {
	switch {
	case !acked:
		detail = fmt.Sprintf("no ack within %s", timeout)
		if d.Availability == mqtt.Offline {
			detail += " (offline: the command waits in its session)"
		} else if d.Availability == "" && d.State == nil {
			detail += " (unknown to the broker)"
		}
		return "silent", detail
	case a.OK:
		detail = describeState(a.State)
		if a.Duplicate {
			detail += " (command seen before)"
		}
		return "ok", detail
	}
	return "refused", fmt.Sprintf("%s: %s", a.Code, a.Error)
}

// describeState summarises a state: "video=private(button) audio=live viewers=2".
func describeState(raw json.RawMessage) string {
	var st stateFields
	if json.Unmarshal(raw, &st) != nil {
		return ""
	}
	var parts []string
	for _, k := range []struct {
		name string
		ks   *kindJSON
	}{{"video", st.Video}, {"audio", st.Audio}} {
		if k.ks != nil {
			parts = append(parts, k.name+"="+k.ks.String())
		}
	}
	if st.Viewers != nil {
		parts = append(parts, fmt.Sprintf("viewers=%d", *st.Viewers))
	}
	return strings.Join(parts, " ")
}

// stateFields are the parts of a device's state (GET /api/state, the retained state) that
// lenscapctl shows.
type stateFields struct {
	Video   *kindJSON `json:"video"`
	Audio   *kindJSON `json:"audio"`
	Viewers *int      `json:"viewers"`
	Seq     *uint64   `json:"seq"`
}

// kindJSON is the state of one kind of media.
type kindJSON struct {
	Private bool   `json:"private"`
	By      string `json:"by"`
	Live    *bool  `json:"live"`
	Error   string `json:"error"`
}

func (k kindJSON) String() string {
	switch {
	case k.Private && k.By != "":
		return "private(" + k.By + ")"
	case k.Private:
		return "private"
	case k.Live != nil && !*k.Live && k.Error != "":
		return "failed(" + k.Error + ")"
	case k.Live != nil && !*k.Live:
		return "not-live"
	}
	return "live"
}
