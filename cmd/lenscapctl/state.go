package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// runState prints the retained state of one device (indented JSON, or one line with --json)
// or of every device (one JSON object per line), each with its availability.
func runState(ctx context.Context, inv *invocation, stdout io.Writer) error {
	s, err := connect(ctx, inv.cfg)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.loadRetained(ctx, inv.cfg.Timeout, inv.device); err != nil {
		return err
	}
	devices := s.snapshot()
	if inv.device != "" {
		for _, d := range devices {
			if d.ID == inv.device && d.State != nil {
				return printState(stdout, d, !inv.json)
			}
		}
		return fmt.Errorf("no retained state for %s on the broker (never connected, another broker or topic prefix?)", inv.device)
	}
	for _, d := range devices {
		if err := printState(stdout, d, false); err != nil {
			return err
		}
	}
	return nil
}

// printState prints a device's state with its availability merged in.
func printState(w io.Writer, d known, indent bool) error {
	fields := map[string]json.RawMessage{}
	if d.State != nil {
		if err := json.Unmarshal(d.State, &fields); err != nil {
			fields = map[string]json.RawMessage{"state": d.State}
		}
	}
	fields["id"], _ = json.Marshal(d.ID)
	fields["availability"], _ = json.Marshal(d.Availability)
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(fields, "", "  ")
	} else {
		b, err = json.Marshal(fields)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// runList prints the devices known to the broker (by their retained availability or state).
func runList(ctx context.Context, inv *invocation, stdout io.Writer) error {
	s, err := connect(ctx, inv.cfg)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.loadRetained(ctx, inv.cfg.Timeout, ""); err != nil {
		return err
	}
	if inv.json {
		return listJSON(s.snapshot(), stdout)
	}
	listTable(s.snapshot(), stdout)
	return nil
}

// listJSON prints one JSON object per device.
func listJSON(devices []known, stdout io.Writer) error {
	for _, d := range devices {
		var st stateFields
		_ = json.Unmarshal(d.State, &st)
		b, err := json.Marshal(struct {
			ID           string   `json:"id"`
			Availability string   `json:"availability"`
			Groups       []string `json:"groups"`
			Video        string   `json:"video,omitempty"`
			Audio        string   `json:"audio,omitempty"`
			Viewers      *int     `json:"viewers,omitempty"`
			Seq          *uint64  `json:"seq,omitempty"`
		}{d.ID, d.Availability, d.Groups, kindText(st.Video), kindText(st.Audio), st.Viewers, st.Seq})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	}
	return nil
}

// listTable prints a table of the devices and their number.
func listTable(devices []known, stdout io.Writer) {
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEVICE\tAVAILABILITY\tVIDEO\tAUDIO\tVIEWERS\tGROUPS")
	for _, d := range devices {
		var st stateFields
		_ = json.Unmarshal(d.State, &st)
		viewers := "-"
		if st.Viewers != nil {
			viewers = fmt.Sprint(*st.Viewers)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, orDash(d.Availability), orDash(kindText(st.Video)),
			orDash(kindText(st.Audio)), viewers, orDash(strings.Join(d.Groups, ",")))
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d devices\n", len(devices))
}

func kindText(k *kindJSON) string {
	if k == nil {
		return ""
	}
	return k.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
