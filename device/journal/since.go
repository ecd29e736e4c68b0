package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// snapFile is a journal file opened under the lock, with the bytes of complete lines it held then.
type snapFile struct {
	f    *os.File
	size int64
}

// Since returns the entries after seq, oldest first, at most limit of them (all when limit <= 0),
// from the rotated files still kept and the current file. Entries older than the oldest kept
// file are gone: the first entry returned then has a seq above seq+1. It holds the lock only to
// open the files, not to read them.
func (j *Journal) Since(seq uint64, limit int) ([]Entry, error) {
	files, err := j.snapshot(seq)
	defer func() {
		for _, sf := range files {
			sf.f.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, sf := range files {
		if out, err = readSince(sf, seq, limit, out); err != nil {
			return nil, err
		}
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// snapshot opens, under the lock, the files that may hold entries after seq: a rotation or
// removal after it does not change what they read.
func (j *Journal) snapshot(seq uint64) ([]snapFile, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	if seq >= j.last.seq {
		return nil, nil
	}
	rotated, err := listRotated(j.dir)
	if err != nil {
		return nil, err
	}
	var files []snapFile
	for _, r := range rotated {
		if r.last <= seq {
			continue
		}
		sf, err := openSnap(filepath.Join(j.dir, r.name), -1)
		if err != nil {
			return files, err
		}
		files = append(files, sf)
	}
	size := int64(-1) // after a failed rotation the file is there but not open: all of it
	if j.f != nil {
		size = j.size
	}
	sf, err := openSnap(j.path(), size)
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil
	}
	if err != nil {
		return files, err
	}
	return append(files, sf), nil
}

// openSnap opens path for reading its first size bytes (all of it when size < 0).
func openSnap(path string, size int64) (snapFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return snapFile{}, fmt.Errorf("journal: %w", err)
	}
	if size < 0 {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return snapFile{}, fmt.Errorf("journal: %w", err)
		}
		size = fi.Size()
	}
	return snapFile{f: f, size: size}, nil
}

// readSince appends to out the entries of sf after seq, up to limit in all.
func readSince(sf snapFile, seq uint64, limit int, out []Entry) ([]Entry, error) {
	data, err := io.ReadAll(io.NewSectionReader(sf.f, 0, sf.size))
	if err != nil {
		return out, fmt.Errorf("journal: read %s: %w", sf.f.Name(), err)
	}
	lines, _ := splitLines(data)
	name := filepath.Base(sf.f.Name())
	for i, line := range lines {
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return out, &BrokenError{File: name, Line: i + 1, Reason: "not a journal entry: " + err.Error()}
		}
		if e.Seq <= seq {
			continue
		}
		out = append(out, e)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}
