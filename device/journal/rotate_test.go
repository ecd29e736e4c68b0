package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A line is about 170 bytes: 1,000 bytes rotate every six lines or so.
const smallFile = 1000

func rotatedNames(t *testing.T, dir string) []string {
	t.Helper()
	files, err := listRotated(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.name)
	}
	return names
}

func TestRotationKeepsTheChainAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{MaxBytes: smallFile, Keep: 100})
	appendN(t, j, 30)
	j.Close()
	names := rotatedNames(t, dir)
	if len(names) < 3 {
		t.Fatalf("rotated files %v, want several", names)
	}
	for i, name := range names {
		es := entries(t, filepath.Join(dir, name))
		if last := es[len(es)-1]; last.Event != EventCheckpoint {
			t.Errorf("%s ends with %q, want a checkpoint", name, last.Event)
		}
		if first := es[0]; i > 0 && (first.Event != EventRotated || first.Detail != names[i-1]) {
			t.Errorf("%s starts with %+v, want a rotated entry after %s", name, first, names[i-1])
		}
	}
	if first := entries(t, filepath.Join(dir, FileName))[0]; first.Event != EventRotated {
		t.Errorf("the current file starts with %q", first.Event)
	}
	rep := mustVerify(t, dir)
	if rep.FirstSeq != 1 || len(rep.Files) != len(names)+1 || rep.Unsigned != 0 {
		t.Errorf("report %+v", rep)
	}
	if !strings.HasPrefix(names[0], "journal-1-") {
		t.Errorf("oldest file %s", names[0])
	}
}

func TestRotationRemovesFilesBeyondKeep(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{MaxBytes: smallFile, Keep: 2})
	appendN(t, j, 60)
	j.Close()
	if names := rotatedNames(t, dir); len(names) != 2 {
		t.Errorf("rotated files %v, want 2", names)
	}
	if rep := mustVerify(t, dir); rep.FirstSeq <= 1 || rep.LastSeq < 60 {
		t.Errorf("report %+v: want the oldest entries gone, the newest verified", rep)
	}
}

func TestVerifyDetectsRotatedFilesTamperedWith(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(dir string, names []string) error
		inReason string
	}{
		{"a middle file removed", func(dir string, names []string) error {
			return os.Remove(filepath.Join(dir, names[1]))
		}, "seq follows"},
		{"a file's last line removed", func(dir string, names []string) error {
			p := filepath.Join(dir, names[0])
			b, _ := os.ReadFile(p)
			lines := strings.SplitAfter(string(b), "\n")
			return os.WriteFile(p, []byte(strings.Join(lines[:len(lines)-2], "")), 0o600)
		}, "its name says"},
		{"the oldest file renamed", func(dir string, names []string) error {
			r, _ := parseRotatedName(names[0])
			return os.Rename(filepath.Join(dir, names[0]), filepath.Join(dir, rotatedName(r.first+1, r.last)))
		}, "its name says"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j := open(t, dir, Options{MaxBytes: smallFile, Keep: 100})
			appendN(t, j, 30)
			j.Close()
			if err := tc.edit(dir, rotatedNames(t, dir)); err != nil {
				t.Fatal(err)
			}
			_, err := Verify(dir, nil)
			if be := brokenAt(t, err); !strings.Contains(be.Reason, tc.inReason) {
				t.Errorf("broken at %+v, want %q", be, tc.inReason)
			}
		})
	}
}

// A power cut between the rename and the new file's first line leaves no current file: Open
// continues the chain from the newest rotated file.
func TestOpenAfterACutMidRotationContinuesTheChain(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{})
	appendN(t, j, 5)
	crash(t, j)
	if err := os.Rename(filepath.Join(dir, FileName), filepath.Join(dir, rotatedName(1, 5))); err != nil {
		t.Fatal(err)
	}
	j = open(t, dir, Options{})
	if e, err := j.Append(cutEntry("")); err != nil || e.Seq != 7 {
		t.Errorf("append: seq %d, %v; want 7 after a rotated entry", e.Seq, err)
	}
	j.Close()
	if rep := mustVerify(t, dir); rep.LastSeq != 8 || len(rep.Files) != 2 {
		t.Errorf("report %+v", rep)
	}
}

func TestSinceReadsAcrossRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{MaxBytes: smallFile, Keep: 100, CheckpointEvery: 4})
	defer j.Close()
	appendN(t, j, 40)
	all, err := j.Since(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotatedNames(t, dir)) < 3 || len(all) < 40 {
		t.Fatalf("%d entries over %d rotated files", len(all), len(rotatedNames(t, dir)))
	}
	last := all[len(all)-1].Seq
	for _, tc := range []struct {
		since      uint64
		limit      int
		first, end uint64 // seqs returned: first to end, inclusive; 0, 0 for none
	}{
		{0, 0, 1, last},
		{0, 5, 1, 5},
		{9, 7, 10, 16},
		{last - 2, 10, last - 1, last},
		{last, 0, 0, 0},
		{last + 10, 0, 0, 0},
	} {
		got, err := j.Since(tc.since, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if tc.end == 0 {
			if len(got) != 0 {
				t.Errorf("Since(%d, %d): %d entries, want none", tc.since, tc.limit, len(got))
			}
			continue
		}
		if len(got) != int(tc.end-tc.first+1) || got[0].Seq != tc.first || got[len(got)-1].Seq != tc.end {
			t.Errorf("Since(%d, %d): %d entries from %d, want %d to %d", tc.since, tc.limit, len(got), got[0].Seq, tc.first, tc.end)
		}
	}
}

func TestSinceAfterOldFilesAreRemovedStartsAtTheOldestKept(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{MaxBytes: smallFile, Keep: 1})
	defer j.Close()
	appendN(t, j, 40)
	got, err := j.Since(0, 3)
	if err != nil || len(got) != 3 || got[0].Seq <= 1 || got[0].Event != EventRotated {
		t.Errorf("Since(0, 3): %+v, %v; want the oldest kept file's first entries", got, err)
	}
}

func TestVerifyBesideAWritingJournal(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, Options{MaxBytes: smallFile, Keep: 3})
	appendN(t, j, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 300 {
			if _, err := j.Append(cutEntry("")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer j.Close()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := Verify(dir, nil); err != nil {
			t.Errorf("verify beside appends: %v", err)
			<-done
			return
		}
	}
}
