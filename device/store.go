package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lenscap/lenscap/device/atomicfile"
)

// stateFile is the name of the privacy state file in the state directory.
const stateFile = "privacy.json"

// stateVersion is the version of the file format.
const stateVersion = 1

type stateOnDisk struct {
	Version int `json:"version"`
	State
}

// Store persists the privacy state: atomically (a temporary file written, fsync'd, renamed
// over the old one, and the directory fsync'd), so a power cut leaves the old state or the
// new one, never a mix.
type Store struct {
	dir string
}

// NewStore returns a store in dir, which must exist or be creatable.
func NewStore(dir string) *Store { return &Store{dir: dir} }

// Path is the state file's path.
func (s *Store) Path() string { return filepath.Join(s.dir, stateFile) }

// Load reads the state. A missing file (first boot) gives the zero state and no error; a file
// that cannot be read or parsed gives an error, and the caller must fail closed.
func (s *Store) Load() (State, error) {
	b, err := os.ReadFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("device: read state: %w", err)
	}
	var d stateOnDisk
	if err := json.Unmarshal(b, &d); err != nil {
		return State{}, fmt.Errorf("device: parse state %s: %w", s.Path(), err)
	}
	if d.Version != stateVersion {
		return State{}, fmt.Errorf("device: state %s: unknown version %d", s.Path(), d.Version)
	}
	for _, k := range Kinds {
		if by := d.State.Kind(k).By; by != "" && by != ByButton && by != ByRemote && by != ByBoot {
			return State{}, fmt.Errorf("device: state %s: %s set by unknown %q", s.Path(), k, by)
		}
	}
	return d.State, nil
}

// Save writes the state durably; when it returns nil the state survives a power cut.
func (s *Store) Save(st State) error {
	b, err := json.Marshal(stateOnDisk{Version: stateVersion, State: st})
	if err != nil {
		return fmt.Errorf("device: encode state: %w", err)
	}
	if err := atomicfile.WriteFile(s.Path(), append(b, '\n')); err != nil {
		return fmt.Errorf("device: save state: %w", err)
	}
	return nil
}
