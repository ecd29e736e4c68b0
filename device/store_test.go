package device

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOfMissingFileIsThePublicZeroState(t *testing.T) {
	st, err := NewStore(t.TempDir()).Load()
	if err != nil || st != (State{}) {
		t.Errorf("Load = %+v, %v; want the zero state", st, err)
	}
}

func TestSaveThenLoadRoundTrips(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "new", "dir"))
	want := State{Video: KindState{Private: true, By: ByButton, Since: t0}, Audio: KindState{By: ByRemote, Since: t0}, Seq: 9}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !sameState(got, want) {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
}

func TestSavedFileIsVersionedJSON(t *testing.T) {
	s := NewStore(t.TempDir())
	if err := s.Save(State{Audio: KindState{Private: true, By: ByRemote, Since: t0}, Seq: 1}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("state file is not JSON: %v\n%s", err, b)
	}
	if m["version"] != float64(1) {
		t.Errorf("version = %v in %s", m["version"], b)
	}
}

func TestLoadRejectsUnreadableStates(t *testing.T) {
	for name, content := range map[string]string{
		"corrupt":         `{"version":1,"video":{"private":tr`,
		"empty":           ``,
		"null":            `null`,
		"no version":      `{"video":{"private":true}}`,
		"unknown version": `{"version":2,"video":{"private":false},"audio":{"private":false}}`,
		"unknown by":      `{"version":1,"video":{"private":false,"by":"mqtt"}}`,
		"wrong type":      `{"version":1,"video":{"private":"no"}}`,
		"array":           `[1,2,3]`,
	} {
		s := NewStore(t.TempDir())
		if err := os.WriteFile(s.Path(), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if st, err := s.Load(); err == nil {
			t.Errorf("%s: Load = %+v, nil; want an error", name, st)
		}
	}
}

func TestLoadOfDirectoryInPlaceOfFileIsAnError(t *testing.T) {
	s := NewStore(t.TempDir())
	if err := os.Mkdir(s.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(); err == nil {
		t.Error("Load of a directory succeeded")
	}
}

func TestSaveIsAtomicAndLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(dir)
	for i := range 6 {
		if err := s.Save(State{Video: KindState{Private: i%2 == 0, By: ByRemote, Since: t0}, Seq: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != stateFile {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %v, want only %s", names, stateFile)
	}
	got, err := s.Load()
	if err != nil || got.Seq != 5 {
		t.Errorf("Load = %+v, %v", got, err)
	}
}

func TestFailingRenameIsAnErrorAndLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(dir)
	if err := s.Save(State{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	// A directory where the file would be renamed: the rename fails.
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.Path(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Path(), "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(State{Seq: 2}); err == nil {
		t.Fatal("Save over a non-empty directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestSaveUnderARegularFileFails(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewStore(filepath.Join(parent, "state")).Save(State{}); err == nil {
		t.Error("Save under a regular file succeeded")
	}
}

func sameState(a, b State) bool {
	same := func(x, y KindState) bool { return x.Private == y.Private && x.By == y.By && x.Since.Equal(y.Since) }
	return a.Seq == b.Seq && same(a.Video, b.Video) && same(a.Audio, b.Audio)
}

func FuzzStoreLoad(f *testing.F) {
	for _, seed := range []string{
		`{"version":1,"video":{"private":true,"by":"button","since":"2025-01-02T03:04:05Z"},"audio":{"private":false,"since":"0001-01-01T00:00:00Z"},"seq":3}`,
		`{"version":1,"video":{"private":true,"by":"boot"},"audio":{"private":true,"by":"remote"},"seq":18446744073709551615}`,
		`{"version":1}`,
		`{"version":2}`,
		`{"version":1,"video":{"by":"mqtt"}}`,
		`{"version":1,"video":{"since":"not a time"}}`,
		`{"version":1,"VIDEO":{"PRIVATE":true,"By":"button"},"seq":-1}`,
		`{"version":1,"video":null,"audio":[]}`,
		`null`, `[]`, `""`, ``, "\x00\xff", `{"version":1.5}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewStore(t.TempDir())
		if err := os.WriteFile(s.Path(), data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := s.Load()
		if err != nil {
			if st != (State{}) {
				t.Errorf("Load failed (%v) but returned %+v", err, st)
			}
			return
		}
		for _, k := range Kinds {
			switch by := st.Kind(k).By; by {
			case "", ByButton, ByRemote, ByBoot:
			default:
				t.Fatalf("Load accepted %s by %q from %q", k, by, data)
			}
		}
		// What was loaded saves and loads back the same.
		if err := s.Save(st); err != nil {
			return // e.g. a time JSON cannot encode
		}
		again, err := s.Load()
		if err != nil || !sameState(again, st) {
			t.Errorf("round trip of %+v gave %+v, %v", st, again, err)
		}
	})
}
