package journal

import (
	"testing"
	"time"
)

// BenchmarkAppend is one entry written and fsync'd, with a checkpoint every 64 and rotations
// at the default 1 MiB, on the test's temporary directory.
func BenchmarkAppend(b *testing.B) {
	j, err := Open(b.TempDir(), Options{Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	e := cutEntry("owner")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}
