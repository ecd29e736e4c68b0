package chromiumtest

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const harnessPage = `<!doctype html>
<title>harness</title>
<p id="p">hello</p>
<script>
  window.answer = 42;
  console.log('ready', 1);
  setTimeout(() => { throw new Error('late boom'); }, 0);
</script>`

func TestStartWithoutChromiumReturnsErrNotFound(t *testing.T) {
	_, err := Start(context.Background(), Options{Path: filepath.Join(t.TempDir(), "no-chromium")})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start with a missing binary: err = %v, want ErrNotFound", err)
	}
}

func TestBrowserNavigatesEvaluatesScreenshotsAndCloses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, harnessPage)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := New(t)

	if err := b.Navigate(ctx, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}

	var text string
	if err := b.Eval(ctx, `document.getElementById('p').textContent`, &text); err != nil || text != "hello" {
		t.Errorf("Eval textContent = %q, %v; want hello", text, err)
	}
	var answer int
	if err := b.Eval(ctx, `window.answer`, &answer); err != nil || answer != 42 {
		t.Errorf("Eval window.answer = %d, %v; want 42", answer, err)
	}

	var resolved struct {
		N int    `json:"n"`
		S string `json:"s"`
	}
	if err := b.Eval(ctx, `new Promise((resolve) => setTimeout(() => resolve({n: 7, s: 'x'}), 10))`, &resolved); err != nil || resolved.N != 7 || resolved.S != "x" {
		t.Errorf("Eval promise = %+v, %v; want {7 x}", resolved, err)
	}

	var jsErr *JSError
	if err := b.Eval(ctx, `(() => { throw new Error('boom'); })()`, nil); !errors.As(err, &jsErr) || !strings.Contains(jsErr.Text, "boom") {
		t.Errorf("Eval of a throw: err = %v, want a JSError mentioning boom", err)
	}
	if err := b.Eval(ctx, `Promise.reject(new Error('nope'))`, nil); !errors.As(err, &jsErr) || !strings.Contains(jsErr.Text, "nope") {
		t.Errorf("Eval of a rejected promise: err = %v, want a JSError mentioning nope", err)
	}

	if err := b.WaitFor(ctx, `true`, 10*time.Millisecond); err != nil {
		t.Errorf("WaitFor(true): %v", err)
	}
	waitUntil(t, 5*time.Second, "uncaught exception recorded", func() bool {
		for _, e := range b.Exceptions() {
			if strings.Contains(e.Text, "late boom") {
				return true
			}
		}
		return false
	})
	waitUntil(t, 5*time.Second, "console message recorded", func() bool {
		for _, m := range b.Console() {
			if m.Source == "console" && m.Level == "log" && m.Text == "ready 1" {
				return true
			}
		}
		return false
	})

	shot, err := b.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("Screenshot is not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() == 0 || r.Dy() == 0 {
		t.Errorf("Screenshot is empty: %v", r)
	}

	processes := descendants(b.cmd.Process.Pid)
	if runtime.GOOS == "linux" && len(processes) < 2 {
		t.Errorf("chromium runs %d processes, want a browser and its children", len(processes))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, pid := range processes {
		if alive(pid) {
			t.Errorf("process %d of chromium is alive after Close", pid)
		}
	}
	if _, err := os.Stat(b.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("profile dir %s after Close: %v, want it removed", b.dir, err)
	}
	if err := b.Eval(ctx, `1`, nil); err == nil {
		t.Error("Eval after Close succeeded")
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting: %s", what)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
