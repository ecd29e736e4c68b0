package rtc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/coder/websocket"
)

// transport carries a session's signalling messages: the camera's WebSocket (/ws), or a
// SignalConn through the fleet's broker. Everything else about a session is the same on both.
type transport interface {
	// read hands the viewer's messages to the session until the viewer is gone or ctx ends;
	// a malformed message is handed on as an "error" message (answered, then skipped).
	read(ctx context.Context, msgs chan<- message) error
	// write sends one encoded message.
	write(ctx context.Context, b []byte) error
	// keepAlive returns an error when the viewer stops answering, nil when ctx ends.
	keepAlive(ctx context.Context) error
	// closeNow releases the transport once the session is over.
	closeNow()
}

// wsTransport is a viewer's WebSocket.
type wsTransport struct {
	ws  *websocket.Conn
	srv *Server
}

func (t *wsTransport) read(ctx context.Context, msgs chan<- message) error {
	for {
		typ, data, err := t.ws.Read(ctx)
		if err != nil {
			return err
		}
		m := decode(data)
		if typ != websocket.MessageText {
			m = message{Type: "error", Error: "messages are JSON text"}
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *wsTransport) write(ctx context.Context, b []byte) error {
	return t.ws.Write(ctx, websocket.MessageText, b)
}

func (t *wsTransport) closeNow() { t.ws.CloseNow() }

// decode parses a viewer's message; a malformed one becomes an "error" message saying why.
func decode(data []byte) message {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return message{Type: "error", Error: "malformed message: " + err.Error()}
	}
	return m
}

// SignalConn is a viewer's signalling channel other than the camera's WebSocket: a session
// through the fleet's MQTT broker (DESIGN.md, "MQTT signalling"). Messages are the JSON
// messages of /ws, both ways.
type SignalConn interface {
	// Send delivers one message to the viewer, blocking at most until ctx ends.
	Send(ctx context.Context, msg []byte) error
	// Recv yields the viewer's messages in order; it is closed once the viewer is gone.
	Recv() <-chan []byte
}

// signalTransport is a session over a SignalConn. A broker has no pings for one session: a
// viewer that vanishes is found by its peer connection failing (and the answer timeout).
type signalTransport struct {
	c        SignalConn
	maxBytes int64
}

func (t *signalTransport) read(ctx context.Context, msgs chan<- message) error {
	for {
		var data []byte
		var ok bool
		select {
		case data, ok = <-t.c.Recv():
			if !ok {
				return io.EOF
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		var m message
		if int64(len(data)) > t.maxBytes {
			m = message{Type: "error", Error: fmt.Sprintf("message of %d bytes refused: the most is %d", len(data), t.maxBytes)}
		} else {
			m = decode(data)
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *signalTransport) write(ctx context.Context, b []byte) error { return t.c.Send(ctx, b) }

func (t *signalTransport) keepAlive(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (t *signalTransport) closeNow() {}
