//go:build !linux

package camera

import "fmt"

// alsaSource is ALSA, which exists on Linux only.
type alsaSource struct{ card, device uint }

func (a alsaSource) OpenPCM(int, int, int) (PCMReader, error) {
	return nil, fmt.Errorf("ALSA hw:%d,%d: %w", a.card, a.device, ErrUnsupported)
}
