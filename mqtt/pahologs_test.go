package mqtt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// pahoSTR is paho's component tag of its store (components.go), as its lines begin.
const pahoSTR = "[store]   "

func TestPahoRoutineWarningsAreNotShownAtInfo(t *testing.T) {
	var buf bytes.Buffer
	critical, errs, warn, debug := pahoLoggers(slog.New(slog.NewTextHandler(&buf, nil)))
	warn.Println(pahoSTR, "memorystore del: message", 1, "not found")
	warn.Println(pahoSTR, "memorystore wiped")
	if buf.Len() != 0 {
		t.Errorf("paho's WARN shown at info: %s", buf.String())
	}
	if debug != nil {
		t.Error("paho's DEBUG installed while debug is off")
	}
	errs.Println("[net]     ", "connect got error", "EOF")
	critical.Println("[pinger]  ", "pingresp not received, disconnecting")
	got := buf.String()
	for _, want := range []string{
		`level=WARN msg="connect got error EOF" paho=net`,
		`level=ERROR msg="pingresp not received, disconnecting" paho=pinger`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("logs\n%s\nwant a line with %s", got, want)
		}
	}
}

func TestPahoWarningsAndDebugAreDebug(t *testing.T) {
	var buf bytes.Buffer
	_, _, warn, debug := pahoLoggers(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if debug == nil {
		t.Fatal("paho's DEBUG not installed at debug")
	}
	warn.Println(pahoSTR, "memorystore del: message", 1, "not found")
	debug.Printf("%s %s", "no tag", "here")
	got := buf.String()
	for _, want := range []string{
		`level=DEBUG msg="memorystore del: message 1 not found" paho=store`,
		`level=DEBUG msg="no tag here"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("logs\n%s\nwant a line with %s", got, want)
		}
	}
}
