// Package rtc serves the device's tracks to remote viewers over pion/webrtc: WebSocket
// signalling where the device is the offerer, WHEP, removeTrack/addTrack with the web
// platform's semantics on top of pion's, serialised renegotiation, an encode-once fan-out,
// and keyframe requests.
//
// Import rules: rtc imports pion and package device (for its tracks and frames), never
// camera, mqtt, gpio or board.
package rtc
