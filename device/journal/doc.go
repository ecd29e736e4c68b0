// Package journal keeps lenscap's tamper-evident privacy journal: an append-only file of JSON
// lines in the camera's state directory, each line chained to the one before it by SHA-256, with
// checkpoints signed by a key of the camera's own.
//
// # Lines
//
// FileName (journal.jsonl) holds one Entry per line, its keys always in this order:
//
//	{"seq":7,"time":"2025-05-01T12:00:00.123456789Z","event":"cut","kinds":["video","audio"],"by":"button","who":"owner","detail":"...","prev":"<64 hex>"}
//
// seq grows by one per line, across rotated files. time is the writer's clock in UTC, RFC 3339
// with nanoseconds (Go's time.RFC3339Nano: trailing zeros of the fraction are dropped). kinds is
// [] when no kind is affected; by and who may be ""; detail is left out when empty. prev is the
// lowercase hex SHA-256 of the previous line's bytes without its newline; the first line of the
// very first file has 64 zeros. Every line is in canonical form: the bytes encoding/json writes
// for the Entry it decodes to. Each line is written with one write and fsync'd before Append
// returns; a torn last line (a power cut mid-write) is truncated by Open, which then writes a
// "recovered" entry.
//
// # Checkpoints
//
// Every Options.CheckpointEvery entries, before a rotation and on Close, the journal writes a
// checkpoint: kinds [], empty by and who, no detail, and two more fields before prev:
//
//	{"seq":64,"time":"...","event":"checkpoint","kinds":[],"by":"","who":"","key":"<16 hex>","sig":"<base64>","prev":"<64 hex>"}
//
// key is Fingerprint(public key). sig is the standard (padded) base64 of the Ed25519 signature
// of CheckpointMessage(seq, time, prev), the bytes
//
//	"lenscap-journal-v1\n" + seq in decimal + "\n" + time as written in the line + "\n" + prev
//
// so a checkpoint signs every line before it (through prev) and every field of its own line.
// The private key is KeyFileName (journal.key, PKCS #8 PEM, mode 0600) beside the journal, made
// at the first Open.
//
// # Rotation
//
// Once the file holds Options.MaxBytes, the next Append renames it journal-FIRST-LAST.jsonl
// (the seq of its first and last lines; it ends with a checkpoint) and starts a new file whose
// first line is a "rotated" entry chained to the old file's last line. Options.Keep rotated
// files are kept, the oldest removed.
//
// # Time
//
// An entry's time is at most ClockTolerance before the previous entry's. When the clock has
// stepped back further (a board without a real-time clock after a reboot, a correction), the
// journal first writes a "clock" entry, the one kind of line exempt from that rule.
//
// # What it proves
//
// Verify detects any edit, deletion, insertion or reordering of lines up to the last checkpoint,
// with the public key from a trusted place. Lines after the last checkpoint are chained but not
// signed: someone able to write the directory can rewrite them consistently, or drop them, which
// is why the latest checkpoint (LatestCheckpoint) is published off the camera. Removing the
// oldest rotated files is what Keep does too: a Report starting after seq 1 says so.
//
// One Journal writes a directory at a time. Import rules: like package device, the standard
// library only, and device/atomicfile.
package journal
