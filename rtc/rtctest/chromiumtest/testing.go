package chromiumtest

import (
	"context"
	"errors"
	"os"
	"testing"
)

// New starts Chromium for t. It skips t when Chromium is not installed, unless the
// environment sets LENSCAP_REQUIRE_CHROMIUM (make test does: it installs Chromium), and
// fails it on any other start error. The browser is closed by t.Cleanup,
// which first logs the page's console and exceptions if t failed.
func New(t testing.TB) *Browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultStartTimeout)
	defer cancel()
	b, err := Start(ctx, Options{})
	if errors.Is(err, ErrNotFound) && os.Getenv("LENSCAP_REQUIRE_CHROMIUM") == "" {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if logs := b.Logs(); logs != "" {
				t.Logf("chromium console and exceptions:\n%s", logs)
			}
		}
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}
