// Package mqtt is lenscap's fleet control over MQTT (DESIGN.md, "External contracts"): a
// device's Client follows its command topics (its own, its groups', the broadcast one), applies
// privacy commands to the device, acknowledges each command id once, and publishes the device's
// retained state and availability and its Home Assistant discovery. It also holds an embedded
// broker for the simulated board (EmbeddedBroker) and a simulated fleet for scale tests (Fleet).
//
// Delivery: commands are QoS 1 on a persistent session (clean session off, client id = device
// id), so commands published while a device is offline reach it when it returns. A command is
// acknowledged to the broker (PUBACK) only after it was applied, its new state persisted by the
// device and its result recorded, so a crash in between redelivers it; the record of the last
// command ids (persisted atomically in Config.StoreDir) makes a redelivery harmless: it gets its
// first result again and is not applied twice. Commands delivered with the retain flag, or
// whose exp has passed, are refused: a stale "privacy off" never overrides the button.
//
// Floods: paho's handler parses each command as it arrives and takes the device's early gate for
// the kinds it cuts (device.Device.Hold), then queues it; Run's goroutine applies what is
// waiting as one batch (apply.go): results as if applied one by one in arrival order, the kinds
// that end private cut before any is opened, the state and the command record each persisted
// once per batch, then the acks, then the PUBACKs.
//
// Security: CheckBrokerSecurity refuses a plain-text broker URL without credentials to another
// host unless the owner accepts it. The embedded broker authenticates the camera's account
// and an operator's (EmbeddedCamera, EmbeddedOperator) and lets anonymous clients only watch.
//
// paho's callbacks never block: they queue messages and events for the goroutine of Run.
//
// Import rules: mqtt imports paho (github.com/eclipse/paho.mqtt.golang), mochi-mqtt (for the
// embedded broker only), package device and the standard library; never rtc, camera, gpio or
// board. The state it publishes comes from Config.State, a func the wiring provides.
package mqtt
