package rtc

import (
	"context"
	"time"

	"github.com/pion/webrtc/v4"
)

// ICE restart: a viewer whose path broke (a phone that changed networks, a relay that went
// away) is offered new ICE credentials and candidates on the same session, rather than ended.
// Disconnected for iceRestartAfter, or failed, the device re-offers with ICERestart; a path that
// cannot be restored after maxICERestarts ends the session as before (the page reconnects).

const (
	iceRestartAfter = 250 * time.Millisecond
	maxICERestarts  = 3
)

// iceRestart is a session's restart bookkeeping.
type iceRestart struct {
	wanted bool        // a restart offer is to be sent when no offer is outstanding
	count  int         // restarts since the connection was last connected
	timer  *time.Timer // runs while disconnected
	timerC <-chan time.Time
}

// onState updates the bookkeeping with a connection state; end says the session is over.
func (r *iceRestart) onState(st webrtc.PeerConnectionState) (end bool) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		r.stopTimer()
		r.count, r.wanted = 0, false
	case webrtc.PeerConnectionStateDisconnected:
		if r.timer == nil {
			r.timer = time.NewTimer(iceRestartAfter)
			r.timerC = r.timer.C
		}
	case webrtc.PeerConnectionStateFailed:
		r.stopTimer()
		return !r.want()
	case webrtc.PeerConnectionStateClosed:
		return true
	}
	return false
}

// want asks for a restart; false when the session has had its share.
func (r *iceRestart) want() bool {
	if r.count >= maxICERestarts {
		return false
	}
	r.wanted = true
	return true
}

func (r *iceRestart) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer, r.timerC = nil, nil
	}
}

// restartDue is the disconnected timer firing: ask for a restart.
func (ss *session) restartDue(ctx context.Context) error {
	ss.ice.timer, ss.ice.timerC = nil, nil
	if !ss.ice.want() {
		return nil // failed will end it
	}
	return ss.reconcile(ctx)
}

// offerOptions is the next offer's: an ICE restart when one is wanted.
func (ss *session) offerOptions() *webrtc.OfferOptions {
	if !ss.ice.wanted {
		return nil
	}
	ss.ice.wanted = false
	ss.ice.count++
	ss.log.Info("viewer's path lost: ICE restart", "attempt", ss.ice.count)
	return &webrtc.OfferOptions{ICERestart: true}
}
