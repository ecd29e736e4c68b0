package mqtt

import (
	"context"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// signalOptions are the options of signalling's own connection (SignalConfig.BrokerURL): a
// clean session (nothing is queued for it while it is away), no will (the availability is
// the command connection's), the command connection's timings and TLS.
func (c *Client) signalOptions() (*paho.ClientOptions, error) {
	cfg := c.cfg
	o, err := BrokerOptions(cfg.Signal.BrokerURL, cfg.TLS)
	if err != nil {
		return nil, err
	}
	o.SetClientID(cfg.ID + "-signal")
	o.SetProtocolVersion(4)
	o.SetCleanSession(true)
	o.SetOrderMatters(true) // the handler never blocks: it routes
	c.setTimings(o)
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { m.Ack() }) // nothing else is followed
	filter := c.topics.Sessions(cfg.ID)
	o.SetOnConnectHandler(func(pc paho.Client) { // on a goroutine of paho's own: it may wait
		c.log.Info("signalling connected", "id", cfg.ID+"-signal")
		t := pc.Subscribe(filter, 0, nil) // routed by AddRoute
		t.WaitTimeout(cfg.ConnectTimeout)
		c.checkSubscription(t)
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		c.log.Warn("signalling connection lost: reconnecting", "err", err)
	})
	return o, nil
}

// startSignal starts signalling (when it is on) on pc, or on a connection of its own, which it
// returns (nil when off).
func (c *Client) startSignal(ctx context.Context, pc paho.Client) paho.Client {
	if c.signal == nil {
		return nil
	}
	spc := pc
	if c.signalOpts != nil {
		spc = paho.NewClient(c.signalOpts)
	}
	spc.AddRoute(c.topics.Sessions(c.cfg.ID), c.signal.onMessage)
	c.signal.start(ctx, func(topic string, payload []byte) paho.Token {
		return spc.Publish(topic, qos, false, payload)
	})
	if spc != pc {
		spc.Connect() // with ConnectRetry it keeps trying
	}
	return spc
}
