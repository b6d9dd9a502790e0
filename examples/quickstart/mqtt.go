package main

import (
	"context"
	"fmt"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

// mqttPolicy has two MQTT streamtypes on one broker (so they share one
// broker connection): a sensor publishing at QoS 1 on a topic built from its
// "room" metadata, and a display subscribed to every room.
const mqttPolicy = `{
  "release": "quickstart",
  "retry": [{ "quick": { "backoff": [100, 200], "conceal": 2, "jitterpc": 0 } }],
  "s": [{
    "mqtt_sensor": {
      "protocol": "mqtt", "endpoint": "127.0.0.1", "port": %[1]d, "nailed_up": true,
      "metadata": [{ "room": "" }],
      "mqtt_topic": "quickstart/${room}/temp", "mqtt_qos": 1, "retry": "quick"
    },
    "mqtt_display": {
      "protocol": "mqtt", "endpoint": "127.0.0.1", "port": %[1]d, "nailed_up": true,
      "mqtt_subscribe": "quickstart/+/temp", "mqtt_qos": 1, "retry": "quick"
    }
  }]
}`

// mqttPubSub starts an embedded MQTT broker (mochi-mqtt) on loopback, then a
// display stream that subscribes and a sensor stream that publishes two
// readings; the sensor sees QOS_ACK_REMOTE for each, the display receives
// both.
func mqttPubSub(ctx context.Context) error {
	broker, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer broker.Close(ctx)
	p, diags, err := policy.Parse([]byte(fmt.Sprintf(mqttPolicy, broker.Port())), policy.Options{})
	for _, d := range diags {
		fmt.Println("policy:", d)
	}
	if err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	display, err := rt.Create(ctx, "mqtt_display")
	if err != nil {
		return err
	}
	if err := waitConnected(display, "display"); err != nil {
		return err
	}
	sensor, err := rt.Create(ctx, "mqtt_sensor", ss.WithMetadata("room", "kitchen"))
	if err != nil {
		return err
	}
	if err := waitConnected(sensor, "sensor"); err != nil {
		return err
	}
	readings := []string{"21.5", "21.7"}
	for _, r := range readings {
		if err := sensor.Send(ctx, []byte(r)); err != nil {
			return err
		}
	}
	for acked := 0; acked < len(readings); {
		ev, ok := <-sensor.Events()
		if !ok {
			return fmt.Errorf("sensor stream ended")
		}
		fmt.Println("sensor state:", ev)
		switch ev.State {
		case ss.QoSAckRemote:
			acked++
		case ss.QoSNackRemote, ss.QoSNackLocal:
			return fmt.Errorf("reading %d not delivered", ev.Ack)
		}
	}
	var got []string
	for len(got) < len(readings) {
		ev, ok := <-display.Events()
		if !ok {
			return fmt.Errorf("display stream ended")
		}
		if ev.Kind == ss.PayloadEvent {
			fmt.Printf("display rx(%v): %q\n", ev.Flags, ev.Payload)
			got = append(got, string(ev.Payload))
		}
	}
	for _, s := range []*ss.Stream{sensor, display} {
		if err := s.Destroy(ctx); err != nil {
			return err
		}
		for range s.Events() { // DISCONNECTED, DESTROYING
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(readings) {
		return fmt.Errorf("display got %q, want %q", got, readings)
	}
	if n := len(broker.Connects()); n != 1 {
		return fmt.Errorf("%d broker connections, want 1 shared", n)
	}
	if n := rt.Stats().IllegalTransitions; n != 0 {
		return fmt.Errorf("%d illegal state transitions", n)
	}
	return nil
}

// waitConnected prints a stream's states until CONNECTED.
func waitConnected(s *ss.Stream, name string) error {
	for ev := range s.Events() {
		fmt.Printf("%s state: %v\n", name, ev)
		switch ev.State {
		case ss.Connected:
			return nil
		case ss.AllRetriesFailed:
			return fmt.Errorf("%s could not connect", name)
		}
	}
	return fmt.Errorf("%s stream ended", name)
}
