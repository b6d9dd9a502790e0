package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

// mqttBroker starts an embedded broker stopped at cleanup.
func mqttBroker(t *testing.T, addr string) *mqtttest.Broker {
	t.Helper()
	b, err := mqtttest.Start(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

func mqttType(name, addr string, edit func(*policy.Streamtype)) *policy.Streamtype {
	st := &policy.Streamtype{Name: name, Protocol: policy.MQTT, Endpoint: addr, ClientCert: -1}
	if edit != nil {
		edit(st)
	}
	return st
}

// mqttPublisher starts a broker and a nailed-up stream "pub" publishing on
// topic, and reads its events until CONNECTED.
func mqttPublisher(t *testing.T, topic string) (*ss.Stream, *recorder) {
	t.Helper()
	b := mqttBroker(t, "127.0.0.1:0")
	st := mqttType("pub", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTTopic = true, topic })
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	s, err := rt.Create(context.Background(), "pub")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	r.untilState(wait, ss.Connected)
	return s, r
}

// mqttPublishTwice runs docs/streams.md §5.8 "MQTT QoS n, nailed_up, two publishes".
func mqttPublishTwice(t *testing.T, qos uint8, ack string) {
	b := mqttBroker(t, "127.0.0.1:0")
	col, _ := b.Collect("up")
	st := mqttType("pub", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTTopic, st.MQTTQoS = true, "up", qos })
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx := context.Background()
	s, err := rt.Create(ctx, "pub")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	r.untilState(wait, ss.Connected)
	for _, m := range []string{"one", "two"} {
		if err := s.Send(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	r.until(wait, func(ev ss.Event) bool { return ev.Kind == ss.StateEvent && ev.Ack == 2 })
	if _, err := col.Wait(ctx10(t), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r.closed(wait)
	r.expect("CREATING", "CONNECTING", "CONNECTED", ack+"(ack=1)", ack+"(ack=2)", "DISCONNECTED", "DESTROYING")
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMQTTQoS1NailedUpTwoPublishes(t *testing.T) { mqttPublishTwice(t, 1, "QOS_ACK_REMOTE") }

func TestMQTTQoS0NailedUpTwoPublishes(t *testing.T) { mqttPublishTwice(t, 0, "QOS_ACK_LOCAL") }

// TestMQTTSubscribeShared: two streamtypes on one broker connection with
// overlapping filters both receive a matching PUBLISH; the metadata-built
// filter of a third does not match.
func TestMQTTSubscribeShared(t *testing.T) {
	b := mqttBroker(t, "127.0.0.1:0")
	a := mqttType("a", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTSubscribe = true, "d/#" })
	c := mqttType("c", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTSubscribe = true, "d/+/x" })
	rt := newRuntime(t, ss.Config{Policy: newPolicy(a, c)})
	ctx := context.Background()
	var recs []*recorder
	var streams []*ss.Stream
	for _, name := range []string{"a", "c"} {
		s, err := rt.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		r.untilState(wait, ss.Connected)
		recs, streams = append(recs, r), append(streams, s)
	}
	if n := len(b.Connects()); n != 1 {
		t.Fatalf("%d broker connections, want 1", n)
	}
	b.Publish("d/1/x", []byte("both"), false, 1)
	b.Publish("d/1/y", []byte("a only"), false, 1)
	recs[0].until(wait, func(ev ss.Event) bool { return string(ev.Payload) == "a only" })
	recs[1].until(wait, func(ev ss.Event) bool { return string(ev.Payload) == "both" })
	for i, s := range streams {
		s.Destroy(ctx)
		recs[i].closed(wait)
	}
	recs[0].expect("CREATING", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"both")`, `rx(SOM|EOM,"a only")`, "DISCONNECTED", "DESTROYING")
	recs[1].expect("CREATING", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"both")`, "DISCONNECTED", "DESTROYING")
	if !testutil.WaitFor(ctx10(t), func() bool { return b.Connected() == 0 }) {
		t.Fatal("broker connection not closed after the last stream")
	}
}

// TestMQTTBrokerRestart: the broker goes away and comes back on the same
// port; the stream reports DISCONNECTED, retries with its policy, reaches
// CONNECTED again on a new broker connection and is subscribed again.
func TestMQTTBrokerRestart(t *testing.T) {
	b := mqttBroker(t, "127.0.0.1:0")
	addr := b.Addr
	st := mqttType("nail", addr, func(st *policy.Streamtype) {
		st.NailedUp, st.MQTTSubscribe, st.MQTTTopic, st.MQTTQoS = true, "in/#", "out", 1
		st.Retry = retry(65535, 0, 50)
	})
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st), ConnectTimeout: 2 * time.Second})
	ctx := context.Background()
	s, err := rt.Create(ctx, "nail")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	r.untilState(wait, ss.Connected)
	if err := s.Send(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	r.untilState(wait, ss.QoSAckRemote)
	b.Close(ctx10(t))
	r.untilState(wait, ss.Disconnected)
	time.Sleep(200 * time.Millisecond) // a few refused attempts
	b2 := mqttBroker(t, addr)
	r.untilState(wait, ss.Connected)
	b2.Publish("in/1", []byte("after"), false, 1)
	r.until(wait, func(ev ss.Event) bool { return string(ev.Payload) == "after" })
	if err := s.Send(ctx, []byte("again")); err != nil {
		t.Fatal(err)
	}
	r.until(wait, func(ev ss.Event) bool { return ev.State == ss.QoSAckRemote && ev.Ack == 2 })
	s.Destroy(ctx)
	r.closed(wait)
	got := r.String()
	for _, want := range []string{
		"CREATING, CONNECTING, CONNECTED, QOS_ACK_REMOTE(ack=1), DISCONNECTED, POLL, CONNECTING",
		// Sequence numbers count the stream's messages across connections.
		`CONNECTED, rx(SOM|EOM,"after"), QOS_ACK_REMOTE(ack=2), DISCONNECTED, DESTROYING`,
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("events %s\ndo not contain %s", got, want)
		}
	}
	if s := b2.Subscribes(); len(s) != 1 || s[0] != "in/#" {
		t.Fatalf("resubscribed %v", s)
	}
}

// TestMQTTMismatchedKeepAlive: a stream that would share a broker connection
// opened with another keep alive never connects; the error names both
// streamtypes (docs/streams.md §12.2, overridden by issue #4: an error, not a
// warning).
func TestMQTTMismatchedKeepAlive(t *testing.T) {
	b := mqttBroker(t, "127.0.0.1:0")
	a := mqttType("ka10", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTKeepAlive, st.MQTTSubscribe = true, 10, "x" })
	c := mqttType("ka20", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTKeepAlive, st.MQTTTopic = true, 20, "x" })
	rt := newRuntime(t, ss.Config{Policy: newPolicy(a, c)})
	ctx := context.Background()
	sa, err := rt.Create(ctx, "ka10")
	if err != nil {
		t.Fatal(err)
	}
	ra := record(t, sa)
	ra.untilState(wait, ss.Connected)
	sc, err := rt.Create(ctx, "ka20")
	if err != nil {
		// The runtime refuses early (connmgr.CheckCompatible; see
		// TestMQTTMismatchAtCreate). The first stream is still ours to end:
		// Close would otherwise wait for its unread events.
		if !strings.Contains(err.Error(), "mqtt_keep_alive") {
			t.Fatal(err)
		}
		sa.Destroy(ctx)
		ra.closed(wait)
		ra.expect("CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
		return
	}
	rc := record(t, sc)
	rc.untilState(wait, ss.AllRetriesFailed)
	rc.expect("CREATING", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
	if n := len(b.Connects()); n != 1 {
		t.Fatalf("%d broker connections", n)
	}
	for _, r := range []*recorder{ra, rc} {
		r.s.Destroy(ctx)
		r.closed(wait)
	}
}
