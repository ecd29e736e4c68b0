package journal

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLineFormatIsFixed(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	e := cutEntry("owner")
	e.Detail = "x"
	if _, err := j.Append(e); err != nil {
		t.Fatal(err)
	}
	crash(t, j)
	want := `{"seq":1,"time":"2025-05-01T12:00:00.001000001Z","event":"cut","kinds":["video","audio"],` +
		`"by":"button","who":"owner","detail":"x","prev":"` + strings.Repeat("0", 64) + `"}`
	if got := string(readLines(t, filepath.Join(dir, FileName))[0]); got != want {
		t.Errorf("line\n%s\nwant\n%s", got, want)
	}
}

func TestAppendAfterReopenContinuesTheChain(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	appendN(t, j, 3)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, Options{})
	got, err := j.Append(Entry{Event: "lift", Kinds: []string{"audio"}, By: "remote", Who: "cmd-7"})
	if err != nil || got.Seq != 5 {
		t.Fatalf("append after reopen: seq %d, %v; want 5 (after 3 entries and a checkpoint)", got.Seq, err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	if rep.Entries != 6 || rep.FirstSeq != 1 || rep.LastSeq != 6 || rep.Checkpoints != 2 || rep.Unsigned != 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestCheckpointEveryNEntriesAndAtClose(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{CheckpointEvery: 3})
	appendN(t, j, 7) // 1 2 3 cp4 5 6 7 cp8 9
	if cp, ok := j.LatestCheckpoint(); !ok || cp.Seq != 8 || !cp.Valid(j.PublicKey()) {
		t.Errorf("latest checkpoint %+v, %v; want seq 8, valid", cp, ok)
	}
	for range 2 {
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	for _, e := range entries(t, filepath.Join(dir, FileName)) {
		if e.Event == EventCheckpoint {
			seqs = append(seqs, e.Seq)
		}
	}
	if len(seqs) != 3 || seqs[0] != 4 || seqs[1] != 8 || seqs[2] != 10 {
		t.Errorf("checkpoints at %v, want [4 8 10]", seqs)
	}
	if rep := mustVerify(t, dir); rep.Checkpoints != 3 || rep.LastCheckpoint != 10 {
		t.Errorf("report %+v", rep)
	}
	// Reopened and closed with nothing new: no checkpoint after a checkpoint.
	j = open(t, dir, Options{})
	if cp, ok := j.LatestCheckpoint(); !ok || cp.Seq != 10 {
		t.Errorf("after reopen, latest checkpoint %+v, %v", cp, ok)
	}
	j.Close()
	if n := len(readLines(t, filepath.Join(dir, FileName))); n != 10 {
		t.Errorf("%d lines after an idle reopen, want 10", n)
	}
}

func TestVerifyWithAnotherKeyFails(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	appendN(t, j, 2)
	j.Close()
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	_, err := Verify(dir, other)
	if be := brokenAt(t, err); be.Line != 3 || !strings.Contains(be.Reason, "signed by key") {
		t.Errorf("broken at %+v, want line 3, another key", be)
	}
	if _, err := Verify(dir, j.PublicKey()); err != nil {
		t.Errorf("with the journal's own key: %v", err)
	}
}

func TestKeyFileIsPrivateAndKept(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	j.Close()
	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	again := open(t, dir, Options{})
	defer again.Close()
	if !again.PublicKey().Equal(j.PublicKey()) {
		t.Error("reopening made a new key")
	}
}

func TestUnreadableKeyIsAnErrorAndKept(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	for name, content := range map[string][]byte{
		"garbage":       []byte("not a key\n"),
		"wrong block":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"bad DER":       pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"not Ed25519":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"empty":         {},
		"truncated PEM": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})[:40],
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFileName)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			if j, err := Open(dir, Options{}); err == nil {
				j.Close()
				t.Fatal("Open succeeded")
			}
			if b, _ := os.ReadFile(path); string(b) != string(content) {
				t.Error("the key file was replaced")
			}
		})
	}
}

func TestTornLastLineIsRecoveredOnOpen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		before  int    // entries before the torn line
		torn    string // what the power cut left
		wantSeq uint64 // seq of the recovered entry
	}{
		{"after entries", 3, `{"seq":4,"time":"2025-05-01T12:`, 4},
		{"a lone torn line", 0, `{"seq":1,"ti`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j := open(t, dir, Options{})
			appendN(t, j, tc.before)
			crash(t, j)
			f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tc.torn)
			f.Close()
			if _, err := Verify(dir, nil); brokenAt(t, err).Line != tc.before+1 {
				t.Errorf("verify before recovery: %v", err)
			}
			j = open(t, dir, Options{})
			j.Close()
			got := entries(t, filepath.Join(dir, FileName))[tc.before]
			if got.Seq != tc.wantSeq || got.Event != EventRecovered || !strings.Contains(got.Detail, "torn") {
				t.Errorf("entry after the chain: %+v, want a recovered entry", got)
			}
			mustVerify(t, dir)
		})
	}
}

func TestAppendRefusesTheJournalsOwnEvents(t *testing.T) {
	j := open(t, t.TempDir(), Options{})
	defer j.Close()
	for _, ev := range []string{"", EventCheckpoint, EventRotated, EventRecovered, EventClock} {
		if _, err := j.Append(Entry{Event: ev}); err == nil {
			t.Errorf("Append(%q) succeeded", ev)
		}
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	j := open(t, t.TempDir(), Options{})
	j.Close()
	if _, err := j.Append(cutEntry("")); err != ErrClosed {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
}

func TestClockSteppingBackIsRecorded(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	j := open(t, dir, Options{Now: clock.Now})
	appendN(t, j, 1)
	clock.Set(clock.Now().Add(-2 * time.Hour))
	appendN(t, j, 1)
	clock.Set(clock.Now().Add(-time.Minute)) // within the tolerance: no clock entry
	appendN(t, j, 1)
	j.Close()
	var events []string
	for _, e := range entries(t, filepath.Join(dir, FileName)) {
		events = append(events, e.Event)
	}
	if got := strings.Join(events, " "); got != "cut clock cut cut checkpoint" {
		t.Errorf("events %q", got)
	}
	mustVerify(t, dir)
}

func TestLongDetailIsCutAtARuneBoundary(t *testing.T) {
	j := open(t, t.TempDir(), Options{})
	defer j.Close()
	e := cutEntry("")
	e.Detail = "a" + strings.Repeat("é", MaxDetail)
	got, err := j.Append(e)
	if err != nil || len(got.Detail) > MaxDetail || !strings.HasSuffix(got.Detail, "é") {
		t.Errorf("detail of %d bytes, %v", len(got.Detail), err)
	}
}

func TestConcurrentAppendsKeepOneChain(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{CheckpointEvery: 10, MaxBytes: 4096, Keep: 100})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if _, err := j.Append(cutEntry("")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	all, err := j.Since(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	cuts := 0
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		if e.Event == "cut" {
			cuts++
		}
	}
	if rep := mustVerify(t, dir); rep.Unsigned != 0 || cuts != 200 || len(rep.Files) < 2 {
		t.Errorf("report %+v, %d cuts; want 200, rotated, no unsigned tail", rep, cuts)
	}
}

func TestOpenRefusesACorruptLastLine(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	appendN(t, j, 2)
	crash(t, j)
	path := filepath.Join(dir, FileName)
	lines := readLines(t, path)
	writeLines(t, path, append(lines, []byte("not json")))
	if j, err := Open(dir, Options{}); !errors.Is(err, ErrBroken) {
		if j != nil {
			j.Close()
		}
		t.Errorf("Open: %v, want ErrBroken", err)
	}
}
