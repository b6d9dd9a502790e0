// Command mqtt-pubsub publishes and subscribes through MQTT streams on an
// embedded broker (mochi-mqtt on loopback). The display stream subscribes to
// home/+/temp; the sensor stream publishes two readings at QoS 1 and sees
// QOS_ACK_REMOTE for each (Event.Ack numbers them); the display receives both.
// Both streamtypes name the same broker, so they share one connection.
//
//	go run ./examples/mqtt-pubsub
package main

import (
	"context"
	_ "embed"
	"fmt"
	"log"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

//go:embed policy.json
var policyJSON []byte

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	broker, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer broker.Close(ctx)

	p, _, err := policy.Parse(policyJSON, policy.Options{Strict: true})
	if err != nil {
		return err
	}
	overlay := fmt.Appendf(nil, `{"s": [{"sensor": {"port": %[1]d}, "display": {"port": %[1]d}}]}`, broker.Port())
	if p, _, err = policy.ApplyOverlay(p, overlay, policy.Options{}); err != nil {
		return err
	}
	rt, err := ss.New(ctx, ss.Config{Policy: p, MQTTClientID: "example-mqtt-pubsub"})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)

	display, err := rt.Create(ctx, "display")
	if err != nil {
		return err
	}
	if err := untilConnected(display); err != nil { // subscribed
		return err
	}
	sensor, err := rt.Create(ctx, "sensor", ss.WithMetadata("room", "kitchen"))
	if err != nil {
		return err
	}
	if err := untilConnected(sensor); err != nil {
		return err
	}
	readings := []string{"21.5", "21.7"}
	for _, r := range readings {
		if err := sensor.Send(ctx, []byte(r)); err != nil { // one PUBLISH each
			return err
		}
	}
	for acked := 0; acked < len(readings); {
		ev, ok := <-sensor.Events()
		if !ok {
			return fmt.Errorf("sensor stream ended")
		}
		switch ev.State {
		case ss.QoSAckRemote:
			acked++
			fmt.Printf("sensor: reading %d acknowledged by the broker\n", ev.Ack)
		case ss.QoSNackRemote, ss.QoSNackLocal:
			return fmt.Errorf("reading %d not delivered: %v", ev.Ack, ev.Err)
		}
	}
	for got := 0; got < len(readings); {
		ev, ok := <-display.Events()
		if !ok {
			return fmt.Errorf("display stream ended")
		}
		if ev.Kind == ss.PayloadEvent {
			got++
			fmt.Printf("display: %s\n", ev.Payload)
		}
	}
	fmt.Printf("broker connections: %d\n", len(broker.Connects()))
	for _, s := range []*ss.Stream{sensor, display} {
		s.Destroy(ctx) // unsubscribes; the last stream closes the broker connection
		for range s.Events() {
		}
	}
	return nil
}

// untilConnected reads a stream's events until CONNECTED.
func untilConnected(s *ss.Stream) error {
	for ev := range s.Events() {
		switch ev.State {
		case ss.Connected:
			return nil
		case ss.AllRetriesFailed:
			return fmt.Errorf("%s: cannot connect: %v", s.Streamtype(), ev.Err)
		}
	}
	return fmt.Errorf("%s: stream ended", s.Streamtype())
}
