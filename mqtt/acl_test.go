package mqtt

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/lenscap/lenscap/mqtt/mqtttest"
)

// ExampleACL is a mosquitto ACL for a fleet, as README's "A broker for a fleet": each device
// (user name = device id) reads its own commands and writes its own acks, state, availability
// and discovery; the groups each device follows are listed per user; the operator
// (lenscapctl) may do everything under lenscap/. The broker must also set
// use_username_as_clientid (mqtttest.Options.UsernameAsClientID), or one device's account can
// take over another device's client id and session.
const ExampleACL = `# patterns apply to every user; %u is the user name, which is the device id
pattern read lenscap/%u/cmd
pattern write lenscap/%u/ack
pattern write lenscap/%u/state
pattern write lenscap/%u/availability
pattern write homeassistant/+/%u/+/config
pattern read lenscap/all/cmd

user cam-a
topic read lenscap/group/hall/cmd

user cam-b
topic read lenscap/group/hall/cmd

user operator
topic readwrite lenscap/#
topic read homeassistant/#
`

// testACL is ExampleACL with a read-only account for the tests' second observer: with
// use_username_as_clientid each account has one connection at a time.
const testACL = ExampleACL + `
user watcher
topic read lenscap/#
`

var aclUsers = map[string]string{"cam-a": "secret-a", "cam-b": "secret-b", "operator": "secret-op", "watcher": "secret-w"}

// startFleetBroker starts a mosquitto set up as README's "A broker for a fleet" says.
func startFleetBroker(t *testing.T) *mqtttest.Broker {
	t.Helper()
	return mqtttest.Start(t, mqtttest.Options{Users: aclUsers, ACL: testACL, UsernameAsClientID: true})
}

func TestACLKeepsDevicesToTheirOwnTopicsAndLetsTheOperatorDoAll(t *testing.T) {
	t.Parallel()
	broker := startFleetBroker(t)
	op := newObserver(t, broker.URL("operator", "secret-op"), topics.Every("ack"), topics.Every("availability"))
	camB := newCamera(t, broker.URL("cam-b", "secret-b"), "cam-b", func(c *Config) { c.Groups = []string{"hall"} })
	camB.startClient()
	waitOnline(op, topics, "cam-b")
	ackB := topics.Ack("cam-b")

	// The operator can command each device, a group and all; each device can ack.
	for _, topic := range []string{topics.Cmd("cam-b"), topics.GroupCmd("hall"), topics.AllCmd()} {
		id := "op-" + topic
		op.publish(topic, false, Command{ID: id, Action: ActionState})
		op.waitFor("ack of "+id, func(ms []msg) bool { return len(acksWithID(ms, ackB, id)) == 1 })
	}

	// Device A, with its own credentials (the broker names the connection cam-a).
	var aGot atomic.Int64
	opts, err := BrokerOptions(broker.URL("cam-a", "secret-a"), TLS{})
	if err != nil {
		t.Fatal(err)
	}
	opts.SetClientID("cam-a-intruder").SetProtocolVersion(4).SetAutoReconnect(false)
	aFollows := topics.Cmd("cam-a")
	markerSeen := make(chan struct{}, 1)
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		if m.Topic() == aFollows {
			select {
			case markerSeen <- struct{}{}:
			default:
			}
			return
		}
		aGot.Add(1)
	})
	a := paho.NewClient(opts)
	if tok := a.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("cam-a connect: %v", tok.Error())
	}
	defer a.Disconnect(50)
	wait := func(tok paho.Token) {
		t.Helper()
		if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("cam-a: %v", tok.Error())
		}
	}

	// A cannot subscribe to B's commands, or to every device's: it receives none of them.
	// (mosquitto 2.0 grants the subscription and then delivers nothing.)
	wait(a.SubscribeMultiple(map[string]byte{topics.Cmd("cam-b"): 1, topics.Every("cmd"): 1, aFollows: 1}, nil))
	op.publish(topics.Cmd("cam-b"), false, Command{ID: "to-b", Action: ActionState})
	op.waitFor("ack of to-b", func(ms []msg) bool { return len(acksWithID(ms, ackB, "to-b")) == 1 })
	// A marker on A's own command topic, published after: once A has it, it would have had
	// the command to B before it.
	op.publish(aFollows, false, Command{ID: "marker-a", Action: ActionState})
	select {
	case <-markerSeen:
	case <-time.After(waitTimeout):
		t.Fatal("cam-a did not receive the marker on its own command topic")
	}
	if n := aGot.Load(); n != 0 {
		t.Errorf("cam-a received %d messages of other devices' command topics, want 0", n)
	}

	// A cannot command B: its publication is dropped by the broker.
	wait(a.Publish(topics.Cmd("cam-b"), 1, false, `{"id":"forged","action":"privacy","video":true}`))
	// A cannot overwrite B's state or availability.
	wait(a.Publish(topics.State("cam-b"), 1, true, `{"id":"cam-b","forged":true}`))
	wait(a.Publish(topics.Availability("cam-b"), 1, true, Offline))
	// The operator's command after them: B acks it, and never acked the forged one.
	op.publish(topics.Cmd("cam-b"), false, Command{ID: "after-forgery", Action: ActionState})
	ms := op.waitFor("ack of after-forgery", func(ms []msg) bool { return len(acksWithID(ms, ackB, "after-forgery")) == 1 })
	if n := len(acksWithID(ms, ackB, "forged")); n != 0 {
		t.Errorf("cam-b acked the command forged by cam-a (%d acks)", n)
	}
	if camB.dev.Status().Video.Private {
		t.Error("cam-b applied the command forged by cam-a")
	}
	// A cannot ack for B either.
	wait(a.Publish(ackB, 1, false, `{"id":"fake-ack","ok":true}`))
	op.sync(topics.Ack("cam-a")) // the operator may publish anywhere under lenscap/
	if n := len(acksWithID(op.all(), ackB, "fake-ack")); n != 0 {
		t.Error("the operator received an ack cam-a forged for cam-b")
	}
	late := newObserver(t, broker.URL("watcher", "secret-w"), topics.State("cam-b"), topics.Availability("cam-b"))
	ms = late.waitFor("cam-b's retained state and availability", func(ms []msg) bool {
		_, okS := last(ms, topics.State("cam-b"))
		_, okA := last(ms, topics.Availability("cam-b"))
		return okS && okA
	})
	if m, _ := last(ms, topics.State("cam-b")); strings.Contains(m.Payload, "forged") || parseState(t, m.Payload).ID != "cam-b" {
		t.Errorf("cam-b's retained state was overwritten by cam-a: %s", m.Payload)
	}
	if m, _ := last(ms, topics.Availability("cam-b")); m.Payload != Online {
		t.Errorf("cam-b's retained availability was overwritten by cam-a: %s", m.Payload)
	}
	// The operator can read device command topics (as lenscapctl's list does).
	op.subscribe(topics.Every("cmd"))
	op.sync(topics.Cmd("cam-b"))
}

func TestOneCameraCannotTakeOverAnothersClientID(t *testing.T) {
	t.Parallel()
	broker := startFleetBroker(t)
	if n := takeOverCam1As(t, broker, "cam-b", "secret-b"); n != 0 {
		t.Errorf("cam-1's client connected %d more times after cam-b's account connected with its id: its session was taken over", n)
	}
}

// The attack the setting stops, to show that the test above sees it.
func TestWithoutUsernameAsClientIDOneCameraTakesOverAnothersClientID(t *testing.T) {
	t.Parallel()
	broker := mqtttest.Start(t, mqtttest.Options{Users: aclUsers, ACL: testACL})
	if n := takeOverCam1As(t, broker, "cam-b", "secret-b"); n == 0 {
		t.Error("cam-b's account connected with cam-1's client id and cam-1 was not disconnected: the attack of the test above did not happen")
	}
}

// takeOverCam1As runs camera cam-a, connects with another account asking for cam-a's client
// id and a persistent session, then sends cam-a a command; it returns how many times cam-a's
// client connected again (its session taken over: the command may then be lost) by the time
// the command is acked or cam-a reconnected, whichever comes first. 0: cam-a was never
// disconnected, and followed its command.
func takeOverCam1As(t *testing.T, broker *mqtttest.Broker, user, password string) int {
	t.Helper()
	op := newObserver(t, broker.URL("operator", "secret-op"), topics.Ack("cam-a"), topics.Availability("cam-a"))
	cam := newCamera(t, broker.URL("cam-a", "secret-a"), "cam-a")
	cam.startClient()
	waitOnline(op, topics, "cam-a")
	dials := cam.dials()

	opts, err := BrokerOptions(broker.URL(user, password), TLS{})
	if err != nil {
		t.Fatal(err)
	}
	opts.SetClientID("cam-a").SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	intruder := paho.NewClient(opts)
	if tok := intruder.Connect(); tok.WaitTimeout(waitTimeout) && tok.Error() == nil { // refused or renamed: both fine
		defer intruder.Disconnect(0)
	}
	op.publish(topics.Cmd("cam-a"), false, Command{ID: "after-intruder", Action: ActionPrivacy, Video: ptr(true)})
	// cam-a announces itself again (availability) whenever it reconnects: that ends the wait too.
	ms := op.waitFor("ack of after-intruder, or cam-a reconnecting", func(ms []msg) bool {
		return len(acksWithID(ms, topics.Ack("cam-a"), "after-intruder")) > 0 || cam.dials() > dials
	})
	n := cam.dials() - dials
	if acks := acksWithID(ms, topics.Ack("cam-a"), "after-intruder"); n == 0 && (!acks[0].OK || !cam.dev.Status().Video.Private) {
		t.Errorf("cam-a after the intruder: ack %+v, want ok and video private", acks[0])
	}
	return n
}
