package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// errIdle ends a WebSocket session whose viewer answers no ping.
var errIdle = errors.New("rtc: viewer answered no ping")

// keepAlive pings the viewer every WSPingInterval (WebSocket ping frames: a browser answers
// them by itself), each ping waiting for its pong until the next is due. It returns errIdle
// once a ping goes unanswered WSIdleTimeout or more after the last pong (or the session's
// start), and nil when ctx ends. The pongs are read by the session's reader (read), which
// reads all the time.
func (t *wsTransport) keepAlive(ctx context.Context) error {
	every, idle := t.srv.cfg.WSPingInterval, t.srv.cfg.WSIdleTimeout
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		err := t.ws.Ping(pctx)
		cancel()
		switch {
		case err == nil:
			last = time.Now()
		case ctx.Err() != nil:
			return nil
		case time.Since(last) >= idle:
			t.srv.stats.idle.Add(1)
			return fmt.Errorf("%w for %v", errIdle, time.Since(last).Round(time.Millisecond))
		}
	}
}

// refuseWS tells a WebSocket viewer refused by reserve why, and closes the socket
// (1013, try again later) without making anything for it.
func (s *Server) refuseWS(ctx context.Context, ws *websocket.Conn, err error) {
	msg := s.refusal(err)
	if b, jerr := json.Marshal(message{Type: "error", Error: msg}); jerr == nil {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = ws.Write(wctx, websocket.MessageText, b)
		cancel()
	}
	code := websocket.StatusTryAgainLater
	if errors.Is(err, ErrServerClosed) {
		code = websocket.StatusGoingAway
	}
	_ = ws.Close(code, truncate(msg, 120))
}

// kinds are the m-section kinds lenscap offers a WebSocket viewer ("video", "audio"): the
// most its answer may have, one each.
func (s *Server) kinds() []string {
	ks := make([]string, len(s.fanouts))
	for i, f := range s.fanouts {
		ks[i] = f.pion.String()
	}
	return ks
}
