package journal

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// BrokenError names the first line where a journal is not intact. errors.Is(err, ErrBroken)
// holds for it.
type BrokenError struct {
	File   string // the file's base name
	Line   int    // 1-based
	Seq    uint64 // the line's seq, 0 when it could not be read
	Reason string
}

func (e *BrokenError) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("journal: broken at %s line %d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("journal: broken at %s line %d (seq %d): %s", e.File, e.Line, e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrBroken) true.
func (e *BrokenError) Is(target error) bool { return target == ErrBroken }

// reasonTorn is a BrokenError's reason for a file ending without a newline.
const reasonTorn = "incomplete last line (a torn write, which Open truncates)"

// Report summarises a verification: on an error, of the lines before the broken one.
type Report struct {
	Files          []string // base names, in the order read
	Entries        int
	FirstSeq       uint64 // above 1 when older files were removed (Options.Keep)
	LastSeq        uint64
	Checkpoints    int
	LastCheckpoint uint64 // seq of the last checkpoint verified, 0 when none
	Unsigned       int    // entries after the last checkpoint: chained, not yet signed
	Key            string // Fingerprint of the key the checkpoints were verified with
}

// Verify checks the journal in dir: its rotated files, oldest first, then the current file (see
// VerifyFiles). With a nil pub it uses the key in dir, which proves the journal intact only
// against edits that did not also replace the key: pass a public key kept elsewhere (published
// off the camera, or recorded by the fleet) to rule those out. It may run beside the Journal
// writing dir: it verifies the lines written when it opened the files.
func Verify(dir string, pub ed25519.PublicKey) (Report, error) {
	if pub == nil {
		key, err := readKey(filepath.Join(dir, KeyFileName))
		if err != nil {
			return Report{}, err
		}
		pub = key.Public().(ed25519.PublicKey)
	}
	for attempt := 1; ; attempt++ {
		files, err := openDir(dir)
		if err != nil {
			return Report{}, err
		}
		rep, err := verifyOpen(pub, files)
		var be *BrokenError
		writing := errors.As(err, &be) && be.File == FileName && be.Reason == reasonTorn
		if !writing || attempt == 3 { // else read again after the line being written
			return rep, err
		}
	}
}

// namedFile is an open journal file and the name it is verified under.
type namedFile struct {
	name string
	f    *os.File
}

// openDir opens dir's journal files, oldest first. It opens the current file first, so that a
// rotation while it lists hides no line: the rotated file that is the one it opened as current,
// and any newer, are left out. A rotated file removed meanwhile (Options.Keep) is skipped.
func openDir(dir string) ([]namedFile, error) {
	cur, err := os.Open(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		cur = nil // between a rotation's rename and its new file
	} else if err != nil {
		return nil, fmt.Errorf("journal: verify: %w", err)
	}
	files, err := openRotated(dir, cur)
	if cur != nil {
		files = append(files, namedFile{FileName, cur})
	}
	if err != nil {
		closeAll(files)
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("journal: verify: no journal in %s: %w", dir, fs.ErrNotExist)
	}
	return files, nil
}

// openRotated opens dir's rotated files older than cur (all when cur is nil), oldest first.
func openRotated(dir string, cur *os.File) ([]namedFile, error) {
	var curInfo fs.FileInfo
	if cur != nil {
		fi, err := cur.Stat()
		if err != nil {
			return nil, fmt.Errorf("journal: verify: %w", err)
		}
		curInfo = fi
	}
	rotated, err := listRotated(dir)
	if err != nil {
		return nil, err
	}
	var files []namedFile
	for _, r := range rotated {
		f, err := os.Open(filepath.Join(dir, r.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since listed (Options.Keep)
		}
		if err != nil {
			return files, fmt.Errorf("journal: verify: %w", err)
		}
		if fi, err := f.Stat(); err == nil && curInfo != nil && os.SameFile(fi, curInfo) {
			f.Close() // cur, rotated since opened: it and newer files come after what cur holds
			break
		}
		files = append(files, namedFile{r.name, f})
	}
	return files, nil
}

// VerifyFiles checks journal files given in order as one chain: every line is a canonical
// entry; seq grows by one; prev is the SHA-256 of the line before (64 zeros before seq 1);
// every file starts with seq 1 or a "rotated" entry, and a rotated file's name matches its
// first and last seq; time is in UTC and goes back at most ClockTolerance but at a "clock"
// entry; each checkpoint is signed by pub. The first line may follow files no longer there: its
// prev is then taken on trust. The first broken line is returned as a *BrokenError.
func VerifyFiles(pub ed25519.PublicKey, paths ...string) (Report, error) {
	var files []namedFile
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			closeAll(files)
			return Report{}, fmt.Errorf("journal: verify: %w", err)
		}
		files = append(files, namedFile{filepath.Base(p), f})
	}
	return verifyOpen(pub, files)
}

// verifyOpen verifies files and closes them.
func verifyOpen(pub ed25519.PublicKey, files []namedFile) (Report, error) {
	defer closeAll(files)
	if len(pub) != ed25519.PublicKeySize {
		return Report{}, errors.New("journal: verify: no Ed25519 public key")
	}
	v := verifier{pub: pub, rep: Report{Key: Fingerprint(pub)}}
	for _, nf := range files {
		if err := v.file(nf); err != nil {
			return v.rep, err
		}
	}
	return v.rep, nil
}

func closeAll(files []namedFile) {
	for _, nf := range files {
		nf.f.Close()
	}
}

type verifier struct {
	pub     ed25519.PublicKey
	rep     Report
	started bool
	seq     uint64 // of the last line verified
	hash    string
	time    time.Time
}

func (v *verifier) file(nf namedFile) error {
	data, err := io.ReadAll(nf.f)
	if err != nil {
		return fmt.Errorf("journal: verify: %w", err)
	}
	name := nf.name
	v.rep.Files = append(v.rep.Files, name)
	lines, torn := splitLines(data)
	firstSeq := v.seq + 1
	for i, line := range lines {
		if err := v.line(name, i+1, line, i == 0); err != nil {
			return err
		}
		if i == 0 {
			firstSeq = v.seq
		}
	}
	if torn > 0 {
		return &BrokenError{File: name, Line: len(lines) + 1, Reason: reasonTorn}
	}
	if r, ok := parseRotatedName(name); ok && (len(lines) == 0 || r.first != firstSeq || r.last != v.seq) {
		return &BrokenError{File: name, Line: len(lines), Seq: v.seq,
			Reason: fmt.Sprintf("the file holds seq %d to %d, its name says %d to %d", firstSeq, v.seq, r.first, r.last)}
	}
	return nil
}

func (v *verifier) line(name string, n int, line []byte, firstInFile bool) error {
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return &BrokenError{File: name, Line: n, Reason: "not a journal entry: " + err.Error()}
	}
	why := ""
	if canon, err := json.Marshal(e); err != nil || !bytes.Equal(canon, line) {
		why = "not in canonical form"
	} else if why = v.chainFault(e, firstInFile); why == "" {
		why = v.signatureFault(e)
	}
	if why != "" {
		return &BrokenError{File: name, Line: n, Seq: e.Seq, Reason: why}
	}
	v.started, v.seq, v.hash, v.time = true, e.Seq, hashLine(line), e.Time
	v.count(e)
	return nil
}

// chainFault says why e does not follow the line before, or "".
func (v *verifier) chainFault(e Entry, firstInFile bool) string {
	switch {
	case e.Seq == 0:
		return "seq 0"
	case e.Time.Location() != time.UTC:
		return "time not in UTC"
	case firstInFile && e.Seq != 1 && e.Event != EventRotated:
		return "the file starts with neither seq 1 nor a rotated entry"
	case !v.started && e.Seq == 1 && e.Prev != zeroHash:
		return "the first entry's prev is not 64 zeros"
	case !v.started:
		return ""
	case e.Seq != v.seq+1:
		return fmt.Sprintf("seq follows %d", v.seq)
	case e.Prev != v.hash:
		return "prev is not the SHA-256 of the line before"
	case v.time.Sub(e.Time) > ClockTolerance && e.Event != EventClock:
		return fmt.Sprintf("time goes back %s without a clock entry", v.time.Sub(e.Time))
	}
	return ""
}

// signatureFault says why a checkpoint is not validly signed by v.pub, or an entry that is no
// checkpoint carries a signature; "" when neither.
func (v *verifier) signatureFault(e Entry) string {
	if e.Event != EventCheckpoint {
		if e.Key != "" || e.Sig != "" {
			return "a signature on an entry that is not a checkpoint"
		}
		return ""
	}
	switch {
	case len(e.Kinds) != 0 || e.By != "" || e.Who != "" || e.Detail != "":
		return "a checkpoint with fields it does not sign"
	case e.Key != v.rep.Key:
		return fmt.Sprintf("checkpoint signed by key %s, not %s", e.Key, v.rep.Key)
	case !(Checkpoint{Seq: e.Seq, Time: e.Time, Prev: e.Prev, Sig: e.Sig, Key: e.Key}).Valid(v.pub):
		return "checkpoint signature does not verify"
	}
	return ""
}

func (v *verifier) count(e Entry) {
	r := &v.rep
	if r.Entries == 0 {
		r.FirstSeq = e.Seq
	}
	r.Entries++
	r.LastSeq = e.Seq
	if e.Event == EventCheckpoint {
		r.Checkpoints++
		r.LastCheckpoint = e.Seq
		r.Unsigned = 0
	} else {
		r.Unsigned++
	}
}
