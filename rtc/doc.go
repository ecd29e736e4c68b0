// Package rtc serves the device's tracks to remote viewers over pion/webrtc: WebSocket
// signalling where the device is the offerer, WHEP, removeTrack/addTrack with the web
// platform's semantics on top of pion's, serialised renegotiation, an encode-once fan-out,
// and keyframe requests.
//
// Secure by default: at most Config.MaxViewers viewers (WebSocket and WHEP together, those
// being set up included), refused before any peer connection is made; a viewer's SDP is
// checked with pion's parser before pion sees it (a known DTLS fingerprint, one video and
// one audio m-section at most, no data channel, a bounded size); WebSocket viewers are
// pinged and dropped when they stop answering. Server's ViewersRefused, SDPRefused and
// IdleDropped count what was refused.
//
// Import rules: rtc imports pion and package device (for its tracks and frames), never
// camera, mqtt, gpio or board.
package rtc
