package mqtt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/lenscap/lenscap/device/atomicfile"
)

// RecordFile is the name of the file, in Config.StoreDir, that keeps the ids of the last
// commands with their first results.
const RecordFile = "mqtt-commands.json"

// DefaultRecordSize is how many command ids are remembered by default.
const DefaultRecordSize = 1024

const recordVersion = 1

// result is the first result of a command, kept by id.
type result struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}

type recordOnDisk struct {
	Version int      `json:"version"`
	Results []result `json:"results"` // oldest first
}

// record remembers the results of the last max command ids. With a path it is persisted
// atomically (a temporary file written and fsync'd, renamed over the old one, the directory
// fsync'd) before add or save returns, so it survives a power cut. It is not safe for
// concurrent use.
type record struct {
	path  string
	max   int
	order []string // ids, oldest first
	byID  map[string]result
}

// loadRecord reads the record at path ("" for one kept in memory only). A missing file is an
// empty record; an unreadable one is an error, with an empty record that is still usable.
func loadRecord(path string, max int) (*record, error) {
	if max <= 0 {
		max = DefaultRecordSize
	}
	r := &record{path: path, max: max, byID: make(map[string]result)}
	if path == "" {
		return r, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("mqtt: read command record: %w", err)
	}
	var d recordOnDisk
	if err := json.Unmarshal(b, &d); err != nil {
		return r, fmt.Errorf("mqtt: parse command record %s: %w", path, err)
	}
	if d.Version != recordVersion {
		return r, fmt.Errorf("mqtt: command record %s: unknown version %d", path, d.Version)
	}
	if len(d.Results) > max {
		d.Results = d.Results[len(d.Results)-max:]
	}
	for _, res := range d.Results {
		if res.ID != "" {
			r.put(res)
		}
	}
	return r, nil
}

// lookup returns the first result of a command id.
func (r *record) lookup(id string) (result, bool) {
	res, ok := r.byID[id]
	return res, ok
}

// remember records the first result of a command in memory and reports whether the id was
// new. save forgets the oldest ids beyond max and persists the rest: a batch of commands is
// remembered one by one and saved once.
func (r *record) remember(res result) bool {
	if _, seen := r.byID[res.ID]; seen {
		return false
	}
	r.put(res)
	return true
}

func (r *record) put(res result) {
	if _, ok := r.byID[res.ID]; !ok {
		r.order = append(r.order, res.ID)
	}
	r.byID[res.ID] = res
}

// trim forgets the oldest ids beyond max.
func (r *record) trim() {
	drop := len(r.order) - r.max
	if drop <= 0 {
		return
	}
	for _, id := range r.order[:drop] {
		delete(r.byID, id)
	}
	r.order = slices.Clone(r.order[drop:])
}

func (r *record) len() int { return len(r.order) }

func (r *record) save() error {
	r.trim()
	if r.path == "" {
		return nil
	}
	results := make([]result, len(r.order))
	for i, id := range r.order {
		results[i] = r.byID[id]
	}
	b, err := json.Marshal(recordOnDisk{Version: recordVersion, Results: results})
	if err != nil {
		return fmt.Errorf("mqtt: encode command record: %w", err)
	}
	if err := atomicfile.WriteFile(r.path, append(b, '\n')); err != nil {
		return fmt.Errorf("mqtt: save command record: %w", err)
	}
	return nil
}
