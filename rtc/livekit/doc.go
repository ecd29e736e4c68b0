// Package livekit publishes the camera into a LiveKit room, for more viewers than a Pi-class
// camera can serve itself: the SFU forwards the camera's one copy of each track to every
// subscriber, on as many servers as the deployment has.
//
// The Publisher is a device.Sink beside the rtc server: it is given the same tracks, clones
// them (device.Track.Clone: the same encoded frames, no second encoder) and publishes the
// clones with LiveKit's Go SDK (built on pion). A cut is removeTrack on the camera's connection
// to the SFU: RemoveTracks stops the clones at once (the device's gate, shared by the clones,
// has already closed) and then unpublishes them, which removes the track from every
// subscriber; a lift publishes again, keyframe first. The privacy state goes to the room as
// the camera participant's attributes, so a LiveKit app can show "camera off — privacy
// button". The connection is kept with backoff: after a server restart or a network outage
// the publisher joins again and publishes what is live then, never a private kind.
//
// Import rules: like rtc (device, pion), plus LiveKit's SDK and protocol.
package livekit
