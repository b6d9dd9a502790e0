package stream

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// Requests that arrive while the stream cannot act on them at once (an
// attempt or connection is running, or ending) are honoured exactly once:
// never lost, never served twice (docs/streams.md §5.2).

func httpType(name string) *policy.Streamtype {
	typ := st(name, nil)
	typ.Protocol = policy.H1
	return typ
}

// transaction is a fake HTTP transaction: CONNECTED, QOS_ACK_REMOTE, then
// during(n) (the application acting after seeing the ack, before the
// stream has gone idle), then completion.
func transaction(during func(n int)) func(int, context.Context, *transport.Attempt, transport.Sink) transport.Result {
	return func(n int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
		sink.State(event.Connected, 0)
		sink.State(event.QoSAckRemote, 0)
		if during != nil {
			during(n)
		}
		return transport.Result{Completed: true}
	}
}

var oneTxn = []string{"POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED"}

func seq(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestRequestTxAtTransactionEnd: a RequestTx made after a transaction's
// QOS_ACK_REMOTE, before the stream is idle, starts the next transaction;
// one made before CONNECTED is served by the running one.
func TestRequestTxAtTransactionEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var s *Stream
		p := &fakeProto{run: transaction(func(n int) {
			if n == 1 {
				s.RequestTx() // bare RequestTx, no data: was lost
			}
		})}
		s, r := e.create(httpType("get"), p)
		s.RequestTx()
		settle(time.Second)
		r.expect(t, seq([]string{"CREATING"}, oneTxn, oneTxn)...)
		if p.count() != 2 {
			t.Fatalf("%d transactions, want 2", p.count())
		}
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var s *Stream
		p := &fakeProto{run: func(n int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			s.RequestTx() // before CONNECTED: this transaction serves it
			return transaction(nil)(n, ctx, a, sink)
		}}
		s, r := e.create(httpType("get"), p)
		s.RequestTx()
		settle(time.Second)
		r.expect(t, seq([]string{"CREATING"}, oneTxn)...)
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		// RequestTxLen and the body for the next POST, queued while the
		// first completes: sent once, by the second transaction.
		e := newEnv(t)
		var s *Stream
		var bodies []string
		p := &fakeProto{run: func(n int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			c, err := a.Tx.Next(ctx)
			if err != nil {
				return transport.Result{Err: err}
			}
			bodies = append(bodies, string(c.Data))
			return transaction(func(n int) {
				if n == 1 {
					s.RequestTxLen(3)
					s.Send(context.Background(), []byte("two"))
				}
			})(n, ctx, a, sink)
		}}
		typ := httpType("post")
		typ.HTTPMethod = "POST"
		s, r := e.create(typ, p)
		s.Send(context.Background(), []byte("one"))
		settle(time.Second)
		r.expect(t, seq([]string{"CREATING"}, oneTxn, oneTxn)...)
		if len(bodies) != 2 || bodies[0] != "one" || bodies[1] != "two" {
			t.Fatalf("bodies %q", bodies)
		}
		destroy(t, s, r)
	})
}

// TestRequestTxAfterDisconnectedStress is the application's loop of
// TestE2ESecondTransaction (transport/httpc): RequestTx as soon as
// DISCONNECTED is read, against transactions that complete at once. Every
// RequestTx gives exactly one transaction.
func TestRequestTxAfterDisconnectedStress(t *testing.T) {
	sys := actor.NewSystem(nil)
	h := NewHost(sys, transport.Env{}.Defaults())
	h.Traits = func(p policy.Protocol) Traits { return testTraits[p] }
	defer func() {
		h.Close(context.Background())
		sys.Shutdown(context.Background())
		if n := h.IllegalTransitions(); n != 0 {
			t.Errorf("IllegalTransitions = %d", n)
		}
	}()
	p := &fakeProto{run: transaction(nil)}
	typ := httpType("get")
	s, err := New(h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: p})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	s.RequestTx()
	done := 0
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for done < n {
		select {
		case ev := <-s.Events():
			if ev.State == event.Disconnected {
				done++
				if done < n {
					s.RequestTx()
				}
			}
		case <-timer.C:
			t.Fatalf("stuck after %d transactions (a RequestTx was lost)", done)
		}
	}
	if err := s.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range s.Events() {
	}
	if p.count() != n {
		t.Fatalf("%d transactions, want %d", p.count(), n)
	}
}

// TestRequestTxRightAfterDisconnect: RequestTx (or Send) called right after
// Disconnect, before DISCONNECTED, connects again once the stream is idle;
// a RequestTx made before Disconnect is dropped with the connection.
func TestRequestTxRightAfterDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: connectAndHold}
		s, r := e.create(st("raw", nil), p)
		s.RequestTx()
		settle(time.Second)
		s.RequestTx() // while connected: served at once
		s.Disconnect()
		s.RequestTx()
		settle(time.Second)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "POLL", "CONNECTING", "CONNECTED")
		s.Disconnect()
		s.Send(context.Background(), []byte("x"))
		settle(time.Second)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "POLL", "CONNECTING", "CONNECTED",
			"DISCONNECTED", "POLL", "CONNECTING", "CONNECTED")
		s.Disconnect()
		settle(time.Second)
		if p.count() != 3 {
			t.Fatalf("%d attempts, want 3", p.count())
		}
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		// Retry pending: Disconnect cancels it; a RequestTx right after it
		// starts one attempt.
		e := newEnv(t)
		p := &fakeProto{run: refuse}
		s, r := e.create(st("raw", rtry(5, 0, 1000)), p)
		s.RequestTx()
		settle(500 * time.Millisecond)
		s.Disconnect()
		s.RequestTx()
		settle(500 * time.Millisecond)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "UNREACHABLE")
		s.Disconnect()
		settle(time.Minute)
		if p.count() != 2 {
			t.Fatalf("%d attempts, want 2", p.count())
		}
		destroy(t, s, r)
	})
}

// TestSendAtConnectionEnd: data sent while a connection is ending (after
// its last use, before the stream is idle) connects again, even when the
// retry policy is exhausted; opportunistic streams too.
func TestSendAtConnectionEnd(t *testing.T) {
	for _, opportunistic := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t)
			var s *Stream
			p := &fakeProto{run: func(n int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
				sink.State(event.Connected, 0)
				if n == 1 {
					s.Send(context.Background(), []byte("late"))
					return transport.Result{} // peer closed
				}
				c, err := a.Tx.Next(ctx)
				if err != nil || string(c.Data) != "late" {
					t.Errorf("second connection got %q, %v", c.Data, err)
				}
				<-ctx.Done()
				return transport.Result{Err: context.Cause(ctx)}
			}}
			typ := st("raw", nil)
			typ.Opportunistic = opportunistic
			s, r := e.create(typ, p)
			s.RequestTx()
			settle(time.Second)
			want := []string{"CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "ALL_RETRIES_FAILED",
				"POLL", "CONNECTING", "CONNECTED"}
			if opportunistic {
				want = []string{"CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED",
					"POLL", "CONNECTING", "CONNECTED"}
			}
			r.expect(t, want...)
			destroy(t, s, r)
		})
	}
}

// TestConnectRacesRetryTimer: Connect arriving just after the retry timer
// started its attempt still resets the failure counter (docs/streams.md §6.3),
// so the full retry sequence follows; one attempt per trigger.
func TestConnectRacesRetryTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var s *Stream
		var connects atomic.Int32
		p := &fakeProto{run: func(n int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			if n == 2 { // started by the retry timer
				connects.Add(1)
				s.Connect()
			}
			return transport.Result{Err: errors.New("refused")}
		}}
		s, r := e.create(st("raw", rtry(1, 0, 100)), p)
		s.RequestTx()
		settle(time.Second)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "UNREACHABLE",
			"POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
		if p.count() != 3 || connects.Load() != 1 {
			t.Fatalf("%d attempts, want 3", p.count())
		}
		destroy(t, s, r)
	})
}
