package livekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lenscap/lenscap/device"
)

// Config configures a Publisher.
type Config struct {
	// URL is the LiveKit server's WebSocket URL (ws:// or wss://).
	URL string
	// APIKey and APISecret let the camera mint its own join token (the SDK signs it); Token is
	// a join token minted elsewhere. One of the two.
	APIKey, APISecret, Token string
	// Room and Identity are the room to join and the camera's identity in it.
	Room, Identity string
	// RetryMin and RetryMax bound the backoff between attempts to join. Zero: 1 s and 30 s.
	RetryMin, RetryMax time.Duration
	// OnParticipants, when set, is told how many other participants the room has whenever
	// that changes (on demand, the camera opens for them as for direct viewers). It must not
	// block.
	OnParticipants func(n int)
	Logger         *slog.Logger
}

// ErrConfig is returned by New for an incomplete configuration.
var ErrConfig = errors.New("livekit: bad configuration")

// Publisher publishes the device's live tracks into a LiveKit room (see the package doc).
type Publisher struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	tracks map[device.Kind]*pubTrack // the device's live tracks, cloned; what the room should have
	attrs  map[string]string         // the privacy state as participant attributes
	wake   chan struct{}             // signalled when tracks or attrs change

	connected    atomic.Bool
	participants atomic.Int64
	stats        Stats
}

// Stats are the publisher's counters, for metrics.
type Stats struct {
	Joins, Rejoins, Disconnects, Publishes, Unpublishes, Failures atomic.Uint64
	Frames                                                        atomic.Uint64 // frames written into the room
}

// New returns a publisher; Run joins the room.
func New(cfg Config) (*Publisher, error) {
	if cfg.URL == "" || cfg.Room == "" || cfg.Identity == "" {
		return nil, fmt.Errorf("%w: a URL, a room and an identity are needed", ErrConfig)
	}
	if (cfg.Token == "") == (cfg.APIKey == "" || cfg.APISecret == "") {
		return nil, fmt.Errorf("%w: give an API key and secret, or a token (not both)", ErrConfig)
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{cfg: cfg, log: cfg.Logger, tracks: make(map[device.Kind]*pubTrack),
		wake: make(chan struct{}, 1)}, nil
}

// Connected reports whether the publisher is in the room now.
func (p *Publisher) Connected() bool { return p.connected.Load() }

// Participants is the number of other participants in the room (0 when not connected).
func (p *Publisher) Participants() int { return int(p.participants.Load()) }

// Stats returns the counters.
func (p *Publisher) Stats() *Stats { return &p.stats }

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// AddTracks implements device.Sink: each track is cloned and published by Run. It does not
// block (the device's lock is held).
func (p *Publisher) AddTracks(ts []*device.Track) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range ts {
		if old := p.tracks[t.Kind()]; old != nil {
			old.stop()
		}
		pt, err := newPubTrack(t, &p.stats)
		if err != nil {
			p.log.Error("track not published", "kind", t.Kind(), "err", err)
			continue
		}
		p.tracks[t.Kind()] = pt
	}
	p.signal()
}

// RemoveTracks implements device.Sink: the clones are stopped before it returns (no frame is
// written into the room any more, and the source can close); Run unpublishes them.
func (p *Publisher) RemoveTracks(ts []*device.Track) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range ts {
		if pt := p.tracks[t.Kind()]; pt != nil && pt.orig == t {
			pt.stop()
			delete(p.tracks, t.Kind())
		}
	}
	p.signal()
}

// StateChanged tells the room the privacy state (participant attributes), at the next chance.
// It does not block: the device's watcher calls it.
func (p *Publisher) StateChanged(st device.Status) {
	attrs := map[string]string{}
	for _, k := range device.Kinds {
		ks := st.Kind(k)
		attrs["lenscap."+string(k)+".private"] = fmt.Sprint(ks.Private)
		attrs["lenscap."+string(k)+".by"] = string(ks.By)
	}
	p.mu.Lock()
	p.attrs = attrs
	p.mu.Unlock()
	p.signal()
}

// Run joins the room and keeps it in step with the device's tracks and state until ctx ends;
// a lost connection is joined again with backoff. It returns nil.
func (p *Publisher) Run(ctx context.Context) error {
	delay := time.Duration(0)
	for ctx.Err() == nil {
		if delay > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
		}
		joined, err := p.session(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case joined:
			delay = p.cfg.RetryMin // it worked for a while: start over
		default:
			delay = min(max(2*delay, p.cfg.RetryMin), p.cfg.RetryMax)
		}
		p.log.Warn("not in the room: joining again", "room", p.cfg.Room, "in", delay, "err", err)
	}
	return nil
}
