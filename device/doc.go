// Package device owns lenscap's media sources and tracks, with the web platform's semantics
// (MediaStreamTrack.stop, reference-counted sources), and the privacy state machine with its
// persistence. It is the one place where "privacy" is decided.
//
// Import rules (enforced by the deps test at the module root): device imports only the standard
// library. It declares the small interfaces it consumes: Driver and Stream (implemented by
// package camera), Sink (implemented by package rtc).
package device
