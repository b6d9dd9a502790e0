package stream

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// TestEndUnstartedCountsBeforeDestroying: a NewProps stream whose Props were
// never spawned is ended by Host.Close; by the time its reader holds
// DESTROYING the host no longer counts it (as for a started stream). Before
// the fix endUnstarted queued DESTROYING first and removed the stream
// afterwards, so a reader already waiting on the channel (the direct
// hand-over) could see Streams() == 1.
func TestEndUnstartedCountsBeforeDestroying(t *testing.T) {
	typ := st("p", nil)
	pol := &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}
	for round := range 100 {
		sys := actor.NewSystem(nil)
		h := NewHost(sys, transport.Env{}.Defaults())
		s, _, err := NewProps(h, Config{Policy: pol, Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan int, 1)
		created := make(chan struct{})
		go func() {
			n := -1
			for ev := range s.Events() {
				switch ev.State {
				case event.Creating:
					close(created) // then wait on the channel
				case event.Destroying:
					n = h.Streams()
				}
			}
			got <- n
		}()
		<-created
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		n := <-got
		if err := sys.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("round %d: Streams() = %d when DESTROYING arrived, want 0", round, n)
		}
	}
}

// connectOnCancel is a transport that reports CONNECTED and payload only
// once the stream has cancelled its attempt (a connection that completes
// just as the application asks to end it), and records what Rx returned.
func connectOnCancel(rxErr *error) func(int, context.Context, *transport.Attempt, transport.Sink) transport.Result {
	return func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
		<-ctx.Done()
		sink.State(event.Connected, 0)
		*rxErr = sink.Rx(context.Background(), []byte("late"), event.SOM|event.EOM)
		return transport.Result{Err: context.Cause(ctx)}
	}
}

// TestConnectedAfterCutNotDelivered: once the actor has ended an attempt
// (Disconnect, Destroy), a CONNECTED the transport reports afterwards and
// the payload after it never reach the application: the actor, not the
// transport, decides which connection is current. With the old split
// ownership the sink queued CONNECTED and the payload itself (CONNECTING,
// CONNECTED, rx, DISCONNECTED).
func TestConnectedAfterCutNotDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var rxErr error
		s, r := e.create(st("v", rtry(5, 0, 100)), &fakeProto{run: connectOnCancel(&rxErr)})
		s.RequestTx()
		settle(time.Second)
		if err := s.Disconnect(); err != nil {
			t.Fatal(err)
		}
		settle(time.Minute)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "DISCONNECTED")
		if !errors.Is(rxErr, ErrDisconnect) {
			t.Fatalf("Rx after Disconnect returned %v, want ErrDisconnect", rxErr)
		}
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var rxErr error
		s, r := e.create(st("v", nil), &fakeProto{run: connectOnCancel(&rxErr)})
		s.RequestTx()
		settle(time.Second)
		destroy(t, s, r)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "DESTROYING")
		if !errors.Is(rxErr, ErrDestroyed) {
			t.Fatalf("Rx after Destroy returned %v, want ErrDestroyed", rxErr)
		}
	})
}

// TestReportsRaceLifecycle: a transport reports CONNECTED, payload and a
// QoS state from a goroutine of its own, racing with the end of its Run,
// with Disconnect and with Destroy. Whatever the interleaving, the
// application sees a consistent story: every transition legal (checked by
// the env), payload only while CONNECTED is current, every CONNECTED
// followed by DISCONNECTED before the next CONNECTING or DESTROYING, and
// nothing after DESTROYING. Run many times under -race.
func TestReportsRaceLifecycle(t *testing.T) {
	for round := range 300 {
		typ := st("race", rtry(65535, 0, 1))
		sys := actor.NewSystem(nil)
		h := NewHost(sys, transport.Env{}.Defaults())
		h.Traits = func(p policy.Protocol) Traits { return testTraits[p] }
		var wg sync.WaitGroup
		p := &fakeProto{run: func(n int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sink.State(event.Connected, 0)
				_ = sink.Rx(ctx, []byte("x"), event.SOM|event.EOM)
				sink.State(event.QoSAckLocal, 0)
			}()
			if n%3 == 0 {
				<-ctx.Done()
			}
			return transport.Result{Err: errors.New("refused")}
		}}
		s, err := New(h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: p})
		if err != nil {
			t.Fatal(err)
		}
		var evs []event.Event
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range s.Events() {
				evs = append(evs, ev)
			}
		}()
		s.RequestTx()
		for p.count() < 1+round%3 {
			runtime.Gosched()
		}
		if round%2 == 0 {
			s.Disconnect()
			s.RequestTx()
		}
		if err := s.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-done
		wg.Wait()
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := sys.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := h.IllegalTransitions(); n != 0 {
			t.Fatalf("round %d: %d illegal transitions: %v", round, n, evs)
		}
		checkStory(t, round, evs)
	}
}

// checkStory checks the invariants TestReportsRaceLifecycle promises.
func checkStory(t *testing.T, round int, evs []event.Event) {
	t.Helper()
	up := false
	for i, ev := range evs {
		if ev.Kind == event.PayloadEvent {
			if !up {
				t.Fatalf("round %d: payload at %d while not connected: %v", round, i, evs)
			}
			continue
		}
		switch ev.State {
		case event.Connected:
			up = true
		case event.Disconnected:
			up = false
		case event.Connecting, event.Destroying, event.Unreachable, event.Poll:
			if up {
				t.Fatalf("round %d: %s at %d while CONNECTED is current: %v", round, ev.State, i, evs)
			}
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].State != event.Destroying {
		t.Fatalf("round %d: does not end with DESTROYING: %v", round, evs)
	}
}
