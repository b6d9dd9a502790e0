package stream

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// TestOnCutRunsOnDisconnect: a function the transport registers with
// OnCut runs once the stream cuts the attempt (Disconnect), the one
// registered before it never runs, and one registered after the cut runs
// at once.
func TestOnCutRunsOnDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var replaced, ran, late atomic.Int32
		cutSeen := make(chan struct{})
		p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			n, ok := sink.(transport.CutNotifier)
			if !ok {
				t.Error("the stream's sink is not a transport.CutNotifier")
				return transport.Result{}
			}
			n.OnCut(func() { replaced.Add(1) })
			n.OnCut(func() { ran.Add(1); close(cutSeen) })
			sink.State(event.Connected, 0)
			<-ctx.Done()
			<-cutSeen
			n.OnCut(func() { late.Add(1) })
			settle(time.Millisecond)
			return transport.Result{Err: context.Cause(ctx)}
		}}
		s, r := e.create(st("v", nil), p)
		s.RequestTx()
		settle(time.Second)
		if err := s.Disconnect(); err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		if replaced.Load() != 0 || ran.Load() != 1 || late.Load() != 1 {
			t.Fatalf("replaced ran %d times, registered ran %d, late ran %d; want 0, 1, 1", replaced.Load(), ran.Load(), late.Load())
		}
		r.expect(t, "CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED")
		destroy(t, s, r)
	})
}

// TestCutTimeoutFollowsTheStream: transport.CutTimeout's context ends when
// the stream cuts the attempt, though it is not a child of Run's context.
func TestCutTimeoutFollowsTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var dialErr atomic.Value
		p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			dctx, cancel := transport.CutTimeout(ctx, sink, time.Hour)
			defer cancel()
			<-dctx.Done() // a dial that would take an hour
			dialErr.Store(dctx.Err())
			return transport.Result{Err: context.Cause(ctx)}
		}}
		s, r := e.create(st("v", nil), p)
		s.RequestTx()
		settle(time.Second)
		if err := s.Disconnect(); err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		if err, _ := dialErr.Load().(error); err != context.Canceled {
			t.Fatalf("the dial's context ended with %v, want context.Canceled at Disconnect", err)
		}
		r.expect(t, "CREATING", "POLL", "CONNECTING", "DISCONNECTED")
		destroy(t, s, r)
	})
}
