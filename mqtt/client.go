package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/lenscap/lenscap/device"
)

// Device is what commands drive: implemented by *device.Device.
type Device interface {
	// SetPrivacyBatch applies changes as one batch, with one save of the state, and returns
	// the status after them and each change's error (errors.Is(err, device.ErrButtonWins) for
	// a refused remote lift of the button's privacy): the results of applying them one by one
	// in order; the kinds that end private are cut before any kind is opened.
	SetPrivacyBatch(ctx context.Context, cs []device.Change) (device.Status, []error)
	// Hold holds back, at once and without blocking, the frames of the kinds captured at or
	// after at, until release is called: the early gate of a command that may cut them.
	Hold(at time.Time, kinds ...device.Kind) (release func())
	// Status returns the current status.
	Status() device.Status
}

var _ Device = (*device.Device)(nil)

// qos is the QoS of commands, acks, state and availability.
const qos = 1

// Ack is the payload of an ack, published on Topics.Ack once per command (and again, with the
// first result and Duplicate set, for each redelivery of a command id seen before).
type Ack struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Code  string `json:"code,omitempty"`  // a Code constant when !OK
	Error string `json:"error,omitempty"` // for people
	// Duplicate is set on the ack of a command id seen before: it was not applied again.
	Duplicate bool `json:"duplicate,omitempty"`
	// State is the device's state when the ack was sent, as published on Topics.State.
	State json.RawMessage `json:"state,omitempty"`
}

// Client is a device's MQTT control plane: it follows the device's command topics, applies
// commands to the Device, acknowledges them, and publishes the device's retained state and
// availability and its Home Assistant discovery. Make it with New, run it with Run.
type Client struct {
	cfg     Config
	log     *slog.Logger
	topics  Topics
	broker  string // redacted, for logs
	opts    *paho.ClientOptions
	filters map[string]byte // the command topics, subscribed at QoS 1
	started time.Time

	running atomic.Bool
	stateC  chan struct{} // StateChanged: a state to publish (coalesced)
	connC   chan struct{} // paho connected (coalesced)
	lostC   chan error    // paho lost the connection (coalesced)
	inbox   inbox         // messages from paho
	signal  *signalling   // MQTT signalling; nil when off
	// signalOpts are signalling's own connection's (SignalConfig.BrokerURL); nil: it shares
	// this client's.
	signalOpts *paho.ClientOptions

	// owned by Run's goroutine
	rec        *record
	unexpected map[string]bool // topics not ours already unsubscribed
}

// New checks the configuration and returns a client. It starts nothing: Run connects.
func New(cfg Config) (*Client, error) {
	cfg.Groups = compactList(cfg.Groups)
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts, err := BrokerOptions(cfg.BrokerURL, cfg.TLS)
	if err != nil {
		return nil, err
	}
	u, _ := ParseBrokerURL(cfg.BrokerURL)
	c := &Client{
		cfg:        cfg,
		log:        cfg.Logger,
		topics:     Topics{Prefix: cfg.TopicPrefix},
		broker:     u.Redacted(),
		opts:       opts,
		started:    time.Now(),
		stateC:     make(chan struct{}, 1),
		connC:      make(chan struct{}, 1),
		lostC:      make(chan error, 1),
		inbox:      inbox{ready: make(chan struct{}, 1)},
		unexpected: make(map[string]bool),
	}
	c.filters = map[string]byte{c.topics.Cmd(cfg.ID): qos, c.topics.AllCmd(): qos}
	for _, g := range cfg.Groups {
		c.filters[c.topics.GroupCmd(g)] = qos
	}
	if cfg.Signal != nil && cfg.Signal.Serve != nil {
		c.signal = newSignalling(*cfg.Signal, c.topics, cfg.ID)
		if cfg.Signal.BrokerURL == "" {
			c.filters[c.topics.Sessions(cfg.ID)] = 0 // see signalling
		} else if c.signalOpts, err = c.signalOptions(); err != nil {
			return nil, err
		}
	}
	c.configure(opts)
	return c, nil
}

func compactList(in []string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// configure sets the session, will and handlers on the paho options.
func (c *Client) configure(o *paho.ClientOptions) {
	cfg := c.cfg
	o.SetClientID(cfg.ID)
	o.SetProtocolVersion(4) // MQTT 3.1.1
	o.SetCleanSession(false)
	o.SetAutoAckDisabled(true) // PUBACK only once a command is applied and recorded
	o.SetOrderMatters(true)    // the handler never blocks: it queues
	o.SetResumeSubs(false)     // Run subscribes on every connect
	c.setTimings(o)
	o.SetStore(copyingStore{paho.NewMemoryStore()})
	o.SetWill(c.topics.Availability(cfg.ID), Offline, qos, true)
	o.SetDefaultPublishHandler(c.onMessage)
	o.SetOnConnectHandler(func(paho.Client) { notify(c.connC) })
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case c.lostC <- err:
		default:
		}
	})
	if cfg.dial != nil {
		o.SetCustomOpenConnectionFn(func(u *url.URL, opts paho.ClientOptions) (net.Conn, error) {
			return cfg.dial(u, opts.TLSConfig)
		})
	}
}

// setTimings sets how a connection of the client reconnects and times out (Config).
func (c *Client) setTimings(o *paho.ClientOptions) {
	cfg := c.cfg
	o.SetAutoReconnect(true)
	o.SetConnectRetry(true)
	o.SetConnectRetryInterval(cfg.RetryInterval)
	o.SetMaxReconnectInterval(cfg.ReconnectMax)
	o.SetKeepAlive(cfg.KeepAlive)
	o.SetPingTimeout(cfg.PingTimeout)
	o.SetConnectTimeout(cfg.ConnectTimeout)
	o.SetWriteTimeout(cfg.WriteTimeout)
	o.SetDialer(&net.Dialer{Timeout: cfg.ConnectTimeout})
}

// copyingStore is paho's memory store, except that it keeps its own copy of each PUBLISH and
// hands out copies. After a reconnection paho's resume sets the DUP flag on the packets it
// gets from the store, while a Publish made just after the reconnection may still be writing
// the same packet (and Write itself sets the packet's length): a data race
// (eclipse-paho/paho.mqtt.golang#703, open in v1.5.1). With copies, no packet is shared.
type copyingStore struct{ paho.Store }

func (s copyingStore) Put(key string, p packets.ControlPacket) { s.Store.Put(key, copyPublish(p)) }

func (s copyingStore) Get(key string) packets.ControlPacket { return copyPublish(s.Store.Get(key)) }

func copyPublish(p packets.ControlPacket) packets.ControlPacket {
	if pub, ok := p.(*packets.PublishPacket); ok {
		cp := *pub // the payload is shared: nothing writes it
		return &cp
	}
	return p
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// SignalStats counts the MQTT signalling sessions (zero when signalling is off).
func (c *Client) SignalStats() SignalStats {
	if c.signal == nil {
		return SignalStats{}
	}
	return c.signal.stats()
}

// StateChanged asks the client to publish the state again. It never blocks: call it from
// device.Watch and when the number of viewers changes. Changes close together are published
// once, with the latest state.
func (c *Client) StateChanged() { notify(c.stateC) }

// Run connects to the broker (retrying until it can), follows the command topics and
// publishes the state until ctx ends; it then publishes "offline", disconnects cleanly and
// returns nil. A broker that cannot be reached is retried, never an error. Run may be called
// once.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("mqtt: Run called twice")
	}
	path := ""
	if c.cfg.StoreDir != "" {
		path = filepath.Join(c.cfg.StoreDir, RecordFile)
	}
	rec, err := loadRecord(path, c.cfg.RecordSize)
	if err != nil {
		c.log.Error("command record unreadable: starting an empty one (a redelivered command may be applied again)", "err", err)
	}
	c.rec = rec

	pc := paho.NewClient(c.opts)
	spc := c.startSignal(ctx, pc)
	c.log.Info("connecting", "broker", c.broker, "id", c.cfg.ID, "groups", c.cfg.Groups)
	pc.Connect() // with ConnectRetry it keeps trying; OnConnect reports success
	defer c.shutdown(pc, spc)

	var subscribed <-chan struct{}
	var subToken paho.Token
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.connC:
			c.log.Info("connected", "broker", c.broker)
			subToken = pc.SubscribeMultiple(c.filters, nil) // nil: every message goes to onMessage
			subscribed = subToken.Done()
		case <-subscribed:
			subscribed = nil
			c.checkSubscription(subToken)
			c.announce(pc)
		case err := <-c.lostC:
			c.log.Warn("connection lost: reconnecting", "broker", c.broker, "err", err)
		case <-c.inbox.ready:
			msgs, dropped := c.inbox.take(c.batchLimit())
			if dropped > 0 {
				c.log.Warn("messages dropped: too many waiting (the broker redelivers commands after a reconnection)", "dropped", dropped)
			}
			if !c.processBatch(ctx, pc, msgs) {
				return nil // not acknowledged: delivered again in the next session
			}
		case <-c.stateC:
			if pc.IsConnectionOpen() {
				c.publishState(pc)
			} // else: published on the next connection
		}
	}
}

// shutdown publishes "offline" and disconnects cleanly, so the broker keeps the will unsent.
func (c *Client) shutdown(pc, spc paho.Client) {
	if c.signal != nil {
		c.signal.stop(2 * time.Second) // while connected, so that the viewers get their byes
	}
	if spc != nil && spc != pc {
		spc.Disconnect(250)
	}
	if pc.IsConnectionOpen() {
		t := pc.Publish(c.topics.Availability(c.cfg.ID), qos, true, Offline)
		if !t.WaitTimeout(2*time.Second) || t.Error() != nil {
			c.log.Warn("could not publish offline before disconnecting", "err", t.Error())
		}
	}
	pc.Disconnect(250)
	c.inbox.close() // what waits is delivered again in the next session
	c.log.Info("disconnected", "broker", c.broker)
}

// checkSubscription logs the topics the broker refused (an ACL that does not match the id).
func (c *Client) checkSubscription(t paho.Token) {
	if err := t.Error(); err != nil {
		c.log.Error("subscribe failed", "err", err)
		return
	}
	st, ok := t.(*paho.SubscribeToken)
	if !ok {
		return
	}
	for topic, code := range st.Result() {
		if code == 0x80 {
			c.log.Error("broker refused the subscription: check its ACL", "topic", topic)
		}
	}
}

// announce publishes availability, discovery and state after a connection.
func (c *Client) announce(pc paho.Client) {
	pc.Publish(c.topics.Availability(c.cfg.ID), qos, true, Online)
	if !c.cfg.Discovery.Disabled {
		for _, d := range c.discovery() {
			pc.Publish(d.topic, qos, true, d.payload)
		}
	}
	c.publishState(pc)
}

func (c *Client) publishState(pc paho.Client) {
	pc.Publish(c.topics.State(c.cfg.ID), qos, true, []byte(c.state()))
}

// state is the state to publish: Config.State (or the device's status) with id and groups.
func (c *Client) state() json.RawMessage {
	var v any
	if c.cfg.State != nil {
		v = c.cfg.State()
	} else {
		st := c.cfg.Device.Status()
		v = defaultState{ID: c.cfg.ID, Video: st.Video, Audio: st.Audio, Seq: st.Seq,
			Uptime: time.Since(c.started).Round(time.Millisecond).Seconds()}
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.log.Error("state does not marshal", "err", err)
		b = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return b // not an object: published as it is
	}
	if _, ok := fields["id"]; !ok {
		fields["id"], _ = json.Marshal(c.cfg.ID)
	}
	if _, ok := fields["groups"]; !ok {
		groups := c.cfg.Groups
		if groups == nil {
			groups = []string{}
		}
		fields["groups"], _ = json.Marshal(groups)
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return b
	}
	return out
}

// defaultState is the state published when Config.State is nil.
type defaultState struct {
	ID     string            `json:"id"`
	Video  device.KindStatus `json:"video"`
	Audio  device.KindStatus `json:"audio"`
	Seq    uint64            `json:"seq"`
	Uptime float64           `json:"uptime_seconds"`
}
