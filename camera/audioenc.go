package camera

import (
	"fmt"
	"math"

	"github.com/thesyncim/gopus"

	"github.com/lenscap/lenscap/device"
)

// audioEncoder encodes 20 ms frames of mono float samples as Opus or PCMU; the test tone
// and the microphone share it. Its buffers are reused: encode allocates nothing.
type audioEncoder struct {
	enc *gopus.Encoder // nil for PCMU
	buf []byte         // the encoded frame; valid until the next encode
}

// audioCodec is the device.Codec and sample rate of an encoding.
func audioCodec(e AudioEncoding) (device.Codec, int, error) {
	switch e {
	case AudioOpus:
		return device.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1"}, 48000, nil
	case AudioPCMU:
		return device.Codec{MimeType: "audio/PCMU", ClockRate: 8000, Channels: 1}, 8000, nil
	}
	return device.Codec{}, 0, fmt.Errorf("unknown audio encoding %v", e)
}

// newAudioEncoder makes an encoder of samples at sampleRate (48000 for Opus from the
// tone; Opus also takes 8, 12, 16 and 24 kHz; PCMU 8 kHz).
func newAudioEncoder(e AudioEncoding, sampleRate, opusBitrate int) (*audioEncoder, error) {
	spf := sampleRate / audioFrameRate
	if e == AudioPCMU {
		return &audioEncoder{buf: make([]byte, spf)}, nil
	}
	enc, err := gopus.NewEncoder(gopus.EncoderConfig{
		SampleRate: sampleRate, Channels: 1, Application: gopus.ApplicationAudio,
	})
	if err == nil {
		err = enc.SetBitrate(opusBitrate)
	}
	if err != nil {
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	return &audioEncoder{enc: enc, buf: make([]byte, 4000)}, nil // 4000: enough for any Opus packet
}

// encode encodes one frame of samples in [-1, 1]. It returns nil (and no error) while the
// Opus encoder is still filling its lookahead: no packet for that frame.
func (a *audioEncoder) encode(pcm []float32) ([]byte, error) {
	if a.enc == nil {
		for i, v := range pcm {
			a.buf[i] = mulaw(int16(math.Round(float64(max(-1, min(v, 1))) * math.MaxInt16)))
		}
		return a.buf[:len(pcm)], nil
	}
	k, err := a.enc.Encode(pcm, a.buf)
	if err != nil {
		return nil, fmt.Errorf("opus encode: %w", err)
	}
	if k == 0 {
		return nil, nil
	}
	return a.buf[:k], nil
}
