package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// runHelp runs lenscap with args and returns the text of the help (or version) it returns.
func runHelp(t *testing.T, args ...string) string {
	t.Helper()
	err := run(t.Context(), args, env(nil), nil, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("%q: err = %v, want one that wraps flag.ErrHelp", args, err)
	}
	return err.Error()
}

func TestVersionFlagReturnsTheVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version"} {
		if got := runHelp(t, arg); got != "lenscap "+version {
			t.Errorf("%s: %q, want %q", arg, got, "lenscap "+version)
		}
	}
}

func TestHelpListsTheSubcommandsAndTheFlags(t *testing.T) {
	text := runHelp(t, "-h")
	for _, want := range []string{"usage: lenscap [flags]", "-listen", "-version", "LENSCAP_STATE_DIR"} {
		if !strings.Contains(text, want) {
			t.Errorf("lenscap -h lacks %q:\n%s", want, text)
		}
	}
	for _, sc := range subcommands() {
		if !strings.Contains(text, "  "+sc.name+" ") || !strings.Contains(text, sc.summary) {
			t.Errorf("lenscap -h lacks the subcommand %s:\n%s", sc.name, text)
		}
	}
}

func TestDoctorHelpIsTheDoctorsOwn(t *testing.T) {
	text := runHelp(t, "doctor", "-h")
	for _, want := range []string{"usage: lenscap doctor [flags]", "missing", "-board", "-config"} {
		if !strings.Contains(text, want) {
			t.Errorf("lenscap doctor -h lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "sim-fleet") {
		t.Errorf("lenscap doctor -h shows the daemon's help:\n%s", text)
	}
}

func TestSimFleetHelpIsItsOwn(t *testing.T) {
	text := runHelp(t, "sim-fleet", "--help")
	for _, want := range []string{"usage: lenscap sim-fleet [flags]", "-devices", "-id-prefix"} {
		if !strings.Contains(text, want) {
			t.Errorf("lenscap sim-fleet -h lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "help requested") {
		t.Errorf("the help begins with the flag package's error:\n%s", text)
	}
}

func TestSubcommandFlagErrorsAreNotHelp(t *testing.T) {
	for _, args := range [][]string{{"sim-fleet", "--no-such-flag"}, {"sim-fleet", "extra"}, {"doctor", "--no-such-flag"}} {
		err := run(t.Context(), args, env(nil), nil, io.Discard)
		if err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: err = %v, want an error that is not help", args, err)
		}
	}
}
