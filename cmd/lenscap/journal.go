package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/lenscap/lenscap/device/journal"
)

// journalInfo is the journal in the state (GET /api/state, the retained MQTT state): its public
// key and latest signed checkpoint, to compare a journal with later (lenscap journal verify).
type journalInfo struct {
	PublicKey  string              `json:"public_key"` // standard base64 of the Ed25519 key
	Checkpoint *journal.Checkpoint `json:"checkpoint,omitempty"`
}

// openJournal opens the privacy journal in the state directory. A journal that cannot be
// opened (a corrupt last line, an unreadable key) is logged and left out: privacy does not
// depend on it, and lenscap journal verify says what is wrong.
func openJournal(cfg Config, log *slog.Logger) *journal.Journal {
	j, err := journal.Open(cfg.StateDir, journal.Options{})
	if err != nil {
		log.Error("privacy journal unavailable: changes are not recorded (lenscap journal verify says why)", "err", err)
		return nil
	}
	return j
}

// info is what the state says of j; nil without a journal.
func info(j *journal.Journal) *journalInfo {
	if j == nil {
		return nil
	}
	ji := &journalInfo{PublicKey: base64.StdEncoding.EncodeToString(j.PublicKey())}
	if cp, ok := j.LatestCheckpoint(); ok {
		ji.Checkpoint = &cp
	}
	return ji
}

// maxJournalPage bounds one GET /api/journal answer.
const maxJournalPage = 1000

// serveJournal answers GET /api/journal?since=SEQ&limit=N: the entries after SEQ, oldest first.
func (a *api) serveJournal(w http.ResponseWriter, r *http.Request) {
	if a.journal == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no privacy journal (see the log)"})
		return
	}
	since, err1 := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	limit, err2 := strconv.Atoi(r.URL.Query().Get("limit"))
	if r.URL.Query().Get("since") == "" {
		since, err1 = 0, nil
	}
	if r.URL.Query().Get("limit") == "" {
		limit, err2 = maxJournalPage, nil
	}
	if err1 != nil || err2 != nil || limit < 1 || limit > maxJournalPage {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("want ?since=SEQ (a whole number) and limit 1 to %d", maxJournalPage)})
		return
	}
	entries, err := a.journal.Since(since, limit)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if entries == nil {
		entries = []journal.Entry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "journal": info(a.journal)})
}

// runJournal is `lenscap journal verify [--key BASE64] [FILE...]`: it checks the chain and the
// signatures of the journal in the state directory, or of the files given, and names the first
// broken line.
func runJournal(args []string, getenv func(string) string, out io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("journal: say verify (lenscap journal verify -h)")
	}
	var key string
	cfg, files, err := loadCommandConfigArgs(hostPlatform(), journalUsage, args[1:], getenv, func(fs *flag.FlagSet) {
		fs.StringVar(&key, "key", "", "the journal's public `key` (base64, from the MQTT state or doctor); default: the one in the state directory")
	})
	if err != nil {
		return err
	}
	var pub ed25519.PublicKey
	if key != "" {
		b, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return errors.New("journal verify: --key: want the base64 of a 32-byte Ed25519 public key")
		}
		pub = b
	}
	var rep journal.Report
	if len(files) == 0 {
		rep, err = journal.Verify(cfg.StateDir, pub)
	} else {
		if pub == nil {
			if pub, err = journal.PublicKeyIn(cfg.StateDir); err != nil {
				return err
			}
		}
		rep, err = journal.VerifyFiles(pub, files...)
	}
	if err != nil {
		return fmt.Errorf("journal verify: %w", err)
	}
	fmt.Fprintf(out, "ok: %d entries (seq %d to %d) in %v, %d signed checkpoints, the last at seq %d, %d entries after it (chained, not yet signed), key %s\n",
		rep.Entries, rep.FirstSeq, rep.LastSeq, rep.Files, rep.Checkpoints, rep.LastCheckpoint, rep.Unsigned, rep.Key)
	return nil
}

// journalUsage is the head of `lenscap journal verify -h`.
func journalUsage(board string) string {
	return `usage: lenscap journal verify [--key BASE64] [flags] [FILE...]

verify checks the privacy journal in the state directory (or the files given, oldest first):
every line chained to the one before by its SHA-256, every checkpoint signed by the journal's
key, and names the first broken line. With --key (the public key the camera published in its
MQTT state, or doctor shows) it proves that nothing was changed even by whoever could replace the
key file.

` + configHelp(board)
}

// journalDoctorLine is what doctor says of the journal: its key and whether it verifies.
func journalDoctorLine(stateDir string) string {
	pub, err := journal.PublicKeyIn(stateDir)
	if err != nil {
		return "made at the first start"
	}
	key := base64.StdEncoding.EncodeToString(pub)
	rep, err := journal.Verify(stateDir, pub)
	if err != nil {
		return fmt.Sprintf("BROKEN: %v (key %s)", err, key)
	}
	return fmt.Sprintf("ok (%d entries, signed to seq %d; key %s)", rep.Entries, rep.LastCheckpoint, key)
}
