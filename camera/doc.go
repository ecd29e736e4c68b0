// Package camera holds lenscap's capture hardware: cameras with their H.264 encoders and
// microphones with their audio encoders, each a device.Driver.
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
// Constructors start nothing and no goroutine is ever started: frames are produced inside
// ReadFrame, on the caller's goroutine.
package camera
