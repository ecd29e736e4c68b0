package journal

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// FileName and KeyFileName are the journal's and its signing key's names in the directory.
const (
	FileName    = "journal.jsonl"
	KeyFileName = "journal.key"
)

// The events the journal writes itself; Append refuses them.
const (
	EventCheckpoint = "checkpoint" // a signed checkpoint
	EventRotated    = "rotated"    // the first line of a file after a rotation
	EventRecovered  = "recovered"  // Open truncated a torn last line
	EventClock      = "clock"      // the clock stepped back more than ClockTolerance
)

// ClockTolerance is how far an entry's time may be before the previous entry's.
const ClockTolerance = time.Hour

// MaxDetail is the longest detail kept, in bytes; Append cuts a longer one at a rune boundary.
const MaxDetail = 256

// signingContext starts every signed checkpoint message (the format's version).
const signingContext = "lenscap-journal-v1\n"

var zeroHash = strings.Repeat("0", 64)

var (
	// ErrBroken is what Verify finds when the journal is not intact (see BrokenError).
	ErrBroken = errors.New("journal: broken")
	// ErrClosed is returned by a Journal's methods after Close.
	ErrClosed = errors.New("journal: closed")
)

// Entry is one line of the journal. Append fills Seq, Time and Prev; Key and Sig are only on
// checkpoints. The field order is the line's key order.
type Entry struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Kinds  []string  `json:"kinds"`
	By     string    `json:"by"`
	Who    string    `json:"who"`
	Detail string    `json:"detail,omitempty"`
	Key    string    `json:"key,omitempty"`
	Sig    string    `json:"sig,omitempty"`
	Prev   string    `json:"prev"`
}

// Checkpoint is a signed checkpoint: enough to check it (Valid) away from the camera.
type Checkpoint struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Prev string    `json:"prev"`
	Sig  string    `json:"sig"`
	Key  string    `json:"key"`
}

// Valid reports whether c is signed by pub.
func (c Checkpoint) Valid(pub ed25519.PublicKey) bool {
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	return err == nil && len(pub) == ed25519.PublicKeySize && c.Key == Fingerprint(pub) &&
		ed25519.Verify(pub, CheckpointMessage(c.Seq, c.Time, c.Prev), sig)
}

// CheckpointMessage is what a checkpoint's sig signs (see the package documentation).
func CheckpointMessage(seq uint64, t time.Time, prev string) []byte {
	return []byte(signingContext + strconv.FormatUint(seq, 10) + "\n" +
		t.UTC().Format(time.RFC3339Nano) + "\n" + prev)
}

// Fingerprint names a public key in checkpoints: the hex of the first 8 bytes of its SHA-256.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Options tune a Journal; zero values mean the defaults.
type Options struct {
	CheckpointEvery int              // entries between checkpoints (default 64)
	MaxBytes        int64            // file size that starts a rotation (default 1 MiB)
	Keep            int              // rotated files kept (default 8)
	Now             func() time.Time // the clock (default time.Now)
}

func (o Options) withDefaults() Options {
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 64
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Keep <= 0 {
		o.Keep = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// link is what the journal remembers of the last line it wrote.
type link struct {
	seq   uint64
	hash  string
	event string
	time  time.Time
}

// Journal appends to the journal in one directory. It is safe for concurrent use.
type Journal struct {
	dir  string
	opts Options
	key  ed25519.PrivateKey
	fp   string

	mu              sync.Mutex
	f               *os.File // the current file; nil after a rotation until the next line
	size            int64    // bytes in f
	firstSeq        uint64   // seq of f's first line; 0 while f is empty
	prevFile        string   // the newest rotated file, named by the next "rotated" entry
	last            link
	sinceCheckpoint int
	checkpoint      *Checkpoint
	pendingPrune    bool
	failed          error // a write left the file in an unknown state: reopen
	closed          bool
}

// Open opens the journal in dir (made with mode 0700 if missing), making its signing key on
// first use. It truncates a torn last line and records that with a "recovered" entry. An
// unreadable key, or a last complete line that is not an entry, is an error.
func Open(dir string, opts Options) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	key, err := loadOrCreateKey(filepath.Join(dir, KeyFileName))
	if err != nil {
		return nil, err
	}
	j := &Journal{dir: dir, opts: opts.withDefaults(), key: key, last: link{hash: zeroHash}}
	j.fp = Fingerprint(j.PublicKey())
	if err := j.resume(); err != nil {
		if j.f != nil {
			j.f.Close()
		}
		return nil, err
	}
	return j, nil
}

// PublicKey is the key that verifies this journal's checkpoints.
func (j *Journal) PublicKey() ed25519.PublicKey { return j.key.Public().(ed25519.PublicKey) }

// LatestCheckpoint is the last checkpoint written (false when there is none yet).
func (j *Journal) LatestCheckpoint() (Checkpoint, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.checkpoint == nil {
		return Checkpoint{}, false
	}
	return *j.checkpoint, true
}

// Append writes e as the next line, durably, and returns it as written (Seq, Time and Prev
// filled in). Event must be set and not one of the journal's own. When the returned entry has a
// Seq but the error is not nil, the line is durable and the housekeeping after it (a checkpoint,
// removing old files) failed; it is tried again on the next Append.
func (j *Journal) Append(e Entry) (Entry, error) {
	switch e.Event {
	case "":
		return Entry{}, errors.New("journal: append: no event")
	case EventCheckpoint, EventRotated, EventRecovered, EventClock:
		return Entry{}, fmt.Errorf("journal: append: %q is the journal's own event", e.Event)
	}
	e.Detail = cut(e.Detail, MaxDetail)
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writable(); err != nil {
		return Entry{}, err
	}
	if err := j.rotateIfFull(); err != nil {
		return Entry{}, err
	}
	if err := j.ensureFile(); err != nil {
		return Entry{}, err
	}
	written, err := j.write(e)
	if err != nil {
		return Entry{}, err
	}
	if err := j.housekeep(); err != nil {
		return written, fmt.Errorf("journal: after seq %d: %w", written.Seq, err)
	}
	return written, nil
}

// Close writes a checkpoint (unless the last line is one) and closes the file. It is
// idempotent.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	if j.f == nil {
		return nil
	}
	var err error
	if j.failed == nil && j.last.seq > 0 && j.last.event != EventCheckpoint {
		_, err = j.write(Entry{Event: EventCheckpoint})
	}
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("journal: close: %w", cerr)
	}
	j.f = nil
	return err
}

func (j *Journal) writable() error {
	if j.closed {
		return ErrClosed
	}
	return j.failed
}

func (j *Journal) path() string { return filepath.Join(j.dir, FileName) }

// housekeep writes a checkpoint when one is due and removes rotated files beyond Keep.
func (j *Journal) housekeep() error {
	if j.sinceCheckpoint >= j.opts.CheckpointEvery {
		if _, err := j.write(Entry{Event: EventCheckpoint}); err != nil {
			return err
		}
	}
	if j.pendingPrune {
		if err := prune(j.dir, j.opts.Keep); err != nil {
			return err
		}
		j.pendingPrune = false
	}
	return nil
}

// cut shortens s to at most n bytes without splitting a rune.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func hashLine(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}
