package stream

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// TestDeliverOrder: with Config.Deliver, every event reaches Deliver once,
// in order, one call at a time; payload is offered on the producer's
// goroutine (wait false) and, when refused, comes again from the pump
// (wait true) before anything queued after it; the Events channel closes
// after DESTROYING was delivered.
func TestDeliverOrder(t *testing.T) {
	const n = 300
	e := newEnv(t)
	typ := st("d", nil)
	sent := make(chan struct{})
	p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
		sink.State(event.Connected, 0)
		for i := range n {
			if err := sink.Rx(ctx, []byte{byte(i), byte(i >> 8)}, 0); err != nil {
				t.Error(err)
			}
			if i%2 == 0 {
				time.Sleep(50 * time.Microsecond) // let the pump end now and then
			}
		}
		close(sent)
		<-ctx.Done()
		return transport.Result{Err: context.Cause(ctx)}
	}}
	var (
		mu               sync.Mutex
		got              []event.Event
		offers, refusals int
		pumped           int
		inFlight         atomic.Int32
	)
	deliver := func(ev event.Event, wait bool) bool {
		if inFlight.Add(1) != 1 {
			t.Error("Deliver called concurrently")
		}
		defer inFlight.Add(-1)
		mu.Lock()
		defer mu.Unlock()
		if !wait {
			if ev.Kind != event.PayloadEvent {
				t.Errorf("wait false for %v", ev)
			}
			offers++
			if offers%3 == 0 {
				refusals++
				return false
			}
		} else if ev.Kind == event.PayloadEvent {
			pumped++
		}
		got = append(got, ev)
		return true
	}
	s, err := New(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: p, Deliver: deliver})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sent:
	case <-time.After(20 * time.Second):
		t.Fatal("payload not all taken")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	for range s.Events() {
		t.Error("an event reached the channel")
	}
	mu.Lock()
	defer mu.Unlock()
	next := 0
	var states []event.State
	for _, ev := range got {
		if ev.Kind == event.PayloadEvent {
			if i := int(ev.Payload[0]) | int(ev.Payload[1])<<8; i != next {
				t.Fatalf("payload %d delivered where %d was due", i, next)
			}
			next++
			continue
		}
		states = append(states, ev.State)
	}
	if next != n {
		t.Fatalf("%d payloads delivered, want %d", next, n)
	}
	if len(states) == 0 || states[len(states)-1] != event.Destroying {
		t.Fatalf("states %v: want DESTROYING last", states)
	}
	if refusals == 0 || pumped < refusals {
		t.Fatalf("%d refusals, %d payloads from the pump: want every refused one again with wait", refusals, pumped)
	}
}
