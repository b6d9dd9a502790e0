package stream

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// TestQoSAckStopsTimeout: an acknowledgement that ends the stream timeout
// (H1 traits) still reaches the actor now that acknowledgements with
// nothing to do skip it (qosNeedsActor): StartTimeout(500 ms), ack at
// 200 ms, no TIMEOUT; a second transaction without an ack times out.
func TestQoSAckStopsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: func(n int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			if n == 1 {
				time.Sleep(200 * time.Millisecond)
				sink.State(event.QoSAckLocal, 0)
			}
			<-ctx.Done()
			return transport.Result{Err: context.Cause(ctx)}
		}}
		typ := st("h", nil)
		typ.Protocol = policy.H1
		s, r := e.create(typ, p)
		s.StartTimeout(500 * time.Millisecond)
		s.RequestTx()
		settle(time.Second)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 CONNECTED@0 QOS_ACK_LOCAL@200")
		s.StartTimeout(300 * time.Millisecond)
		settle(time.Second)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 CONNECTED@0 QOS_ACK_LOCAL@200 TIMEOUT@1300")
		destroy(t, s, r)
	})
}

// TestQoSAckResetsFailures: after two failed attempts the counter is 2;
// the first acknowledgement on the connection that follows resets it
// (the actor is told because the counter is not 0), and later ones, with
// nothing to reset, leave it at 0.
func TestQoSAckResetsFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		ack := make(chan struct{})
		p := &fakeProto{run: func(n int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			if n < 3 {
				return refuse(n, ctx, nil, sink)
			}
			sink.State(event.Connected, 0)
			for {
				select {
				case <-ack:
					sink.State(event.QoSAckRemote, 1)
				case <-ctx.Done():
					return transport.Result{Err: context.Cause(ctx)}
				}
			}
		}}
		// Retries 10 s apart: the health time (the first backoff, 10 s
		// after CONNECTED at 20 s) cannot reset the counter first.
		typ := st("h", rtry(5, 0, 10_000))
		typ.Protocol = policy.H1
		s, r := e.create(typ, p)
		s.RequestTx()
		settle(20500 * time.Millisecond)
		if f := s.Stats().Failures; f != 2 {
			t.Fatalf("Failures = %d before the ack, want 2 (%s)", f, r)
		}
		for range 3 {
			ack <- struct{}{}
			settle(10 * time.Millisecond)
			if f := s.Stats().Failures; f != 0 {
				t.Fatalf("Failures = %d after an ack, want 0", f)
			}
		}
		destroy(t, s, r)
	})
}
