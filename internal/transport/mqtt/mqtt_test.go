package mqtt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

func TestQoS1TwoPublishes(t *testing.T) {
	f := newFixture(t)
	col, _ := f.broker.Collect("up/#")
	st := streamtype("pub", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTTopic = "up/x"; st.MQTTQoS = 1 })
	r := start(f.p, f.env, st, nil)
	r.tx.send("one")
	r.tx.send("two")
	evs := r.sink.waitN(t, 3)
	equal(t, evs, []string{"CONNECTED", "QOS_ACK_REMOTE(1)", "QOS_ACK_REMOTE(2)"})
	msgs, err := col.Wait(ctx10(t), 2)
	if err != nil || string(msgs[0].Payload) != "one" || string(msgs[1].Payload) != "two" || msgs[0].QoS != 1 {
		t.Fatalf("broker got %+v, %v", msgs, err)
	}
	res := r.stop(t)
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("result %v", res.Err)
	}
	equal(t, r.sink.events(), []string{"CONNECTED", "QOS_ACK_REMOTE(1)", "QOS_ACK_REMOTE(2)"})
}

func TestQoS0TwoPublishes(t *testing.T) {
	f := newFixture(t)
	col, _ := f.broker.Collect("up/#")
	st := streamtype("pub0", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTTopic = "up/y" })
	r := start(f.p, f.env, st, nil)
	r.tx.send("a")
	r.tx.send("b")
	equal(t, r.sink.waitN(t, 3), []string{"CONNECTED", "QOS_ACK_LOCAL(1)", "QOS_ACK_LOCAL(2)"})
	if _, err := col.Wait(ctx10(t), 2); err != nil {
		t.Fatal(err)
	}
	r.stop(t)
}

// holdConn passes bytes through; once armed, it holds the next PUBLISH
// write after its bytes are on the wire, until release: paho's writer has
// sent the packet but not yet completed its token.
type holdConn struct {
	net.Conn
	arm     *atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (c *holdConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil && len(p) > 0 && p[0]&0xf0 == 0x30 && c.arm.CompareAndSwap(true, false) {
		close(c.held)
		<-c.release
	}
	return n, err
}

// TestQoS0EndWhileWriteCompletes: the stream ends (Disconnect, Destroy) just
// after a QoS 0 PUBLISH went on the wire (the broker has it) but before
// paho's writer completed its token. The message was sent: QOS_ACK_LOCAL,
// not the QOS_NACK_LOCAL a drain that did not wait for the token gave (seen
// in BenchmarkMQTTQoS0, which destroys its streams right after the last
// message arrives).
func TestQoS0EndWhileWriteCompletes(t *testing.T) {
	f := newFixture(t)
	col, _ := f.broker.Collect("up/#")
	var arm atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the fixture's cleanup (LIFO): the writer must finish
	env := *f.env
	d := &net.Dialer{}
	env.MQTTAckTimeout = time.Minute // the ack deadline never decides here
	env.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &holdConn{Conn: c, arm: &arm, held: held, release: release}, nil
	}
	st := streamtype("end0", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTTopic = "up/e" })
	r := start(f.p, &env, st, nil)
	r.sink.waitN(t, 1)
	arm.Store(true)
	r.tx.send("a")
	<-held
	if _, err := col.Wait(ctx10(t), 1); err != nil {
		t.Fatal(err)
	}
	r.cancel()
	// Release the write once Run has returned (the old drain) or waits for
	// the token (the fix).
	var res *transport.Result
	if !testutil.WaitFor(ctx10(t), func() bool {
		select {
		case x := <-r.done:
			res = &x
			return true
		default:
			return testutil.GoroutinesIn("mqtt.(*session).await") > 0
		}
	}) {
		t.Fatal("Run neither returned nor waited for the token")
	}
	free()
	if res == nil {
		r.wait(t)
	}
	equal(t, r.sink.events(), []string{"CONNECTED", "QOS_ACK_LOCAL(1)"})
}

func TestQoS2ManyInFlight(t *testing.T) {
	f := newFixture(t)
	col, _ := f.broker.Collect("q2")
	st := streamtype("q2", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTTopic = "q2"; st.MQTTQoS = 2 })
	r := start(f.p, f.env, st, nil)
	const n = 50
	for i := range n {
		r.tx.send(fmt.Sprint(i))
	}
	evs := r.sink.waitN(t, n+1)
	for i := 1; i <= n; i++ {
		if evs[i] != fmt.Sprintf("QOS_ACK_REMOTE(%d)", i) {
			t.Fatalf("event %d: %v", i, evs)
		}
	}
	if _, err := col.Wait(ctx10(t), n); err != nil {
		t.Fatal(err)
	}
	r.stop(t)
}

func TestChunksAndLength(t *testing.T) {
	f := newFixture(t)
	col, _ := f.broker.Collect("c")
	st := streamtype("chunks", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTTopic = "c"; st.MQTTQoS = 1 })
	r := start(f.p, f.env, st, nil)
	r.tx.ch <- transport.Chunk{Data: []byte("hel"), Flags: event.SOM, Len: 8}
	r.tx.ch <- transport.Chunk{Data: []byte("lo"), Len: -1}
	r.tx.ch <- transport.Chunk{Data: []byte("!!!"), Flags: event.EOM, Len: -1}
	// Announced 10, sent 5: not sent.
	r.tx.ch <- transport.Chunk{Data: []byte("short"), Flags: event.SOM | event.EOM, Len: 10}
	// The announced length applies to one message only.
	r.tx.send("free length")
	equal(t, r.sink.waitN(t, 4), []string{"CONNECTED", "QOS_ACK_REMOTE(1)", "QOS_NACK_LOCAL(2)", "QOS_ACK_REMOTE(3)"})
	msgs, err := col.Wait(ctx10(t), 2)
	if err != nil || string(msgs[0].Payload) != "hello!!!" || string(msgs[1].Payload) != "free length" {
		t.Fatalf("broker got %+v %v", msgs, err)
	}
	r.stop(t)
}

func TestTopicChecksNackLocal(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		topic string
		aws   bool
	}{
		{"a/+/b", false},
		{"a/#", false},
		{"${empty}", false},
		{strings.Repeat("x", 257), true},
	} {
		st := streamtype("bad", f.broker.Addr, func(st *policy.Streamtype) {
			st.MQTTTopic, st.MQTTQoS, st.AWSIoT = tc.topic, 1, tc.aws
			st.Metadata = []*policy.MetadataItem{{Name: "empty"}}
		})
		r := start(f.p, f.env, st, nil)
		r.tx.send("x")
		equal(t, r.sink.waitN(t, 2), []string{"CONNECTED", "QOS_NACK_LOCAL(1)"})
		if err := r.sink.err(1); err == nil || !strings.Contains(err.Error(), "not sent") {
			t.Errorf("topic %q: NACK cause %v", tc.topic, err)
		}
		r.stop(t)
	}
	// 256 bytes is fine with aws_iot; 257 is fine without.
	for _, tc := range []struct {
		n   int
		aws bool
	}{{256, true}, {257, false}} {
		st := streamtype("ok", f.broker.Addr, func(st *policy.Streamtype) {
			st.MQTTTopic, st.MQTTQoS, st.AWSIoT = strings.Repeat("y", tc.n), 1, tc.aws
		})
		r := start(f.p, f.env, st, nil)
		r.tx.send("x")
		equal(t, r.sink.waitN(t, 2), []string{"CONNECTED", "QOS_ACK_REMOTE(1)"})
		r.stop(t)
	}
}

func TestSubscribeWildcards(t *testing.T) {
	f := newFixture(t)
	st := streamtype("sub", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTSubscribe = "a/+/c/#"; st.MQTTQoS = 1 })
	r := start(f.p, f.env, st, nil)
	r.sink.waitN(t, 1)
	for _, topic := range []string{"a/x/c/d/e", "a/y/z", "a/x/c", "b/x/c/d", "a/q/c/r"} {
		if err := f.broker.Publish(topic, []byte(topic), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	evs := r.sink.waitN(t, 4)
	equal(t, evs, []string{"CONNECTED", `rx(SOM|EOM,"a/x/c/d/e")`, `rx(SOM|EOM,"a/x/c")`, `rx(SOM|EOM,"a/q/c/r")`})
	r.stop(t)
	if u := f.broker.Unsubscribes(); len(u) != 1 || u[0] != "a/+/c/#" {
		t.Fatalf("unsubscribes %v", u)
	}
}

func TestSharedConnectionOverlappingFilters(t *testing.T) {
	f := newFixture(t)
	a := start(f.p, f.env, streamtype("A", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTSubscribe = "t/#" }), nil)
	b := start(f.p, f.env, streamtype("B", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTSubscribe = "t/+" }), nil)
	c := start(f.p, f.env, streamtype("C", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTSubscribe = "u/#" }), nil)
	for _, r := range []*running{a, b, c} {
		r.sink.waitN(t, 1)
	}
	if n := len(f.broker.Connects()); n != 1 {
		t.Fatalf("broker saw %d connections, want 1", n)
	}
	if n := f.p.Manager().Connections(); n != 1 {
		t.Fatalf("manager has %d connections", n)
	}
	f.broker.Publish("t/1", []byte("m1"), false, 0)
	f.broker.Publish("t/1/2", []byte("m2"), false, 0)
	equal(t, a.sink.waitN(t, 3), []string{"CONNECTED", `rx(SOM|EOM,"m1")`, `rx(SOM|EOM,"m2")`})
	equal(t, b.sink.waitN(t, 2), []string{"CONNECTED", `rx(SOM|EOM,"m1")`})
	time.Sleep(50 * time.Millisecond)
	equal(t, c.sink.events(), []string{"CONNECTED"})
	equal(t, b.sink.events(), []string{"CONNECTED", `rx(SOM|EOM,"m1")`})

	// Refcount: the connection stays while any stream is attached, and the
	// last one to leave closes it with DISCONNECT.
	a.stop(t)
	b.stop(t)
	if f.broker.Connected() != 1 || f.broker.Disconnects() != 0 {
		t.Fatalf("connection closed early: connected %d disconnects %d", f.broker.Connected(), f.broker.Disconnects())
	}
	c.stop(t)
	if !testutil.WaitFor(ctx10(t), func() bool { return f.broker.Disconnects() == 1 && f.broker.Connected() == 0 }) {
		t.Fatalf("broker did not see the disconnect: connected %d disconnects %d", f.broker.Connected(), f.broker.Disconnects())
	}
	if n := f.p.Manager().Connections(); n != 0 {
		t.Fatalf("manager still has %d connections", n)
	}
}

func TestMismatchedKeepAlive(t *testing.T) {
	f := newFixture(t)
	a := start(f.p, f.env, streamtype("ka30", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTKeepAlive = 30; st.MQTTSubscribe = "x" }), nil)
	a.sink.waitN(t, 1)
	stB := streamtype("ka60", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTKeepAlive = 60; st.MQTTTopic = "x" })

	err := f.p.CheckCompatible(&transport.Attempt{Type: stB, Env: f.env})
	var me *connmgr.MismatchError
	if !errors.As(err, &me) || me.Key != "mqtt_keep_alive" || me.Streamtype != "ka60" || me.Other != "ka30" {
		t.Fatalf("CheckCompatible: %v", err)
	}
	for _, want := range []string{`"ka60"`, `"ka30"`, "mqtt_keep_alive", "60", "30"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %s", err, want)
		}
	}
	b := start(f.p, f.env, stB, nil)
	res := b.wait(t)
	if !errors.As(res.Err, &me) || !errors.Is(res.Err, connmgr.ErrMismatch) {
		t.Fatalf("Run: %v", res.Err)
	}
	if len(b.sink.events()) != 0 {
		t.Fatalf("events %v", b.sink.events())
	}
	// Will and clean start are compared too.
	stW := streamtype("will", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTKeepAlive = 30; st.MQTTWillTopic = "w" })
	if err := f.p.CheckCompatible(&transport.Attempt{Type: stW, Env: f.env}); !errors.As(err, &me) || me.Key != "mqtt_will_topic" {
		t.Fatalf("will: %v", err)
	}
	a.stop(t)
	// Nothing open any more: compatible.
	if err := f.p.CheckCompatible(&transport.Attempt{Type: stB, Env: f.env}); err != nil {
		t.Fatal(err)
	}
}

func TestMetadataInTopicsAndWill(t *testing.T) {
	f := newFixture(t)
	col, _ := f.broker.Collect("dev/+/up/#")
	st := streamtype("meta", f.broker.Addr, func(st *policy.Streamtype) {
		st.Metadata = []*policy.MetadataItem{{Name: "id"}, {Name: "region"}}
		st.MQTTTopic = "dev/${id}/up/${region}"
		st.MQTTSubscribe = "dev/${id}/down"
		st.MQTTWillTopic = "dev/${id}/will"
		st.MQTTWillMessage = "gone ${id}"
		st.MQTTWillQoS = 1
		st.MQTTKeepAlive = 20
		st.MQTTQoS = 1
	})
	r := start(f.p, f.env, st, map[string]string{"id": "42", "region": "uk"})
	r.sink.waitN(t, 1)
	r.tx.send("hello")
	f.broker.Publish("dev/42/down", []byte("cmd"), false, 1)
	f.broker.Publish("dev/43/down", []byte("other"), false, 1)
	r.sink.waitN(t, 3)
	msgs, err := col.Wait(ctx10(t), 1)
	if err != nil || msgs[0].Topic != "dev/42/up/uk" {
		t.Fatalf("broker got %+v %v", msgs, err)
	}
	evs := r.sink.events()
	if count(evs, "QOS_ACK_REMOTE(1)") != 1 || count(evs, `rx(SOM|EOM,"cmd")`) != 1 || len(evs) != 3 {
		t.Fatalf("events %v", evs)
	}
	ci := f.broker.Connects()[0]
	if !ci.WillFlag || ci.WillTopic != "dev/42/will" || ci.WillMsg != "gone 42" || ci.WillQoS != 1 || ci.KeepAlive != 20 || !ci.Clean {
		t.Fatalf("CONNECT %+v", ci)
	}
	r.stop(t)
}

func TestRetainAndBirth(t *testing.T) {
	f := newFixture(t)
	birth, _ := f.broker.Collect("birth/#")
	st := streamtype("ret", f.broker.Addr, func(st *policy.Streamtype) {
		st.MQTTTopic, st.MQTTRetain, st.MQTTQoS = "r/state", true, 1
		st.MQTTBirthTopic, st.MQTTBirthMessage, st.MQTTBirthQoS = "birth/ss", "up", 1
	})
	r := start(f.p, f.env, st, nil)
	r.sink.waitN(t, 1)
	r.tx.send("on")
	r.sink.waitN(t, 2)
	// A second stream on the same connection does not send the birth again,
	// and receives the retained message when it subscribes.
	st2 := streamtype("ret2", f.broker.Addr, func(st *policy.Streamtype) {
		st.MQTTSubscribe = "r/#"
		st.MQTTBirthTopic, st.MQTTBirthMessage, st.MQTTBirthQoS = "birth/ss", "up", 1
	})
	r2 := start(f.p, f.env, st2, nil)
	equal(t, r2.sink.waitN(t, 2), []string{"CONNECTED", `rx(SOM|EOM,"on")`})
	time.Sleep(50 * time.Millisecond)
	if m := birth.Messages(); len(m) != 1 || string(m[0].Payload) != "up" {
		t.Fatalf("birth messages %+v", m)
	}
	r.stop(t)
	r2.stop(t)
}

func TestConnectRefusedIsAttemptFailure(t *testing.T) {
	f := newFixture(t)
	port := f.broker.Port()
	ctx := ctx10(t)
	f.broker.Close(ctx)
	st := streamtype("gone", fmt.Sprintf("127.0.0.1:%d", port), func(st *policy.Streamtype) { st.MQTTTopic = "x" })
	r := start(f.p, f.env, st, nil)
	res := r.wait(t)
	if res.Err == nil || len(r.sink.events()) != 0 {
		t.Fatalf("result %v events %v", res.Err, r.sink.events())
	}
	f.broker, _ = mqtttest.Start(fmt.Sprintf("127.0.0.1:%d", port)) // for the cleanup
}

func TestDisconnectWhileAttaching(t *testing.T) {
	f := newFixture(t)
	st := streamtype("quick", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTSubscribe = "q" })
	for range 5 {
		r := start(f.p, f.env, st, nil)
		r.cancel()
		r.wait(t)
	}
	if !testutil.WaitFor(ctx10(t), func() bool { return f.p.Manager().Connections() == 0 && f.broker.Connected() == 0 }) {
		t.Fatalf("connections left: manager %d broker %d", f.p.Manager().Connections(), f.broker.Connected())
	}
}

func TestBrokerRestart(t *testing.T) {
	f := newFixture(t)
	port := f.broker.Port()
	col, _ := f.broker.Collect("r")
	st := streamtype("restart", f.broker.Addr, func(st *policy.Streamtype) {
		st.MQTTTopic, st.MQTTSubscribe, st.MQTTQoS = "r", "s/#", 1
	})
	r := start(f.p, f.env, st, nil)
	r.sink.waitN(t, 1)
	for i := 1; i <= 20; i++ {
		r.tx.send(fmt.Sprint(i))
	}
	r.sink.waitN(t, 21)
	for i := 21; i <= 1000; i++ {
		r.tx.send(fmt.Sprint(i))
	}
	r.sink.waitN(t, 100)
	if err := f.broker.Close(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	res := r.wait(t)
	if !errors.Is(res.Err, connmgr.ErrConnectionLost) {
		t.Fatalf("result %v", res.Err)
	}
	got := map[string]bool{}
	for _, m := range col.Messages() {
		got[string(m.Payload)] = true
	}
	evs := r.sink.events()
	seen := map[int]bool{}
	acked := 0
	for _, e := range evs[1:] {
		var seq int
		switch {
		case strings.HasPrefix(e, "QOS_ACK_REMOTE("):
			fmt.Sscanf(e, "QOS_ACK_REMOTE(%d)", &seq)
			acked++
			if !got[fmt.Sprint(seq)] {
				t.Errorf("message %d acknowledged but the broker never had it", seq)
			}
		case strings.HasPrefix(e, "QOS_NACK_REMOTE("):
			fmt.Sscanf(e, "QOS_NACK_REMOTE(%d)", &seq)
		default:
			t.Fatalf("unexpected event %q in %v", e, evs)
		}
		if seen[seq] {
			t.Fatalf("message %d reported twice: %v", seq, evs)
		}
		seen[seq] = true
	}
	// Every message taken from the tx queue is accounted for.
	if len(seen) != 1000-len(r.tx.ch) {
		t.Fatalf("%d messages reported, %d still queued: %v", len(seen), len(r.tx.ch), evs)
	}
	t.Logf("before the restart: %d acknowledged, %d not", acked, len(seen)-acked)

	// The stream's retry reattaches: one new broker connection, resubscribed.
	b2, err := mqtttest.Start(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	f.broker = b2
	col2, _ := b2.Collect("r")
	r2 := start(f.p, f.env, st, nil)
	r2.sink.waitN(t, 1)
	if s := b2.Subscribes(); len(s) != 1 || s[0] != "s/#" {
		t.Fatalf("resubscribed %v", s)
	}
	b2.Publish("s/1", []byte("after"), false, 1)
	r2.tx.send("new")
	evs2 := r2.sink.waitN(t, 3)
	if count(evs2, `rx(SOM|EOM,"after")`) != 1 || count(evs2, "QOS_ACK_REMOTE(1)") != 1 {
		t.Fatalf("after restart: %v", evs2)
	}
	if _, err := col2.Wait(ctx10(t), 1); err != nil {
		t.Fatal(err)
	}
	if n := f.p.Manager().Opened(); n != 2 {
		t.Fatalf("opened %d broker connections", n)
	}
	r2.stop(t)
}

func TestMosquitto(t *testing.T) {
	addr := mqtttest.Mosquitto(t)
	env := (&transport.Env{MQTTAckTimeout: 3 * time.Second, ConnectTimeout: 3 * time.Second}).Defaults()
	p := NewProtocol(env, Options{})
	defer p.Close(ctx10(t))
	sub := start(p, env, streamtype("msub", addr, func(st *policy.Streamtype) { st.MQTTSubscribe = "m/+"; st.MQTTQoS = 1 }), nil)
	sub.sink.waitN(t, 1)
	pub := start(p, env, streamtype("mpub", addr, func(st *policy.Streamtype) { st.MQTTTopic = "m/1"; st.MQTTQoS = 1 }), nil)
	pub.sink.waitN(t, 1)
	pub.tx.send("one")
	pub.tx.send("two")
	equal(t, pub.sink.waitN(t, 3), []string{"CONNECTED", "QOS_ACK_REMOTE(1)", "QOS_ACK_REMOTE(2)"})
	equal(t, sub.sink.waitN(t, 3), []string{"CONNECTED", `rx(SOM|EOM,"one")`, `rx(SOM|EOM,"two")`})
	if n := p.Manager().Connections(); n != 1 {
		t.Fatalf("%d broker connections", n)
	}
	q0 := start(p, env, streamtype("mq0", addr, func(st *policy.Streamtype) { st.MQTTTopic = "m/2" }), nil)
	q0.tx.send("z")
	equal(t, q0.sink.waitN(t, 2), []string{"CONNECTED", "QOS_ACK_LOCAL(1)"})
	sub.sink.waitN(t, 4)
	for _, r := range []*running{pub, sub, q0} {
		r.stop(t)
	}
	if n := p.Manager().Connections(); n != 0 {
		t.Fatalf("%d broker connections left", n)
	}
}

// TestSequenceAcrossReconnection: QoS events number the messages of the
// stream, not of one connection.
func TestSequenceAcrossReconnection(t *testing.T) {
	f := newFixture(t)
	st := streamtype("seq", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTTopic, st.MQTTQoS = "s", 1 })
	r := start(f.p, f.env, st, nil)
	r.tx.send("a")
	r.tx.send("b")
	r.sink.waitN(t, 3)
	r.stop(t)
	r2 := startAs(f.p, f.env, st, nil, r.id)
	r2.tx.send("c")
	equal(t, r2.sink.waitN(t, 2), []string{"CONNECTED", "QOS_ACK_REMOTE(3)"})
	r2.stop(t)
}

// pingSink is a recSink that offers the stream's ping hook.
type pingSink struct {
	*recSink
	ping chan func()
}

func (p *pingSink) SetPing(f func()) { p.ping <- f }

func (p *pingSink) ValidityConfirmed() { p.add("VALID") }

func TestValidityPing(t *testing.T) {
	f := newFixture(t)
	st := streamtype("ping", f.broker.Addr, func(st *policy.Streamtype) { st.MQTTSubscribe = "quiet" })
	sink := &pingSink{recSink: newSink(), ping: make(chan func(), 1)}
	a := &transport.Attempt{Type: st, Tx: newTx(), Env: f.env, StreamID: 999}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan transport.Result, 1)
	go func() { done <- f.p.Run(ctx, a, sink) }()
	var ping func()
	select {
	case ping = <-sink.ping:
	case <-time.After(10 * time.Second):
		t.Fatal("no ping hook")
	}
	for i := range 3 {
		ping()
		sink.recSink.waitFor(t, "confirmation", func(evs []string) bool { return count(evs, "VALID") == i+1 })
	}
	equal(t, sink.events(), []string{"CONNECTED", "VALID", "VALID", "VALID"})
	cancel()
	<-done
}
