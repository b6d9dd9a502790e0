package stream

import (
	"context"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// TestTransactionLoopServesEveryRequestTx: RequestTx made as soon as the
// previous transaction's DISCONNECTED arrives always starts the next one.
func TestTransactionLoopServesEveryRequestTx(t *testing.T) {
	e := newEnv(t)
	body := make([]byte, 1024)
	p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
		sink.State(event.Connected, 0)
		sink.Rx(ctx, body, event.SOM)
		sink.Rx(ctx, nil, event.EOM)
		sink.State(event.QoSAckRemote, 0)
		return transport.Result{Completed: true}
	}}
	typ := &policy.Streamtype{Name: "h", Protocol: policy.H1, Endpoint: "127.0.0.1", Port: 1, ClientCert: -1}
	s, err := New(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: p})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Destroy(context.Background())
		for range s.Events() {
		}
	}()
	<-s.Events() // CREATING
	for i := range 3000 {
		if err := s.RequestTx(); err != nil {
			t.Fatal(err)
		}
		var got []event.Event
	events:
		for {
			select {
			case ev := <-s.Events():
				got = append(got, ev)
				if ev.Kind == event.StateEvent && ev.State == event.Disconnected {
					break events
				}
			case <-time.After(2 * time.Second):
				s.tx.mu.Lock()
				asks, askSeen, armed, armGen, fired := s.tx.asks, s.tx.askSeen, s.tx.armed, s.tx.armGen, s.tx.fired
				s.tx.mu.Unlock()
				s.mu.Lock()
				states, queued, pumping := s.q.states, len(s.q.items)-s.q.head, s.q.pumping
				s.mu.Unlock()
				t.Fatalf("transaction %d: no DISCONNECTED; events %v; asks %d askSeen %d armed %v armGen %d fired %d; states %d queued %d pumping %v",
					i, got, asks, askSeen, armed, armGen, fired, states, queued, pumping)
			}
		}
	}
}
