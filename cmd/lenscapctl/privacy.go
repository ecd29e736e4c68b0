package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	var topic, ackFilter string
	switch {
	case inv.device != "":
		topic, ackFilter = s.topics.Cmd(inv.device), s.topics.Ack(inv.device)
		err = s.loadRetained(ctx, cfg.Timeout, inv.device, ackFilter)
	case inv.group != "":
		topic, ackFilter = s.topics.GroupCmd(inv.group), s.topics.Every("ack")
		err = s.loadRetained(ctx, cfg.Timeout, "", ackFilter)
	default:
		topic, ackFilter = s.topics.AllCmd(), s.topics.Every("ack")
		err = s.loadRetained(ctx, cfg.Timeout, "", ackFilter)
	}
	if err != nil {
		return err
	}
	expected := map[string]known{}
	for _, d := range s.snapshot() {
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

	private := inv.args[0] == "on"
	cmd := mqtt.Command{ID: fmt.Sprintf("ctl-%d-%s", time.Now().UnixMilli(), randomHex(3)), Action: mqtt.ActionPrivacy}
	if inv.video || !inv.audio {
		cmd.Video = &private
	}
	if inv.audio || !inv.video {
		cmd.Audio = &private
	}
	if inv.expire > 0 {
		exp := time.Now().Add(inv.expire + time.Second - 1).Unix()
		cmd.Exp = &exp
	}
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

	start := time.Now()
	progress := func() { // with s.mu held
		got := 0
		for id := range expected {
			if _, ok := s.acks[id]; ok {
				got++
			}
		}
		fmt.Fprintf(stderr, "\rwaiting for acks of %s: %d/%d (%.1fs)", cmd.ID, got, len(expected), time.Since(start).Seconds())
	}
	s.waitUntil(ctx, cfg.Timeout, func() bool {
		if len(expected) == 0 {
			return false // anyone may answer: wait the whole timeout
		}
		for id := range expected {
			if _, ok := s.acks[id]; !ok {
				return false
			}
		}
		return true
	}, progress)
	fmt.Fprintln(stderr)
	if err := ctx.Err(); err != nil {
		return err
	}
	return report(s, expected, cfg.Timeout, stdout)
}

// report prints one line per device (expected or that acked anyway) and fails unless every
// one acked ok.
func report(s *session, expected map[string]known, timeout time.Duration, stdout io.Writer) error {
	s.mu.Lock()
	acks := make(map[string]mqtt.Ack, len(s.acks))
	for id, a := range s.acks {
		acks[id] = a
	}
	s.mu.Unlock()
	ids := make([]string, 0, len(expected)+len(acks))
	for id := range expected {
		ids = append(ids, id)
	}
	for id := range acks {
		if _, ok := expected[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)

	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEVICE\tRESULT\tDETAIL")
	var ok, refused, silent int
	for _, id := range ids {
		a, acked := acks[id]
		switch {
		case !acked:
			silent++
			detail := fmt.Sprintf("no ack within %s", timeout)
			if d := expected[id]; d.Availability == mqtt.Offline {
				detail += " (offline: the command waits in its session)"
			} else if d.Availability == "" && d.State == nil {
				detail += " (unknown to the broker)"
			}
			fmt.Fprintf(w, "%s\tsilent\t%s\n", id, detail)
		case a.OK:
			ok++
			detail := describeState(a.State)
			if a.Duplicate {
				detail += " (command seen before)"
			}
			fmt.Fprintf(w, "%s\tok\t%s\n", id, detail)
		default:
			refused++
			fmt.Fprintf(w, "%s\trefused\t%s: %s\n", id, a.Code, a.Error)
		}
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d ok, %d refused, %d silent\n", ok, refused, silent)
	if refused+silent > 0 || ok == 0 {
		return fmt.Errorf("%w: %d ok, %d refused, %d silent", errNotAllOK, ok, refused, silent)
	}
	return nil
}

// describeState summarises a state: "video=private(button) audio=live viewers=2".
func describeState(raw json.RawMessage) string {
	var st struct {
		Video   *kindJSON `json:"video"`
		Audio   *kindJSON `json:"audio"`
		Viewers *int      `json:"viewers"`
	}
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
