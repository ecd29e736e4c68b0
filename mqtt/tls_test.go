package mqtt

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

func TestMutualTLSWithTheCertificateAsIdentity(t *testing.T) {
	t.Parallel()
	broker := mqtttest.Start(t, mqtttest.Options{TLS: true, RequireCertificate: true, ACL: ExampleACL})
	url := broker.URL("", "") // mqtts://, no password: the certificate's CN is the user name
	cert, key := broker.ClientCert("cam-a")
	cam := newCamera(t, url, "cam-a", func(c *Config) {
		c.TLS = TLS{CAFile: broker.CAFile(), CertFile: cert, KeyFile: key}
	})
	opCert, opKey := broker.ClientCert("operator")
	op := newObserverTLS(t, url, TLS{CAFile: broker.CAFile(), CertFile: opCert, KeyFile: opKey},
		topics.Availability("cam-a"), topics.Ack("cam-a"))
	cam.startClient()
	waitOnline(op, topics, "cam-a")
	op.publish(topics.Cmd("cam-a"), false, Command{ID: "tls-1", Action: ActionPrivacy, Video: ptr(true)})
	ms := op.waitFor("ack over TLS", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-a"), "tls-1")) > 0 })
	if a := acksWithID(ms, topics.Ack("cam-a"), "tls-1")[0]; !a.OK || !cam.dev.Status().Video.Private {
		t.Errorf("ack %+v, want ok and video private", a)
	}

	// Without a client certificate the broker refuses the connection.
	opts, err := BrokerOptions(url, TLS{CAFile: broker.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	opts.SetClientID("no-cert").SetAutoReconnect(false).SetConnectTimeout(2 * time.Second)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() == nil {
		c.Disconnect(0)
		t.Error("a client without a certificate connected")
	}
}
