package livekit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/lenscap/lenscap/device"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
)

// errLost: the SDK gave up the connection (a server restart, a network outage it could not
// resume from).
var errLost = errors.New("livekit: disconnected from the room")

// joinTimeout bounds one attempt to join.
const joinTimeout = 10 * time.Second

// session joins the room once and keeps it in step with the device until the connection is
// lost or ctx ends. joined says whether it got in.
func (p *Publisher) session(ctx context.Context) (joined bool, err error) {
	cb, lost, rejoined := p.callbacks()
	room := lksdk.NewRoom(cb)
	token, err := p.token()
	if err != nil {
		return false, err
	}
	jctx, cancel := context.WithTimeout(ctx, joinTimeout)
	err = room.JoinWithContextAndToken(jctx, p.cfg.URL, token, lksdk.WithAutoSubscribe(false), lksdk.WithLogger(sdkLogger(p.log)))
	cancel()
	if err != nil {
		p.stats.Failures.Add(1)
		return false, fmt.Errorf("livekit: join %s at %s: %w", p.cfg.Room, p.cfg.URL, err)
	}
	p.stats.Joins.Add(1)
	p.connected.Store(true)
	p.log.Info("joined the room", "room", p.cfg.Room, "identity", p.cfg.Identity)
	s := &roomState{room: room, published: make(map[device.Kind]*published)}
	defer func() {
		p.connected.Store(false)
		p.setParticipants(0)
		s.forget()
		room.Disconnect()
		p.stats.Disconnects.Add(1)
	}()
	for {
		p.reconcile(s)
		p.setParticipants(viewers(room))
		select {
		case <-ctx.Done():
			return true, nil
		case <-lost:
			return true, errLost
		case <-rejoined:
			p.rejoined(s)
		case <-p.wake:
		}
	}
}

// callbacks are the room's: lost is closed when the SDK gives the connection up, rejoined
// signalled when it got back in by itself.
func (p *Publisher) callbacks() (cb *lksdk.RoomCallback, lost, rejoined chan struct{}) {
	lost = make(chan struct{})
	var once sync.Once
	cb = lksdk.NewRoomCallback()
	cb.OnDisconnected = func() { once.Do(func() { close(lost) }) }
	// The SDK resumes, or joins again, by itself after a short outage (a server restart): the
	// room then has a new participant for the camera, which gets the privacy state again.
	rejoined = make(chan struct{}, 1)
	cb.OnReconnecting = func() {
		p.connected.Store(false)
		p.log.Warn("connection to the room lost: reconnecting", "room", p.cfg.Room)
	}
	cb.OnReconnected = func() {
		p.connected.Store(true)
		p.stats.Rejoins.Add(1)
		p.log.Info("back in the room", "room", p.cfg.Room)
		select {
		case rejoined <- struct{}{}:
		default:
		}
	}
	cb.OnParticipantConnected = func(*lksdk.RemoteParticipant) { p.signal() }
	cb.OnParticipantDisconnected = func(*lksdk.RemoteParticipant) { p.signal() }
	return cb, lost, rejoined
}

// token is the join token: the configured one, or one the camera mints for itself, valid for
// the join only (each attempt mints a new one), carrying the privacy state as attributes.
func (p *Publisher) token() (string, error) {
	p.mu.Lock()
	attrs := maps.Clone(p.attrs)
	p.mu.Unlock()
	return joinToken(p.cfg, attrs)
}

// joinToken is cfg's token, or one minted for the camera: it may publish its camera and
// microphone and update its own attributes, and subscribes to nothing.
func joinToken(cfg Config, attrs map[string]string) (string, error) {
	if cfg.Token != "" {
		return cfg.Token, nil
	}
	at := auth.NewAccessToken(cfg.APIKey, cfg.APISecret)
	at.SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: cfg.Room, CanSubscribe: new(false),
		CanUpdateOwnMetadata: new(true),
		CanPublishSources:    []string{"camera", "microphone"}}).
		SetIdentity(cfg.Identity).SetName(cfg.Identity).SetAttributes(attrs).
		SetValidFor(time.Minute)
	t, err := at.ToJWT()
	if err != nil {
		return "", fmt.Errorf("livekit: mint the join token: %w", err)
	}
	return t, nil
}

// roomState is what one session has published.
type roomState struct {
	room      *lksdk.Room
	published map[device.Kind]*published
	attrs     map[string]string // last sent
}

type published struct {
	pt  *pubTrack
	sid string
}

// rejoined puts the room right after the SDK got back in by itself. After a resume the
// publications are ours still; after a rejoin (a server restart) it republished what it had
// under new sids: those are unpublished and reconcile publishes what is live now. The privacy
// state is sent again either way (a rejoin is a new participant).
func (p *Publisher) rejoined(s *roomState) {
	current := map[string]bool{}
	for _, pub := range s.room.LocalParticipant.TrackPublications() {
		current[pub.SID()] = true
	}
	ours := map[string]bool{}
	for k, pub := range s.published {
		if current[pub.sid] {
			ours[pub.sid] = true
			continue
		}
		pub.pt.local.Store(nil)
		delete(s.published, k)
	}
	for sid := range current {
		if ours[sid] {
			continue
		}
		if err := s.room.LocalParticipant.UnpublishTrack(sid); err != nil {
			p.log.Warn("unpublish after a rejoin", "sid", sid, "err", err)
		}
	}
	s.attrs = nil
}

// viewers counts the room's other participants that may watch: another lenscap camera (it
// carries the privacy attributes) is not one, or two cameras in a room would keep each other
// open on demand.
func viewers(room *lksdk.Room) int {
	n := 0
	for _, rp := range room.GetRemoteParticipants() {
		if _, camera := rp.Attributes()["lenscap.video.private"]; !camera {
			n++
		}
	}
	return n
}

// forget drops what the closed room had: its tracks are written to no more.
func (s *roomState) forget() {
	for _, pub := range s.published {
		pub.pt.local.Store(nil)
	}
}

// reconcile makes the room's publications those of the device's live tracks, and its
// attributes the privacy state.
func (p *Publisher) reconcile(s *roomState) {
	p.mu.Lock()
	want := maps.Clone(p.tracks)
	attrs := p.attrs
	p.mu.Unlock()
	for k, pub := range s.published {
		if want[k] == pub.pt {
			continue
		}
		pub.pt.local.Store(nil)
		if err := s.room.LocalParticipant.UnpublishTrack(pub.sid); err != nil {
			p.log.Warn("unpublish", "kind", k, "err", err)
		}
		delete(s.published, k)
		p.stats.Unpublishes.Add(1)
		p.log.Info("track unpublished", "kind", k, "room", p.cfg.Room)
	}
	for k, pt := range want {
		if s.published[k] != nil {
			continue
		}
		sid, err := pt.publish(s.room)
		if err != nil {
			p.stats.Failures.Add(1)
			p.log.Error("publish: trying again", "kind", k, "in", p.cfg.RetryMin, "err", err)
			time.AfterFunc(p.cfg.RetryMin, p.signal) // nothing else would wake reconcile
			continue
		}
		s.published[k] = &published{pt: pt, sid: sid}
		p.stats.Publishes.Add(1)
		p.log.Info("track published", "kind", k, "room", p.cfg.Room, "sid", sid)
	}
	if attrs != nil && !maps.Equal(attrs, s.attrs) {
		s.room.LocalParticipant.SetAttributes(attrs)
		s.attrs = attrs
	}
}

// setParticipants records the room's other participants and tells OnParticipants of a change.
func (p *Publisher) setParticipants(n int) {
	if old := p.participants.Swap(int64(n)); old != int64(n) && p.cfg.OnParticipants != nil {
		p.cfg.OnParticipants(n)
	}
}

// trackSource is how the room names a kind's track.
func trackSource(k device.Kind) (string, livekit.TrackSource) {
	if k == device.KindAudio {
		return "microphone", livekit.TrackSource_MICROPHONE
	}
	return "camera", livekit.TrackSource_CAMERA
}
