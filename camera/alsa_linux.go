//go:build linux

package camera

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gen2brain/alsa"
)

// alsaSource opens ALSA hardware capture devices (hw:card,device) with gen2brain/alsa: pure
// Go, no plugins, so rate, channels and S16_LE must be what the card does.
type alsaSource struct{ card, device uint }

func (a alsaSource) OpenPCM(rate, channels, periodFrames int) (PCMReader, error) {
	cfg := &alsa.Config{
		Channels:    uint32(channels),
		Rate:        uint32(rate),
		PeriodSize:  uint32(periodFrames),
		PeriodCount: 4,
		Format:      alsa.SNDRV_PCM_FORMAT_S16_LE,
	}
	pcm, err := alsa.PcmOpen(a.card, a.device, alsa.PCM_IN, cfg)
	if err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return nil, fmt.Errorf("%w: %v", ErrBusy, err)
		}
		return nil, fmt.Errorf("%w: ALSA hw:%d,%d (%d Hz, %d channels, S16_LE): %v", ErrGone, a.card, a.device, rate, channels, err)
	}
	return &alsaReader{pcm: pcm, rate: rate}, nil
}

// alsaReader is an open ALSA capture. ReadPCM blocks at most about one period; Close waits
// for it, then closes the device.
type alsaReader struct {
	mu     sync.Mutex
	pcm    *alsa.PCM
	rate   int
	closed atomic.Bool
}

func (r *alsaReader) ReadPCM(buf []int16) (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return time.Time{}, errors.New("closed")
	}
	n, err := r.pcm.Read(buf)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrGone, err)
	}
	frames := n
	return time.Now().Add(-time.Duration(frames) * time.Second / time.Duration(r.rate)), nil
}

func (r *alsaReader) Close() error {
	r.closed.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pcm.Close()
}
