package journal

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// closedJournal writes n entries with a checkpoint every 3 and closes the journal.
func closedJournal(t *testing.T, n int) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	j := open(t, dir, Options{CheckpointEvery: 3})
	appendN(t, j, n)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, FileName)
}

func TestVerifyDetectsAnyByteEdited(t *testing.T) {
	dir, path := closedJournal(t, 4) // 1 2 3 cp4 5 cp6
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range orig {
		line := bytes.Count(orig[:i], []byte{'\n'}) + 1
		for _, flip := range []byte{0x01, 0x20} {
			edited := bytes.Clone(orig)
			edited[i] ^= flip
			if err := os.WriteFile(path, edited, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Verify(dir, nil)
			if err == nil {
				t.Fatalf("byte %d (line %d) %q -> %q: not detected", i, line, orig[i], edited[i])
			}
			// A line edited into another valid entry shows at the next line, whose prev
			// no longer matches.
			if be := brokenAt(t, err); be.Line != line && be.Line != line+1 {
				t.Fatalf("byte %d of line %d edited: broken at line %d", i, line, be.Line)
			}
		}
	}
}

func TestVerifyNamesTheFirstBrokenLine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(lines [][]byte) [][]byte
		line     int
		seq      uint64
		inReason string
	}{
		{"line deleted", func(l [][]byte) [][]byte { return append(l[:2:2], l[3:]...) }, 3, 4, "seq follows 2"},
		{"first line deleted", func(l [][]byte) [][]byte { return l[1:] }, 1, 2, "starts with neither"},
		{"two lines swapped", func(l [][]byte) [][]byte { l[2], l[3] = l[3], l[2]; return l }, 3, 4, "seq follows 2"},
		{"line repeated", func(l [][]byte) [][]byte { return append(l[:3:3], l[2:]...) }, 4, 3, "seq follows 3"},
		{"blank line", func(l [][]byte) [][]byte { return append(l[:1:1], append([][]byte{{}}, l[1:]...)...) }, 2, 0, "not a journal entry"},
		{"spaces added", func(l [][]byte) [][]byte { l[1] = bytes.Replace(l[1], []byte(`,"by"`), []byte(`, "by"`), 1); return l }, 2, 2, "canonical"},
		{"time in another zone", inZone(5), 6, 6, "not in UTC"},
		{"unknown field", func(l [][]byte) [][]byte { l[5] = bytes.Replace(l[5], []byte(`{`), []byte(`{"x":1,`), 1); return l }, 6, 6, "canonical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path := closedJournal(t, 4)
			writeLines(t, path, tc.edit(readLines(t, path)))
			rep, err := Verify(dir, nil)
			be := brokenAt(t, err)
			if be.File != FileName || be.Line != tc.line || be.Seq != tc.seq || !strings.Contains(be.Reason, tc.inReason) {
				t.Errorf("broken at %+v; want line %d, seq %d, %q", be, tc.line, tc.seq, tc.inReason)
			}
			if rep.Entries != tc.line-1 {
				t.Errorf("report of %d entries, want the %d before the broken line", rep.Entries, tc.line-1)
			}
		})
	}
}

func TestVerifyDetectsATruncationInALine(t *testing.T) {
	dir, path := closedJournal(t, 4)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)/2], 0o600)
	_, err := Verify(dir, nil)
	if be := brokenAt(t, err); !strings.Contains(be.Reason, "incomplete") {
		t.Errorf("broken at %+v, want an incomplete line", be)
	}
}

// Cutting whole lines off the end cannot be told from a journal not yet closed: the lines kept
// verify, and the report shows an unsigned tail and the last checkpoint, to compare with the
// one published off the camera.
func TestTruncationAtALineShowsAsAnOlderCheckpoint(t *testing.T) {
	dir, path := closedJournal(t, 4) // 1 2 3 cp4 5 cp6
	writeLines(t, path, readLines(t, path)[:5])
	rep := mustVerify(t, dir)
	if rep.LastCheckpoint != 4 || rep.Unsigned != 1 || rep.LastSeq != 5 {
		t.Errorf("report %+v, want last checkpoint 4 and one unsigned entry", rep)
	}
}

func TestVerifyFindsTimeGoingBackWithoutAClockEntry(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	j := open(t, dir, Options{Now: clock.Now})
	appendN(t, j, 2)
	crash(t, j)
	// Forge the second line's time two hours back, and rechain after it.
	path := filepath.Join(dir, FileName)
	es := entries(t, path)
	es[1].Time = es[0].Time.Add(-2 * ClockTolerance)
	writeLines(t, path, chain(t, es))
	_, err := Verify(dir, nil)
	if be := brokenAt(t, err); be.Line != 2 || !strings.Contains(be.Reason, "time goes back") {
		t.Errorf("broken at %+v", be)
	}
}

func TestVerifyRefusesBadInput(t *testing.T) {
	if _, err := Verify(t.TempDir(), nil); err == nil {
		t.Error("a directory without a key verified")
	}
	dir := t.TempDir()
	open(t, dir, Options{}).Close()
	if rep, err := Verify(dir, nil); err != nil || rep.Entries != 0 {
		t.Errorf("an empty journal: %+v, %v", rep, err)
	}
	os.Remove(filepath.Join(dir, FileName))
	if _, err := Verify(dir, nil); err == nil {
		t.Error("a directory without a journal verified")
	}
	if _, err := VerifyFiles(nil, filepath.Join(dir, FileName)); err == nil {
		t.Error("VerifyFiles without a key succeeded")
	}
}

// chain rewrites es as lines with each prev the hash of the line before, as a forger would.
func chain(t *testing.T, es []Entry) [][]byte {
	t.Helper()
	var lines [][]byte
	prev := zeroHash
	for _, e := range es {
		e.Prev = prev
		line := mustMarshal(t, e)
		lines = append(lines, line)
		prev = hashLine(line)
	}
	return lines
}

// inZone rewrites line i's time as the same instant two hours east of UTC.
func inZone(i int) func([][]byte) [][]byte {
	return func(l [][]byte) [][]byte {
		var e Entry
		if err := json.Unmarshal(l[i], &e); err != nil {
			panic(err)
		}
		e.Time = e.Time.In(time.FixedZone("", 2*3600))
		l[i], _ = json.Marshal(e)
		return l
	}
}
