package main

import (
	"strings"
	"sync"
	"time"
)

// packetLogSize bounds the packets remembered per kind (arrival and RTP timestamp): a viewer
// left running for days must not grow.
const packetLogSize = 1 << 14

// packetRecord is one RTP packet as the viewer received it.
type packetRecord struct {
	arrival time.Time
	ts      uint32 // RTP timestamp: the frame's capture time on the camera's clock
	seq     uint16
	add     int // the track (1-based, in the order they were added) it came on
}

// trackAdd is one track of a kind, as added by the camera (the first offer, each lift).
type trackAdd struct {
	added    time.Time
	offered  time.Time // the offer that began sending the kind, before the track came
	codec    string
	gotFirst bool
	firstKey bool      // its first frame was a keyframe
	firstAt  time.Time // when its first frame was complete
}

// frame is the frame being received (the packets of one RTP timestamp).
type frame struct {
	open bool
	ts   uint32
	add  int
	key  bool
	last time.Time
}

// kindRecord is what the viewer received of one kind.
type kindRecord struct {
	packets, frames, keyframes int
	cur                        frame
	adds                       []trackAdd
	log                        []packetRecord // a ring of the last packetLogSize packets
	next                       int            // where the ring writes next once full
	ticked                     int            // packets at the last stats line
	sending                    bool           // the last offer sends the kind
	offeredAt                  time.Time      // the offer that began sending it
}

// recorder keeps what every track received. The track readers write it; the session loop
// reads it for the stats lines and the summary.
type recorder struct {
	mu    sync.Mutex
	kinds map[string]*kindRecord
}

func newRecorder() *recorder { return &recorder{kinds: map[string]*kindRecord{}} }

func (r *recorder) kindLocked(kind string) *kindRecord {
	k := r.kinds[kind]
	if k == nil {
		k = &kindRecord{}
		r.kinds[kind] = k
	}
	return k
}

// offered records whether an offer received at now sends kind: the first that does after
// one that did not is when the next track of kind was asked for.
func (r *recorder) offered(kind string, sending bool, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kindLocked(kind)
	if sending && !k.sending {
		k.offeredAt = now
	}
	k.sending = sending
}

// trackAdded records a new track of kind and returns its number (1 for the first).
func (r *recorder) trackAdded(kind, codec string, now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kindLocked(kind)
	k.adds = append(k.adds, trackAdd{added: now, offered: k.offeredAt, codec: codec})
	return len(k.adds)
}

// firstFrame is the first frame of a track, once complete.
type firstFrame struct {
	add     int
	key     bool
	at      time.Time
	offered time.Time // the offer that began sending the kind; zero: none seen
}

// packet records one packet of track add (numbered by trackAdded). A frame is the packets of
// one RTP timestamp, complete at its marker bit (video), at once (audio: a packet is a frame)
// or when the next one starts. It returns the track's first frame when this packet completed
// it.
func (r *recorder) packet(kind string, add int, ts uint32, seq uint16, marker bool, payload []byte, now time.Time) (firstFrame, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kindLocked(kind)
	k.packets++
	rec := packetRecord{arrival: now, ts: ts, seq: seq, add: add}
	if len(k.log) < packetLogSize {
		k.log = append(k.log, rec)
	} else {
		k.log[k.next] = rec
		k.next = (k.next + 1) % packetLogSize
	}
	var ff firstFrame
	var done bool
	if k.cur.open && (k.cur.ts != ts || k.cur.add != add) {
		ff, done = k.finishLocked()
	}
	if !k.cur.open {
		k.cur = frame{open: true, ts: ts, add: add}
	}
	k.cur.last = now
	if isKeyStart(k.codecLocked(add), payload) {
		k.cur.key = true
	}
	if kind == "audio" || marker {
		if f, ok := k.finishLocked(); ok {
			ff, done = f, true
		}
	}
	return ff, done
}

func (k *kindRecord) codecLocked(add int) string {
	if add < 1 || add > len(k.adds) {
		return ""
	}
	return k.adds[add-1].codec
}

// finishLocked counts the open frame, and returns it when it is its track's first.
func (k *kindRecord) finishLocked() (firstFrame, bool) {
	f := k.cur
	k.cur = frame{}
	if !f.open {
		return firstFrame{}, false
	}
	k.frames++
	if f.key {
		k.keyframes++
	}
	if f.add < 1 || f.add > len(k.adds) || k.adds[f.add-1].gotFirst {
		return firstFrame{}, false
	}
	a := &k.adds[f.add-1]
	a.gotFirst, a.firstKey, a.firstAt = true, f.key, f.last
	return firstFrame{add: f.add, key: f.key, at: f.last, offered: a.offered}, true
}

// kindSummary is the counts of one kind.
type kindSummary struct {
	Kind                       string
	Packets, Frames, Keyframes int
	FirstFrame                 time.Time // the first frame of the first track; zero: none
	FirstKeyframes             []bool    // per track: whether its first frame was a keyframe
	Adds                       int
	LastArrival                time.Time // the last packet's
	LastTS                     uint32    // and its RTP timestamp
}

// summary returns the counts of kind; with final, the frame still open counts.
func (r *recorder) summary(kind string, final bool) kindSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kindLocked(kind)
	if final {
		_, _ = k.finishLocked()
	}
	s := kindSummary{Kind: kind, Packets: k.packets, Frames: k.frames, Keyframes: k.keyframes, Adds: len(k.adds),
		FirstKeyframes: []bool{}}
	for _, a := range k.adds {
		if a.gotFirst {
			s.FirstKeyframes = append(s.FirstKeyframes, a.firstKey)
			if s.FirstFrame.IsZero() {
				s.FirstFrame = a.firstAt
			}
		}
	}
	if n := len(k.log); n > 0 {
		last := k.log[n-1]
		if n == packetLogSize {
			last = k.log[(k.next+packetLogSize-1)%packetLogSize]
		}
		s.LastArrival, s.LastTS = last.arrival, last.ts
	}
	return s
}

// flowing reports whether packets of kind arrived since the last call.
func (r *recorder) flowing(kind string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kindLocked(kind)
	moved := k.packets != k.ticked
	k.ticked = k.packets
	return moved
}

// codecName is the codec of a MIME type: video/H264 is H264.
func codecName(mime string) string {
	if _, after, ok := strings.Cut(mime, "/"); ok {
		return after
	}
	return mime
}

// isKeyStart reports whether an RTP payload of codec starts a keyframe: for H.264 an IDR
// NAL unit, a STAP-A whose first unit is an SPS or an IDR, or the first FU-A fragment of an
// IDR; for VP8 the first packet of a key frame. Other codecs: false.
func isKeyStart(codec string, pl []byte) bool {
	switch strings.ToUpper(codec) {
	case "H264":
		return h264KeyStart(pl)
	case "VP8":
		return vp8KeyStart(pl)
	}
	return false
}

func h264KeyStart(pl []byte) bool {
	if len(pl) < 2 {
		return false
	}
	switch pl[0] & 0x1f {
	case 5, 7: // IDR, SPS
		return true
	case 24: // STAP-A: the first aggregated unit, after its 2-byte size
		return len(pl) > 3 && (pl[3]&0x1f == 7 || pl[3]&0x1f == 5)
	case 28: // FU-A: the start of an IDR
		return pl[1]&0x80 != 0 && pl[1]&0x1f == 5
	}
	return false
}

// vp8KeyStart reads the VP8 payload descriptor (RFC 7741): the start of partition 0 whose
// payload header's P bit is 0.
func vp8KeyStart(pl []byte) bool {
	if len(pl) < 1 || pl[0]&0x10 == 0 || pl[0]&0x07 != 0 { // S bit, partition index 0
		return false
	}
	i := 1
	if pl[0]&0x80 != 0 { // X: an extension byte, then its fields
		if len(pl) < 2 {
			return false
		}
		x := pl[1]
		i++
		if x&0x80 != 0 { // I: picture id, 1 or 2 bytes
			if len(pl) <= i {
				return false
			}
			if pl[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: one byte
			i++
		}
	}
	return len(pl) > i && pl[i]&0x01 == 0
}
