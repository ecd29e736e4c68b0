package mqtt

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestRecordKeepsTheLastIDsAcrossReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", RecordFile) // the directory is created
	r, err := loadRecord(path, 3)
	if err != nil || r.len() != 0 {
		t.Fatalf("missing record: %d results, %v; want an empty record", r.len(), err)
	}
	for i := range 5 {
		if err := addResult(r, result{ID: fmt.Sprint("c", i), OK: i%2 == 0, Code: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := addResult(r, result{ID: "c4", OK: false}); err != nil { // a second result never replaces the first
		t.Fatal(err)
	}
	again, err := loadRecord(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c0", "c1"} {
		if _, ok := again.lookup(id); ok {
			t.Errorf("%s kept beyond the bound of 3", id)
		}
	}
	for i, id := range []string{"c2", "c3", "c4"} {
		res, ok := again.lookup(id)
		if !ok || res.OK != ((i+2)%2 == 0) {
			t.Errorf("%s after a reload: %+v, %t", id, res, ok)
		}
	}
	// A smaller bound on reload keeps the newest.
	small, _ := loadRecord(path, 1)
	if _, ok := small.lookup("c4"); !ok || small.len() != 1 {
		t.Errorf("reload with a bound of 1: %d results, c4 kept: %t", small.len(), ok)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files left in the directory: %v, want only the record", entries)
	}
}

func TestUnreadableRecordIsAnErrorWithAUsableEmptyRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, RecordFile)
	for _, content := range []string{"{garbage", `{"version":99,"results":[]}`} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := loadRecord(path, 0)
		if err == nil || r == nil || r.len() != 0 {
			t.Fatalf("record %q: %v, want an error and an empty record", content, err)
		}
		if err := addResult(r, result{ID: "a", OK: true}); err != nil {
			t.Fatalf("add to the replacement record: %v", err)
		}
		if r2, err := loadRecord(path, 0); err != nil || r2.len() != 1 {
			t.Fatalf("the replacement record was not saved: %v", err)
		}
	}
}

func TestRecordInMemory(t *testing.T) {
	r, err := loadRecord("", 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := addResult(r, result{ID: id, OK: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := r.lookup("a"); ok || r.len() != 2 {
		t.Errorf("in-memory record: %d results, a kept %t; want 2, false", r.len(), ok)
	}
}

// addResult records the first result of a command and persists the record, as a batch of one.
func addResult(r *record, res result) error {
	if !r.remember(res) {
		return nil
	}
	return r.save()
}
