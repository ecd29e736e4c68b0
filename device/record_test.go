package device_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lenscap/lenscap/device"
	"github.com/lenscap/lenscap/device/journal"
)

func TestEveryPrivacyChangeAndRefusalIsInTheJournal(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{dir: dir, journal: j})
	r.press() // cut, by the button
	if _, err := r.dev.SetPrivacy(context.Background(), device.Change{Video: ptr(false), By: device.ByRemote, Who: "grandma"}); !errors.Is(err, device.ErrButtonWins) {
		t.Fatalf("remote lift of the button's privacy: %v", err)
	}
	r.press() // lift
	r.set(device.Change{Audio: ptr(true), By: device.ByRemote, Who: "mqtt:c-7"})
	r.stop()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Since(0, 0); err == nil {
		t.Fatal("Since after Close: no error")
	}
	rep, err := journal.Verify(dir, j.PublicKey())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	j2, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	entries, err := j2.Since(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.Event == journal.EventCheckpoint {
			continue
		}
		got = append(got, e.Event+" "+strings.Join(e.Kinds, ",")+" "+e.By+" "+e.Who)
	}
	want := []string{
		"boot   ",
		"cut video,audio button ",
		"refused video remote grandma",
		"lift video,audio button ",
		"cut audio remote mqtt:c-7",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Checkpoints == 0 {
		t.Errorf("no signed checkpoint at close: %+v", rep)
	}
}

func TestAnEditedJournalLineIsFound(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{dir: dir, journal: j})
	r.press()
	r.stop()
	j.Close()
	path := filepath.Join(dir, journal.FileName)
	b, _ := os.ReadFile(path)
	edited := strings.Replace(string(b), `"by":"button"`, `"by":"remote"`, 1) // blame someone else
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := journal.Verify(dir, j.PublicKey()); !errors.Is(err, journal.ErrBroken) {
		t.Errorf("verify of an edited journal: %v, want ErrBroken", err)
	}
}
