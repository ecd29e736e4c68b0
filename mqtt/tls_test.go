package mqtt

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

func TestMutualTLSWithTheCertificateAsIdentity(t *testing.T) {
	t.Parallel()
	broker := mqtttest.Start(t, mqtttest.Options{TLS: true, RequireCertificate: true, ACL: ExampleACL, UsernameAsClientID: true})
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

	checkCertificateCannotTakeOverCamA(t, broker, cam, op)

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

// checkCertificateCannotTakeOverCamA connects with cam-b's certificate asking for cam-a's
// client id: the broker names the connection by its certificate's CN, so cam-a is not
// disconnected and follows its commands.
func checkCertificateCannotTakeOverCamA(t *testing.T, broker *mqtttest.Broker, cam *camera, op *observer) {
	t.Helper()
	dials := cam.dials()
	bCert, bKey := broker.ClientCert("cam-b")
	opts, err := BrokerOptions(broker.URL("", ""), TLS{CAFile: broker.CAFile(), CertFile: bCert, KeyFile: bKey})
	if err != nil {
		t.Fatal(err)
	}
	opts.SetClientID("cam-a").SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(2 * time.Second)
	intruder := paho.NewClient(opts)
	if tok := intruder.Connect(); tok.WaitTimeout(waitTimeout) && tok.Error() == nil {
		defer intruder.Disconnect(0)
	}
	op.publish(topics.Cmd("cam-a"), false, Command{ID: "tls-2", Action: ActionPrivacy, Video: ptr(false)})
	ms := op.waitFor("ack of tls-2", func(ms []msg) bool { return len(acksWithID(ms, topics.Ack("cam-a"), "tls-2")) > 0 })
	if a := acksWithID(ms, topics.Ack("cam-a"), "tls-2")[0]; !a.OK || cam.dev.Status().Video.Private || cam.dials() != dials {
		t.Errorf("after cam-b's certificate asked for cam-a's client id: ack ok=%t %s, %d new connections of cam-a; want ok, video live, none", a.OK, a.Code, cam.dials()-dials)
	}
}
