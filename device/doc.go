// Package device owns lenscap's media sources and tracks, with the web platform's semantics
// (MediaStreamTrack.stop, reference-counted sources), and the privacy state machine with its
// persistence. It is the one place where "privacy" is decided.
//
// Why not pion/mediadevices' MediaStream and tracks: they have no reference counting and no
// stop() (Track.Close closes the device at once, and its driver allows one open at a time),
// and every Bind of a track builds its own encoder, so N viewers would mean N encoders. Here a
// Source counts its tracks, a Track stops as the web platform's does, and package rtc encodes
// once and fans out.
//
// Import rules (enforced by the deps test at the module root): device imports only the standard
// library. It declares the small interfaces it consumes: Driver and Stream (implemented by
// package camera), Sink (implemented by package rtc).
package device
