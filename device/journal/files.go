package journal

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lenscap/lenscap/device/atomicfile"
	"github.com/lenscap/lenscap/device/keyfile"
)

// tail is what Open needs to know of a file: where its complete lines end and its last line.
type tail struct {
	size            int64 // bytes of complete lines
	torn            int   // bytes after the last newline
	lines           int
	first           uint64 // seq of the first line
	last            link
	sinceCheckpoint int // lines after the last checkpoint
	checkpoint      *Checkpoint
}

// checkpointMarker is in every checkpoint line (and, escaped, in no other).
var checkpointMarker = []byte(`"event":"` + EventCheckpoint + `"`)

// readTail reads a file's first and last lines and its last checkpoint. A missing file is
// empty; a first or last complete line that is not an entry is an error wrapping ErrBroken.
func readTail(path string) (tail, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tail{}, nil
	}
	if err != nil {
		return tail{}, fmt.Errorf("journal: %w", err)
	}
	lines, torn := splitLines(data)
	t := tail{size: int64(len(data) - torn), torn: torn, lines: len(lines)}
	if len(lines) == 0 {
		return t, nil
	}
	name := filepath.Base(path)
	first, err := decodeAt(name, lines, 0)
	if err != nil {
		return tail{}, err
	}
	last, err := decodeAt(name, lines, len(lines)-1)
	if err != nil {
		return tail{}, err
	}
	t.first = first.Seq
	t.last = link{seq: last.Seq, hash: hashLine(lines[len(lines)-1]), event: last.Event, time: last.Time}
	for i := len(lines) - 1; i >= 0 && t.checkpoint == nil; i-- {
		if !bytes.Contains(lines[i], checkpointMarker) {
			t.sinceCheckpoint++
			continue
		}
		e, err := decodeAt(name, lines, i)
		if err != nil {
			return tail{}, err
		}
		t.checkpoint = &Checkpoint{Seq: e.Seq, Time: e.Time, Prev: e.Prev, Sig: e.Sig, Key: e.Key}
	}
	return t, nil
}

func decodeAt(name string, lines [][]byte, i int) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(lines[i], &e); err != nil {
		return Entry{}, &BrokenError{File: name, Line: i + 1, Reason: "not a journal entry: " + err.Error()}
	}
	return e, nil
}

// splitLines splits data into its complete lines (without newlines) and counts the bytes of an
// incomplete last line.
func splitLines(data []byte) ([][]byte, int) {
	end := bytes.LastIndexByte(data, '\n') + 1
	if end == 0 {
		return nil, len(data)
	}
	return bytes.Split(data[:end-1], []byte{'\n'}), len(data) - end
}

// rotatedFile is a rotated journal file, by the seq of its first and last lines.
type rotatedFile struct {
	name        string
	first, last uint64
}

func rotatedName(first, last uint64) string {
	return fmt.Sprintf("journal-%d-%d.jsonl", first, last)
}

func parseRotatedName(name string) (rotatedFile, bool) {
	s, ok := strings.CutPrefix(name, "journal-")
	if !ok {
		return rotatedFile{}, false
	}
	if s, ok = strings.CutSuffix(s, ".jsonl"); !ok {
		return rotatedFile{}, false
	}
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(a, 10, 64)
	last, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || first == 0 || last < first {
		return rotatedFile{}, false
	}
	return rotatedFile{name: name, first: first, last: last}, true
}

// listRotated lists dir's rotated files, oldest first.
func listRotated(dir string) ([]rotatedFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var files []rotatedFile
	for _, e := range ents {
		if r, ok := parseRotatedName(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, r)
		}
	}
	slices.SortFunc(files, func(a, b rotatedFile) int { return compareSeq(a.first, b.first) })
	return files, nil
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// prune removes all but the newest keep rotated files.
func prune(dir string, keep int) error {
	files, err := listRotated(dir)
	if err != nil || len(files) <= keep {
		return err
	}
	for _, f := range files[:len(files)-keep] {
		if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal: remove old file: %w", err)
		}
	}
	return atomicfile.SyncDir(dir)
}

// loadOrCreateKey reads the signing key, or makes and saves one when the file does not exist.
func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, _, err := keyfile.LoadOrCreate(path)
	if err != nil {
		return nil, fmt.Errorf("journal: key: %w", err)
	}
	return key, nil
}

// readKey reads the journal's signing key.
func readKey(path string) (ed25519.PrivateKey, error) {
	key, err := keyfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("journal: key: %w", err)
	}
	return key, nil
}

// PublicKeyIn returns the public half of the journal key kept in dir.
func PublicKeyIn(dir string) (ed25519.PublicKey, error) {
	k, err := readKey(filepath.Join(dir, KeyFileName))
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}
