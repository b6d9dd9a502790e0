package stream

import (
	"context"
	"errors"
	"io"
	"runtime/metrics"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// gatedTxn is an HTTP-like transport: CONNECTED, then (once the test opens
// the gate) a 1-byte body, EOM, QOS_ACK_REMOTE, a completed transaction.
func gatedTxn(gate chan struct{}) *fakeProto {
	return &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
		sink.State(event.Connected, 0)
		select {
		case <-gate:
		case <-ctx.Done():
			return transport.Result{Err: context.Cause(ctx)}
		}
		if err := sink.Rx(ctx, []byte("b"), event.SOM); err != nil {
			return transport.Result{Err: err}
		}
		if err := sink.Rx(ctx, nil, event.EOM); err != nil {
			return transport.Result{Err: err}
		}
		sink.State(event.QoSAckRemote, 0)
		return transport.Result{Completed: true}
	}}
}

// newGatedH1 creates an h1 stream whose transactions are gatedTxn(gate).
func newGatedH1(t *testing.T, e *env, gate chan struct{}) *Stream {
	t.Helper()
	typ := &policy.Streamtype{Name: "h", Protocol: policy.H1, Endpoint: "127.0.0.1", Port: 1, ClientCert: -1}
	s, err := New(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: gatedTxn(gate)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func eventString(ev event.Event) string {
	if ev.Kind == event.PayloadEvent {
		return "rx(" + ev.Flags.String() + "," + string(ev.Payload) + ")"
	}
	return ev.State.String()
}

// TestTransactionTailNoPump: the events an HTTP transaction queues while
// the application handles CONNECTED (body, EOM, QOS_ACK_REMOTE,
// DISCONNECTED) wait in the channel (chanRoom) and are taken in order with
// no pump goroutine: 20 transactions start no goroutine once the attempt's
// runner exists. Before chanRoom each one started a pump.
func TestTransactionTailNoPump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		gate := make(chan struct{})
		s := newGatedH1(t, e, gate)
		if ev := <-s.Events(); ev.State != event.Creating {
			t.Fatalf("first event %v", ev)
		}
		var created uint64
		for i := range 21 {
			before := goroutinesCreated()
			if err := s.RequestTx(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for len(got) < 3 { // POLL, CONNECTING, CONNECTED
				got = append(got, eventString(<-s.Events()))
			}
			gate <- struct{}{}
			synctest.Wait() // the attempt has ended; the tail is queued, unread
			for {
				ev := <-s.Events()
				got = append(got, eventString(ev))
				if ev.State == event.Disconnected {
					break
				}
			}
			want := "POLL CONNECTING CONNECTED rx(SOM,b) rx(EOM,) QOS_ACK_REMOTE DISCONNECTED"
			if g := strings.Join(got, " "); g != want {
				t.Fatalf("transaction %d: %s, want %s", i, g, want)
			}
			if i > 0 { // the first starts the runner
				created += goroutinesCreated() - before
			}
		}
		if created != 0 {
			t.Errorf("20 transactions started %d goroutines, want 0", created)
		}
		s.Destroy(context.Background())
		for range s.Events() {
		}
	})
}

// TestRecvTakesChannelRoomFirst: events already in the channel (read with
// Events until then) come first when the application switches to Recv,
// then the queue, in order; DESTROYING, then io.EOF.
func TestRecvTakesChannelRoomFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		gate := make(chan struct{})
		s := newGatedH1(t, e, gate)
		<-s.Events() // CREATING
		s.RequestTx()
		for range 3 { // POLL, CONNECTING, CONNECTED
			<-s.Events()
		}
		close(gate)
		synctest.Wait()
		s.mu.Lock()
		inChan := len(s.q.ch)
		s.mu.Unlock()
		if inChan != chanRoom {
			t.Fatalf("%d events in the channel, want %d", inChan, chanRoom)
		}
		s.RequestTx() // the next transaction's events queue behind them
		synctest.Wait()
		var got []string
		for {
			ev, err := s.Recv(context.Background())
			if err != nil {
				t.Fatalf("Recv after %v: %v", got, err)
			}
			got = append(got, eventString(ev))
			if ev.State == event.Disconnected && len(got) > 4 {
				break
			}
		}
		want := "rx(SOM,b) rx(EOM,) QOS_ACK_REMOTE DISCONNECTED POLL CONNECTING CONNECTED rx(SOM,b) rx(EOM,) QOS_ACK_REMOTE DISCONNECTED"
		if g := strings.Join(got, " "); g != want {
			t.Fatalf("Recv: %s\nwant  %s", g, want)
		}
		s.Destroy(context.Background())
		if ev, err := s.Recv(context.Background()); err != nil || ev.State != event.Destroying {
			t.Fatalf("after Destroy: %v, %v", ev, err)
		}
		if _, err := s.Recv(context.Background()); !errors.Is(err, io.EOF) {
			t.Fatalf("after DESTROYING: %v", err)
		}
	})
}

// TestAbandonKeepsChannelRoom: once the host's Close gives up on a reader,
// what is queued is discarded and the channel closed, but the events
// already in the channel (chanRoom) count as delivered: the reader still
// gets those, in order, then the end of the channel.
func TestAbandonKeepsChannelRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		gate := make(chan struct{})
		close(gate)
		s := newGatedH1(t, e, gate)
		s.RequestTx() // CREATING ... DISCONNECTED: more than the channel holds
		synctest.Wait()
		s.mu.Lock()
		inChan, pumping := len(s.q.ch), s.q.pumping
		s.mu.Unlock()
		if inChan != chanRoom || !pumping {
			t.Fatalf("%d events in the channel, pumping %v: want %d and a pump", inChan, pumping, chanRoom)
		}
		if err := e.h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for ev := range s.Events() {
			got = append(got, eventString(ev))
		}
		if g, want := strings.Join(got, " "), "CREATING POLL CONNECTING CONNECTED"; g != want {
			t.Fatalf("after Close gave up: %s, want %s", g, want)
		}
	})
}
