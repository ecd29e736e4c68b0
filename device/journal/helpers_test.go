package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock starts at a fixed time and moves 1 ms per reading unless set.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 5, 1, 12, 0, 0, 1, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func open(t testing.TB, dir string, opts Options) *Journal {
	t.Helper()
	if opts.Now == nil {
		opts.Now = newClock().Now
	}
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// cut is an entry as the device writes one.
func cutEntry(who string) Entry {
	return Entry{Event: "cut", Kinds: []string{"video", "audio"}, By: "button", Who: who}
}

func appendN(t testing.TB, j *Journal, n int) {
	t.Helper()
	for i := range n {
		if _, err := j.Append(cutEntry(string(rune('a' + i%26)))); err != nil {
			t.Fatal(err)
		}
	}
}

// crash leaves j as a power cut would: the file closed with no checkpoint.
func crash(t testing.TB, j *Journal) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	j.closed = true
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	b := append(bytes.Join(lines, []byte{'\n'}), '\n')
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func entries(t testing.TB, path string) []Entry {
	t.Helper()
	var out []Entry
	for i := range readLines(t, path) {
		e, err := decodeAt(filepath.Base(path), readLines(t, path), i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func mustVerify(t testing.TB, dir string) Report {
	t.Helper()
	rep, err := Verify(dir, nil)
	if err != nil {
		t.Fatalf("verify: %v (report %+v)", err, rep)
	}
	return rep
}

func brokenAt(t testing.TB, err error) *BrokenError {
	t.Helper()
	var be *BrokenError
	if !errors.Is(err, ErrBroken) || !errors.As(err, &be) {
		t.Fatalf("error %v, want a *BrokenError", err)
	}
	return be
}

func mustMarshal(t testing.TB, e Entry) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
