package journal

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lenscap/lenscap/device/atomicfile"
)

// write appends e after the last line, preceded by a "clock" entry when the clock has stepped
// back more than ClockTolerance. The caller holds j.mu and has an open file.
func (j *Journal) write(e Entry) (Entry, error) {
	now := j.opts.Now().UTC()
	if back := j.last.time.Sub(now); back > ClockTolerance && j.last.seq > 0 {
		step := Entry{Event: EventClock, Detail: "the clock went back " + back.String()}
		if _, err := j.writeAt(step, now); err != nil {
			return Entry{}, err
		}
	}
	return j.writeAt(e, now)
}

func (j *Journal) writeAt(e Entry, now time.Time) (Entry, error) {
	e.Seq, e.Time, e.Prev = j.last.seq+1, now, j.last.hash
	if e.Kinds == nil {
		e.Kinds = []string{}
	}
	e.Key, e.Sig = "", ""
	if e.Event == EventCheckpoint {
		e.Key = j.fp
		e.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(j.key, CheckpointMessage(e.Seq, e.Time, e.Prev)))
	}
	line, err := json.Marshal(e)
	if err != nil {
		return Entry{}, fmt.Errorf("journal: encode seq %d: %w", e.Seq, err)
	}
	if err := j.writeLine(line, e.Seq); err != nil {
		return Entry{}, err
	}
	j.advance(e, line)
	return e, nil
}

// writeLine writes one line with one write and fsyncs it. A partial write is truncated away;
// when that, or the fsync, fails the file's state is unknown and the journal stops writing.
func (j *Journal) writeLine(line []byte, seq uint64) error {
	n, err := j.f.Write(append(line, '\n'))
	if err != nil {
		if n > 0 {
			if terr := j.f.Truncate(j.size); terr != nil {
				j.failed = fmt.Errorf("journal: seq %d partly written: %w", seq, terr)
			}
		}
		return fmt.Errorf("journal: write seq %d: %w", seq, err)
	}
	if err := j.f.Sync(); err != nil {
		j.failed = fmt.Errorf("journal: fsync seq %d: %w", seq, err)
		return j.failed
	}
	return nil
}

func (j *Journal) advance(e Entry, line []byte) {
	j.size += int64(len(line)) + 1
	if j.firstSeq == 0 {
		j.firstSeq = e.Seq
	}
	j.last = link{seq: e.Seq, hash: hashLine(line), event: e.Event, time: e.Time}
	if e.Event != EventCheckpoint {
		j.sinceCheckpoint++
		return
	}
	j.sinceCheckpoint = 0
	j.checkpoint = &Checkpoint{Seq: e.Seq, Time: e.Time, Prev: e.Prev, Sig: e.Sig, Key: e.Key}
}

// ensureFile opens the current file when there is none (after Open or a rotation). A new file
// after a rotation starts with a "rotated" entry chained to the old file's last line.
func (j *Journal) ensureFile() error {
	if j.f != nil {
		return nil
	}
	f, err := os.OpenFile(j.path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	j.f, j.size = f, fi.Size()
	if j.size > 0 {
		return nil
	}
	j.firstSeq = 0
	if err := atomicfile.SyncDir(j.dir); err != nil {
		return err
	}
	if j.last.seq == 0 {
		return nil // the very first file: the first Append starts the chain
	}
	_, err = j.write(Entry{Event: EventRotated, Detail: j.prevFile})
	return err
}

// rotateIfFull renames a full current file journal-FIRST-LAST.jsonl, after a checkpoint. The
// next ensureFile starts the new file; old files are removed after the next line is written.
func (j *Journal) rotateIfFull() error {
	if j.f == nil || j.size < j.opts.MaxBytes || j.last.seq == 0 {
		return nil
	}
	if j.last.event != EventCheckpoint {
		if _, err := j.write(Entry{Event: EventCheckpoint}); err != nil {
			return err
		}
	}
	name := rotatedName(j.firstSeq, j.last.seq)
	err := j.f.Close()
	j.f = nil // on any error below, ensureFile reopens what is there
	if err != nil {
		return fmt.Errorf("journal: rotate: %w", err)
	}
	if err := os.Rename(j.path(), filepath.Join(j.dir, name)); err != nil {
		return fmt.Errorf("journal: rotate: %w", err)
	}
	j.prevFile = name
	j.pendingPrune = true
	return atomicfile.SyncDir(j.dir)
}

// resume finds where the chain ends (the current file's last complete line, else the newest
// rotated file's), truncates a torn last line, and opens the current file for appending.
func (j *Journal) resume() error {
	cur, err := readTail(j.path())
	if err != nil {
		return err
	}
	if cur.torn > 0 {
		if err := os.Truncate(j.path(), cur.size); err != nil {
			return fmt.Errorf("journal: truncate a torn line: %w", err)
		}
	}
	if cur.lines == 0 || cur.checkpoint == nil {
		if err := j.resumeFromRotated(&cur); err != nil {
			return err
		}
	}
	if cur.last.seq == 0 {
		cur.last.hash = zeroHash // the very first line
	}
	j.firstSeq, j.last, j.sinceCheckpoint, j.checkpoint = cur.first, cur.last, cur.sinceCheckpoint, cur.checkpoint
	if err := j.ensureFile(); err != nil {
		return err
	}
	if cur.torn == 0 {
		return nil
	}
	_, err = j.write(Entry{Event: EventRecovered, Detail: fmt.Sprintf("truncated a torn last line of %d bytes", cur.torn)})
	return err
}

// resumeFromRotated completes cur from the newest rotated file: the chain's end when the
// current file is empty, the latest checkpoint when the current file has none.
func (j *Journal) resumeFromRotated(cur *tail) error {
	rotated, err := listRotated(j.dir)
	if err != nil || len(rotated) == 0 {
		return err
	}
	name := rotated[len(rotated)-1].name
	old, err := readTail(filepath.Join(j.dir, name))
	if err != nil {
		return err
	}
	if old.lines == 0 || old.torn > 0 {
		return &BrokenError{File: name, Line: old.lines + 1, Reason: "rotated file is empty or ends in a torn line"}
	}
	if cur.lines == 0 {
		cur.last, cur.sinceCheckpoint = old.last, old.sinceCheckpoint
		j.prevFile = name
	}
	if cur.checkpoint == nil {
		cur.checkpoint = old.checkpoint
	}
	return nil
}
