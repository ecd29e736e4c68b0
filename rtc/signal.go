package rtc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"
)

// ServeSignal serves one viewer whose signalling comes through c (MQTT signalling through the
// fleet's broker) exactly as a WebSocket viewer is served: the same offers for the cut and the
// lift, the same limits (its place is taken before anything is made for it; a refused viewer
// gets an error and a bye), the same ICE restarts. The caller has checked the viewer's
// credential: ctx carries its holder (WithViewer), and its deadline, the credential's
// expiry, ends the session. ServeSignal returns when the session is over, the viewer told so
// (bye); nil when the viewer or ctx ended it.
func (s *Server) ServeSignal(ctx context.Context, c SignalConn, log *slog.Logger) error {
	if log == nil {
		log = s.log
	}
	ss := s.newSession(&signalTransport{c: c, maxBytes: s.cfg.MaxMessageBytes}, log.With("signalling", "mqtt"))
	sl, err := s.reserve(ctx)
	if err != nil {
		ss.sayBye(s.refusal(err))
		return err
	}
	defer sl.release() // a no-op once the session has it
	if err := s.add(ss, sl); err != nil {
		ss.sayBye(s.refusal(err))
		return err
	}
	defer s.remove(ss)
	err = ss.run(ctx)
	if !ss.byeSent {
		ss.sayBye("") // the viewer learns the session is over, whoever ended it
	}
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		ss.log.Debug("viewer left", "err", err)
		return nil
	}
	ss.log.Info("viewer session ended", "err", err)
	return err
}

// sayBye tells the viewer why its session is over (when why is not empty) and says bye, on a
// context of its own: the session's may have ended.
func (ss *session) sayBye(why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if why != "" {
		_ = ss.send(ctx, message{Type: "error", Error: truncate(why, 200)})
	}
	_ = ss.send(ctx, message{Type: "bye"})
}
