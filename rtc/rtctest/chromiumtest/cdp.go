package chromiumtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// maxMessageSize bounds one DevTools message; screenshots arrive as one
// base64 string and are far larger than the WebSocket library's default.
const maxMessageSize = 256 << 20

// errConnClosed is reported to calls and waiters when the DevTools socket ends.
var errConnClosed = errors.New("chromiumtest: devtools connection closed")

// message is one DevTools protocol frame: a call (ID, Method, Params), a
// response (ID, Result or Error) or an event (Method, Params).
type message struct {
	ID     int64           `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

func (e *rpcError) Error() string {
	if e.Data != "" {
		return fmt.Sprintf("%s (%d): %s", e.Message, e.Code, e.Data)
	}
	return fmt.Sprintf("%s (%d)", e.Message, e.Code)
}

// cdpConn is one DevTools protocol session over a WebSocket: calls are matched
// to their responses by id, events go to onEvent and to one-shot waiters.
// Its reader, run, is started and waited for by the owner.
type cdpConn struct {
	ws *websocket.Conn
	// onEvent is called on the reader goroutine for every event; it must not block.
	onEvent func(method string, params json.RawMessage)

	nextID atomic.Int64
	done   chan struct{} // closed when run returns

	mu      sync.Mutex
	pending map[int64]chan message
	waiters map[string]map[*eventWaiter]struct{}
	err     error // why run returned
}

type eventWaiter struct{ ch chan json.RawMessage }

func dialCDP(ctx context.Context, url string, onEvent func(string, json.RawMessage)) (*cdpConn, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("chromiumtest: dial devtools %s: %w", url, err)
	}
	ws.SetReadLimit(maxMessageSize)
	return &cdpConn{
		ws:      ws,
		onEvent: onEvent,
		done:    make(chan struct{}),
		pending: make(map[int64]chan message),
		waiters: make(map[string]map[*eventWaiter]struct{}),
	}, nil
}

// run reads messages until ctx ends or the socket fails, then fails every
// pending call. It returns once; the owner waits for it.
func (c *cdpConn) run(ctx context.Context) {
	err := c.readLoop(ctx)
	c.mu.Lock()
	c.err = err
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	close(c.done)
}

func (c *cdpConn) readLoop(ctx context.Context) error {
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("%w: %w", errConnClosed, err)
		}
		var m message
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("chromiumtest: decode devtools message: %w", err)
		}
		if m.ID != 0 {
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m // buffered: never blocks
			}
			continue
		}
		if c.onEvent != nil {
			c.onEvent(m.Method, m.Params)
		}
		c.mu.Lock()
		for w := range c.waiters[m.Method] {
			w.ch <- m.Params // buffered, and removed below: never blocks
		}
		delete(c.waiters, m.Method)
		c.mu.Unlock()
	}
}

// call sends method with params and decodes the response into result, which
// may be nil.
func (c *cdpConn) call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("chromiumtest: %s: encode params: %w", method, err)
	}
	id := c.nextID.Add(1)
	ch := make(chan message, 1)

	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("chromiumtest: %s: %w", method, err)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	data, err := json.Marshal(message{ID: id, Method: method, Params: raw})
	if err != nil {
		c.forget(id)
		return fmt.Errorf("chromiumtest: %s: %w", method, err)
	}
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
		c.forget(id)
		return fmt.Errorf("chromiumtest: %s: send: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("chromiumtest: %s: %w", method, c.closedErr())
		}
		if m.Error != nil {
			return fmt.Errorf("chromiumtest: %s: %w", method, m.Error)
		}
		if result != nil && len(m.Result) > 0 {
			if err := json.Unmarshal(m.Result, result); err != nil {
				return fmt.Errorf("chromiumtest: %s: decode result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("chromiumtest: %s: %w", method, ctx.Err())
	}
}

func (c *cdpConn) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *cdpConn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return errConnClosed
}

// waitFor registers interest in the next event named method before the call
// that causes it is sent. The returned channel receives that event's params
// once; stop unregisters a waiter that is no longer wanted.
func (c *cdpConn) waitFor(method string) (ch <-chan json.RawMessage, stop func()) {
	w := &eventWaiter{ch: make(chan json.RawMessage, 1)}
	c.mu.Lock()
	if c.waiters[method] == nil {
		c.waiters[method] = make(map[*eventWaiter]struct{})
	}
	c.waiters[method][w] = struct{}{}
	c.mu.Unlock()
	return w.ch, func() {
		c.mu.Lock()
		delete(c.waiters[method], w)
		c.mu.Unlock()
	}
}

// close ends the socket, which makes run return.
func (c *cdpConn) close() {
	c.ws.CloseNow()
}
