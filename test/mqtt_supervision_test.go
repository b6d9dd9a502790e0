package test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/internal/transport/mqtt"
	"github.com/securestreams/ss/policy"
)

// eventLog records a stream's events as strings ("rx:payload" for payload).
type eventLog struct {
	mu   sync.Mutex
	got  []string
	done chan struct{}
}

func logEvents(s *stream.Stream) *eventLog {
	l := &eventLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev := range s.Events() {
			e := ev.String()
			if ev.Kind == event.PayloadEvent {
				e = "rx:" + string(ev.Payload)
			}
			l.mu.Lock()
			l.got = append(l.got, e)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// waitFor waits until an event after the first `from` is want; it returns
// the count of events up to it.
func (l *eventLog) waitFor(t *testing.T, from int, want string) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		got := l.list()
		for i := from; i < len(got); i++ {
			if got[i] == want {
				return i + 1
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%q not seen after event %d: %v", want, from, l.list())
	return 0
}

// TestMQTTConnectionActorPanic: a panic injected into the actor of one
// broker connection restarts it under the connection manager's
// supervision. Its stream sees DISCONNECTED, reconnects through its retry
// policy (CONNECTED again, subscribed again) and still receives publishes;
// a stream on another broker identity sees nothing happen.
func TestMQTTConnectionActorPanic(t *testing.T) {
	b1 := mqttBroker(t, "127.0.0.1:0")
	b2 := mqttBroker(t, "127.0.0.1:0")
	env := transport.Env{}.Defaults()
	sys := actor.NewSystem(nil)
	mgr := connmgr.New(connmgr.Config{Actors: sys})
	proto := mqtt.NewProtocol(env, mqtt.Options{Manager: mgr})
	h := stream.NewHost(sys, env)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, c := range []func(context.Context) error{h.Close, proto.Close, mgr.Close, sys.Shutdown} {
			if err := c(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	sub := func(name, addr, filter string) *policy.Streamtype {
		return mqttType(name, addr, func(st *policy.Streamtype) {
			st.NailedUp, st.MQTTSubscribe, st.MQTTQoS = true, filter, 1
			st.Retry = retry(100, 0, 20)
		})
	}
	st1, st2 := sub("one", b1.Addr, "t/1"), sub("two", b2.Addr, "t/2")
	pol := newPolicy(st1, st2)
	s1, err := stream.New(h, stream.Config{Policy: pol, Type: st1, Protocol: proto})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := stream.New(h, stream.Config{Policy: pol, Type: st2, Protocol: proto})
	if err != nil {
		t.Fatal(err)
	}
	l1, l2 := logEvents(s1), logEvents(s2)
	n1 := l1.waitFor(t, 0, "CONNECTED")
	l2.waitFor(t, 0, "CONNECTED")
	// publish repeats a PUBLISH until the stream got it (the SUBSCRIBE may
	// still be on its way when CONNECTED is seen).
	publish := func(b interface {
		Publish(string, []byte, bool, byte) error
	}, l *eventLog, from int, topic, payload string) int {
		t.Helper()
		deadline := time.Now().Add(wait)
		for time.Now().Before(deadline) {
			if err := b.Publish(topic, []byte(payload), false, 1); err != nil {
				t.Fatal(err)
			}
			for _, e := range l.list()[from:] {
				if e == "rx:"+payload {
					return len(l.list())
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%q never received: %v", payload, l.list())
		return 0
	}
	n1 = publish(b1, l1, n1, "t/1", "before")
	publish(b2, l2, 0, "t/2", "before")

	id1 := connmgr.Identity{Network: "tcp", Address: b1.Addr, ClientCert: -1}
	if !mgr.PanicConnection(id1) {
		t.Fatalf("no connection actor for %s", id1)
	}
	n1 = l1.waitFor(t, n1, "DISCONNECTED")
	n1 = l1.waitFor(t, n1, "CONNECTED")
	publish(b1, l1, n1, "t/1", "after")
	publish(b2, l2, 0, "t/2", "after")
	disconnected := (event.Event{Kind: event.StateEvent, State: event.Disconnected}).String()
	for _, e := range l2.list() {
		if e == disconnected {
			t.Fatalf("the other broker's stream was disturbed: %v", l2.list())
		}
	}
	if n := len(b2.Connects()); n != 1 {
		t.Fatalf("other broker saw %d connections, want 1", n)
	}
	if n := len(b1.Connects()); n != 2 {
		t.Fatalf("restarted broker connection: %d connections, want 2", n)
	}
	ctx := context.Background()
	for _, s := range []*stream.Stream{s1, s2} {
		if err := s.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
	}
	<-l1.done
	<-l2.done
}

// TestMQTTManagerInRuntimeActors: a runtime given Config.Actors runs its
// mqtt connection manager and the broker connection's actor in that system
// (one actor system per runtime), and its Close stops them before the
// user's system is shut down.
func TestMQTTManagerInRuntimeActors(t *testing.T) {
	b := mqttBroker(t, "127.0.0.1:0")
	sys := actor.NewSystem(nil)
	defer sys.Shutdown(context.Background())
	st := mqttType("m", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTTopic = true, "t" })
	rt, err := ss.New(context.Background(), ss.Config{Policy: newPolicy(st), Actors: sys})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Create(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	r.untilState(wait, ss.Connected)
	if n := mqttActors(sys); n < 2 {
		t.Fatalf("%d ss-mqtt actors in the runtime's system, want the manager and its connection", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := mqttActors(sys); n != 0 {
		t.Fatalf("%d ss-mqtt actors left in the user's system after rt.Close", n)
	}
}

// mqttActors counts the live actors whose id carries the connection
// manager's prefix in sys's process registry.
func mqttActors(sys *actor.System) int {
	n := 0
	for _, bucket := range sys.ActorSystem().ProcessRegistry.LocalPIDs.LocalPIDs {
		for _, id := range bucket.Keys() {
			if strings.Contains(id, "ss-mqtt-") {
				n++
			}
		}
	}
	return n
}
