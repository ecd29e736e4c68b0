// Package camera holds lenscap's capture hardware: cameras with their H.264 encoders and
// microphones with their audio encoders, each a device.Driver.
//
// Real hardware (Linux; pure Go over golang.org/x/sys/unix and camera/v4l2):
//
//   - V4L2Camera: a V4L2 capture node (USB UVC camera, vivid), single- or multi-planar MMAP
//     streaming of YU12, NV12, YUYV or MJPG, encoded by a V4L2 memory-to-memory encoder
//     (bcm2835-codec on a Pi 4; vicodec's FWHT on the emulated board) or, when there is
//     none, by an ffmpeg libx264 subprocess (EncoderAuto); a camera's own H.264 is passed
//     through, completed with SPS and PPS before IDRs;
//   - RPiCam: a CSI camera through an rpicam-vid subprocess, its H.264 or raw frames into
//     lenscap's encoder;
//   - SyntheticCamera: a generated sensor through a real encoder (tests, benchmarks, the
//     emulated board's encoder test);
//   - Microphone: ALSA capture (gen2brain/alsa, hw:C,D) or any PCMSource, encoded as Opus
//     (gopus) or PCMU in 20 ms frames, by the encoder the test tone uses too.
//
// Release is physical: a stream's Close returns after its device files are closed, its
// buffers unmapped and its helper process reaped. A vanished camera (ErrGone), an encoder
// failure or a helper's exit (ErrEncoder) ends ReadFrame with an error; no stale or
// unencoded frame is returned after it.
//
// This package's simulated sources stand in for the hardware on the simulated board and in
// tests:
//
//   - TestPattern, a camera that loops an embedded H.264 test clip (a test pattern with a
//     frame counter, 640x360 at 30 fps, constrained baseline) in real time;
//   - TestTone, a microphone that hears a sine tone, encoded as Opus or PCMU.
//
// They behave like hardware where lenscap can observe it: frames are paced by a clock and
// stamped with their capture time, a second Open while a stream is open fails as a busy
// /dev/video0 does, Close releases the device before it returns, and opens and closes are
// counted. Test hooks make the next Open fail (FailNextOpen) or unplug the device under an
// open stream (Vanish).
//
// Constructors start nothing. The simulated drivers, the memory-to-memory encoder, V4L2
// passthrough, rpicam-vid's H.264 and the microphone produce frames inside ReadFrame, on the
// caller's goroutine; the ffmpeg encoder runs two goroutines per stream (feeding stdin,
// reading stdout) and one reaping the process, all ended by Close.
package camera
