package stream

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// TestRetryVector: backoff [1000,2000,3000], jitterpc 0, conceal 5, never
// succeeding: delays 1000, 2000, 3000, 3000, 3000 ms, then
// ALL_RETRIES_FAILED after the 6th attempt (docs/streams.md §6.2).
func TestRetryVector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: refuse}
		s, r := e.create(st("v", rtry(5, 0, 1000, 2000, 3000)), p)
		s.RequestTx()
		settle(time.Minute)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 UNREACHABLE@0 POLL@1000 CONNECTING@1000 UNREACHABLE@1000 "+
			"POLL@3000 CONNECTING@3000 UNREACHABLE@3000 POLL@6000 CONNECTING@6000 UNREACHABLE@6000 "+
			"POLL@9000 CONNECTING@9000 UNREACHABLE@9000 POLL@12000 CONNECTING@12000 UNREACHABLE@12000 ALL_RETRIES_FAILED@12000")
		if p.count() != 6 {
			t.Fatalf("%d attempts, want 6", p.count())
		}
		if st := s.Stats(); st.Attempts != 6 || st.Failures != 6 {
			t.Fatalf("Stats %+v, want 6 attempts and 6 failures", st)
		}
		destroy(t, s, r)
	})
}

// TestRetryNoTable: no backoff, conceal 1: one retry after 3000 ms; started
// with Connect there is no first POLL (docs/streams.md §5.8).
func TestRetryNoTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		s, r := e.create(st("v", rtry(1, 0)), &fakeProto{run: refuse})
		s.Connect()
		settle(time.Minute)
		r.expectTimed(t, "CREATING@0 CONNECTING@0 UNREACHABLE@0 POLL@3000 CONNECTING@3000 UNREACHABLE@3000 ALL_RETRIES_FAILED@3000")
		destroy(t, s, r)
	})
}

// TestRetryAfter: a 503 with Retry-After 2 s and backoff [300]: 2000 ms.
func TestRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: func(int, context.Context, *transport.Attempt, transport.Sink) transport.Result {
			return transport.Result{Err: errors.New("503"), RetryAfter: 2 * time.Second}
		}}
		s, r := e.create(st("v", rtry(2, 0, 300)), p)
		s.RequestTx()
		settle(time.Minute)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 UNREACHABLE@0 POLL@2000 CONNECTING@2000 UNREACHABLE@2000 "+
			"POLL@4000 CONNECTING@4000 UNREACHABLE@4000 ALL_RETRIES_FAILED@4000")
		destroy(t, s, r)
	})
}

// TestJitterFromHost: absent jitterpc is 30 %: the delay is base plus a draw
// in [0, 300).
func TestJitterFromHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var asked int64
		e.h.Rand = func(n int64) int64 { asked = n; return 123 }
		s, r := e.create(st("v", rtry(1, 30, 1000)), &fakeProto{run: refuse})
		s.RequestTx()
		settle(time.Minute)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 UNREACHABLE@0 POLL@1123 CONNECTING@1123 UNREACHABLE@1123 ALL_RETRIES_FAILED@1123")
		if asked != 300 {
			t.Fatalf("jitter drawn in [0,%d), want [0,300)", asked)
		}
		destroy(t, s, r)
	})
}

// TestAfterAllRetriesFailed: RequestTx makes one attempt (the counter is
// still beyond conceal); Connect resets it (docs/streams.md §5.5).
func TestAfterAllRetriesFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		s, r := e.create(st("v", rtry(1, 0, 100)), &fakeProto{run: refuse})
		s.RequestTx()
		settle(time.Second)
		s.RequestTx()
		settle(time.Second)
		s.Connect()
		settle(time.Second)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 UNREACHABLE@0 POLL@100 CONNECTING@100 UNREACHABLE@100 ALL_RETRIES_FAILED@100 "+
			"POLL@1000 CONNECTING@1000 UNREACHABLE@1000 ALL_RETRIES_FAILED@1000 "+
			"CONNECTING@2000 UNREACHABLE@2000 POLL@2100 CONNECTING@2100 UNREACHABLE@2100 ALL_RETRIES_FAILED@2100")
		destroy(t, s, r)
	})
}

// TestConnectDropLoopBacksOff: a peer that accepts and drops at once is
// retried with growing delays: CONNECTED does not reset the counter
// (docs/streams.md §6.3).
func TestConnectDropLoopBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: func(_ int, _ context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			return transport.Result{}
		}}
		typ := st("v", rtry(2, 0, 100, 200))
		typ.NailedUp = true
		s, r := e.create(typ, p)
		settle(time.Minute)
		r.expectTimed(t, "CREATING@0 CONNECTING@0 CONNECTED@0 DISCONNECTED@0 POLL@100 CONNECTING@100 CONNECTED@100 DISCONNECTED@100 "+
			"POLL@300 CONNECTING@300 CONNECTED@300 DISCONNECTED@300 ALL_RETRIES_FAILED@300")
		destroy(t, s, r)
	})
}

// TestHealthResetsCounter: a connection that stays up for table[0] resets
// the counter, so every reconnection waits the first delay.
func TestHealthResetsCounter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: connectFor(150 * time.Millisecond)}
		typ := st("v", rtry(1, 0, 100, 5000))
		typ.NailedUp = true
		s, r := e.create(typ, p)
		settle(1000 * time.Millisecond)
		r.expectTimed(t, "CREATING@0 CONNECTING@0 CONNECTED@0 DISCONNECTED@150 POLL@250 CONNECTING@250 CONNECTED@250 DISCONNECTED@400 "+
			"POLL@500 CONNECTING@500 CONNECTED@500 DISCONNECTED@650 POLL@750 CONNECTING@750 CONNECTED@750 DISCONNECTED@900 "+
			"POLL@1000 CONNECTING@1000 CONNECTED@1000")
		destroy(t, s, r)
	})
}

// TestHealthStatsFailures: Stats.Failures reads 0 once a connection has
// been up for the health time, though no timer runs for it (health.go).
func TestHealthStatsFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: func(i int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			if i <= 2 { // attempts count from 1
				return refuse(i, ctx, a, sink)
			}
			return connectAndHold(i, ctx, a, sink)
		}}
		typ := st("v", rtry(5, 0, 100, 1000))
		typ.NailedUp = true
		s, r := e.create(typ, p)
		settle(1150 * time.Millisecond) // attempts at 0 and 100 failed; CONNECTED at 1100
		if got := s.Stats().Failures; got != 2 {
			t.Fatalf("50 ms into the connection: Failures %d, want 2", got)
		}
		settle(100 * time.Millisecond)
		if got := s.Stats().Failures; got != 0 {
			t.Fatalf("150 ms into the connection (health time 100 ms): Failures %d, want 0", got)
		}
		r.expectTimed(t, "CREATING@0 CONNECTING@0 UNREACHABLE@0 POLL@100 CONNECTING@100 UNREACHABLE@100 POLL@1100 CONNECTING@1100 CONNECTED@1100")
		destroy(t, s, r)
	})
}

func TestOpportunisticAndNailedUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: func(_ int, _ context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			sink.Rx(context.Background(), []byte("x"), 0)
			return transport.Result{}
		}}
		// opportunistic alone: no reconnection after the drop.
		typ := st("v", rtry(5, 0, 100))
		typ.Opportunistic = true
		s, r := e.create(typ, p)
		s.Connect()
		settle(time.Minute)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", `rx(0,"x")`, "DISCONNECTED")
		destroy(t, s, r)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", `rx(0,"x")`, "DISCONNECTED", "DESTROYING")

		// nailed_up wins: every drop is a backoff step and a reconnection
		// (docs/lws-differences.md).
		typ = st("w", rtry(1, 0, 100))
		typ.NailedUp, typ.Opportunistic = true, true
		s, r = e.create(typ, p)
		settle(time.Minute)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", `rx(0,"x")`, "DISCONNECTED",
			"POLL", "CONNECTING", "CONNECTED", `rx(0,"x")`, "DISCONNECTED", "ALL_RETRIES_FAILED")
		destroy(t, s, r)
	})
}

func TestNotNailedUpStaysIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: refuse}
		s, r := e.create(st("v", rtry(5, 0, 100)), p)
		settle(time.Minute)
		r.expect(t, "CREATING")
		destroy(t, s, r)
		if p.count() != 0 {
			t.Fatalf("%d attempts", p.count())
		}
	})
}

// TestStreamTimeout: TIMEOUT after the time given; the attempt continues;
// 0 uses timeout_ms; CancelTimeout and ALL_RETRIES_FAILED cancel it.
func TestStreamTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		typ := st("v", nil)
		typ.TimeoutMS = 700
		p := &fakeProto{run: hang}
		s, r := e.create(typ, p)
		s.StartTimeout(500 * time.Millisecond)
		s.RequestTx()
		settle(time.Second)
		s.StartTimeout(0) // timeout_ms
		settle(time.Second)
		s.StartTimeout(300 * time.Millisecond)
		settle(100 * time.Millisecond)
		s.CancelTimeout()
		settle(time.Second)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 TIMEOUT@500 TIMEOUT@1700")
		if p.count() != 1 {
			t.Fatalf("%d attempts", p.count())
		}
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		s, r := e.create(st("v", rtry(1, 0, 100)), &fakeProto{run: refuse})
		s.StartTimeout(500 * time.Millisecond)
		s.RequestTx()
		settle(time.Second)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 UNREACHABLE@0 POLL@100 CONNECTING@100 UNREACHABLE@100 ALL_RETRIES_FAILED@100")
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		// Without timeout_ms, StartTimeout(0) does nothing.
		e := newEnv(t)
		s, r := e.create(st("v", nil), &fakeProto{run: hang})
		s.StartTimeout(0)
		s.RequestTx()
		settle(time.Minute)
		r.expect(t, "CREATING", "POLL", "CONNECTING")
		destroy(t, s, r)
	})
}

// TestRawDisconnectCancelsTimeout: a raw connection ending cancels the timer.
func TestRawDisconnectCancelsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			time.Sleep(100 * time.Millisecond)
			return transport.Result{}
		}}
		typ := st("v", nil)
		typ.Opportunistic = true
		s, r := e.create(typ, p)
		s.StartTimeout(time.Second)
		s.RequestTx()
		settle(5 * time.Second)
		r.expectTimed(t, "CREATING@0 POLL@0 CONNECTING@0 CONNECTED@0 DISCONNECTED@100")
		destroy(t, s, r)
	})
}

// TestValidityHup: svalidhup without svalidping: the connection is closed
// hup seconds after the last confirmation.
func TestValidityHup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: func(n int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			for range 3 {
				select {
				case <-time.After(time.Second):
					sink.ValidityConfirmed()
				case <-ctx.Done():
					return transport.Result{Err: context.Cause(ctx)}
				}
			}
			<-ctx.Done()
			return transport.Result{Err: context.Cause(ctx)}
		}}
		r0 := rtry(0, 0, 100)
		r0.SValidHup = 2
		typ := st("v", r0)
		typ.NailedUp = true
		s, r := e.create(typ, p)
		settle(time.Minute)
		r.expectTimed(t, "CREATING@0 CONNECTING@0 CONNECTED@0 DISCONNECTED@5000 ALL_RETRIES_FAILED@5000")
		if len(p.causes) != 1 || !errors.Is(p.causes[0], ErrValidityTimeout) {
			t.Fatalf("Run ctx causes %v, want ErrValidityTimeout", p.causes)
		}
		destroy(t, s, r)
	})
}

// TestValidityPing: svalidping 1, svalidhup 3: a keep-alive after 1 s of
// silence; answered pings keep the connection; an unanswered one closes it
// 2 s later.
func TestValidityPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var pings []time.Duration
		start := time.Now()
		p := &fakeProto{run: func(n int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			sink.(PingSetter).SetPing(func() {
				pings = append(pings, time.Since(start))
				if len(pings) <= 3 {
					go func() { time.Sleep(100 * time.Millisecond); sink.ValidityConfirmed() }()
				}
			})
			<-ctx.Done()
			return transport.Result{Err: context.Cause(ctx)}
		}}
		rp := rtry(0, 0, 100)
		rp.SValidPing, rp.SValidHup = 1, 3
		typ := st("v", rp)
		typ.NailedUp = true
		s, r := e.create(typ, p)
		settle(time.Minute)
		// Pings at 1 s, then 1 s after each answer (at +100 ms).
		want := []time.Duration{1000 * ms, 2100 * ms, 3200 * ms, 4300 * ms}
		if !eq(pings, want) {
			t.Fatalf("pings at %v, want %v; events %s", pings, want, r.timed())
		}
		r.expectTimed(t, "CREATING@0 CONNECTING@0 CONNECTED@0 DISCONNECTED@6300 ALL_RETRIES_FAILED@6300")
		destroy(t, s, r)
	})
}

// TestDisconnect: §5.6 in each phase.
func TestDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		typ := st("v", rtry(5, 0, 100))
		s, r := e.create(typ, &fakeProto{run: connectAndHold})
		s.RequestTx()
		settle(time.Second)
		s.Disconnect() // connected: DISCONNECTED, idle, no reconnection
		settle(time.Minute)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED")
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		s, r := e.create(st("v", rtry(5, 0, 100)), &fakeProto{run: hang})
		s.RequestTx()
		settle(time.Second)
		s.Disconnect() // attempt in progress: DISCONNECTED
		settle(time.Minute)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "DISCONNECTED")
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: refuse}
		s, r := e.create(st("v", rtry(5, 0, 1000)), p)
		s.RequestTx()
		settle(500 * time.Millisecond)
		s.Disconnect() // retry pending: no event, idle
		settle(time.Minute)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "UNREACHABLE")
		if p.count() != 1 {
			t.Fatalf("%d attempts after Disconnect", p.count())
		}
		// Disconnect then Connect at once: both honoured, in order.
		s.Connect()
		settle(10 * time.Millisecond)
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		s, r := e.create(st("v", nil), &fakeProto{run: connectAndHold})
		s.Connect()
		settle(time.Second)
		s.Disconnect()
		s.Connect()
		settle(time.Second)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED")
		destroy(t, s, r)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
	})
}

// TestIllegalTransitionCounted: a transport reporting an impossible state
// is logged and counted, and the event is still delivered.
func TestIllegalTransitionCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.ServerTxn, 0) // CONNECTING → SERVER_TXN is illegal
			<-ctx.Done()
			return transport.Result{}
		}}
		typ := st("v", nil)
		typ.NailedUp = true
		s, r := e.create(typ, p)
		settle(time.Second)
		if n := e.h.IllegalTransitions(); n != 1 {
			t.Fatalf("IllegalTransitions = %d, want 1", n)
		}
		destroy(t, s, r)
		r.expect(t, "CREATING", "CONNECTING", "SERVER_TXN", "DESTROYING")
		e.h.illegal.Store(0)
	})
}

// TestMetadata: declared names, direct_proto_str extras, values surviving
// reconnections, captured values overwriting what Metadata returns but not
// what the next attempt sends (docs/streams.md §9.2, §9.4).
func TestMetadata(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var seen [][]transport.MetadataValue
		var extras []map[string]string
		p := &fakeProto{run: func(n int, _ context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			seen = append(seen, a.Metadata)
			extras = append(extras, a.Extra)
			if n == 1 {
				sink.SetMetadata("etag", "from-peer")
				sink.SetMetadata("x-seen:", "yes")
			}
			return transport.Result{Err: errors.New("refused")}
		}}
		typ := st("v", rtry(1, 0, 100))
		typ.DirectProtoStr = true
		typ.Metadata = []*policy.MetadataItem{{Name: "region"}, {Name: "etag", Header: "etag"}, {Name: "empty"}}
		s, r := e.create(typ, p)
		if err := s.SetMetadata("region", "uk"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMetadata("etag", "mine"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMetadata("empty", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMetadata("x-custom:", "v"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMetadata("nope", "v"); !errors.Is(err, ErrUndeclaredMetadata) {
			t.Fatalf("undeclared: %v", err)
		}
		s.RequestTx()
		settle(time.Second)
		if len(seen) != 2 {
			t.Fatalf("%d attempts", len(seen))
		}
		if v := seen[1][0]; v.Value != "uk" || !v.Set {
			t.Fatalf("region on 2nd attempt: %+v", v)
		}
		if v := seen[1][1]; v.Value != "mine" || !v.Set {
			t.Fatalf("etag on 2nd attempt: %+v (a request carries what the application set)", v)
		}
		if v := seen[0][1]; v.Value != "mine" {
			t.Fatalf("etag on 1st attempt: %+v", v)
		}
		if extras[1]["x-custom:"] != "v" {
			t.Fatalf("extras %v", extras[1])
		}
		if v, ok, _ := s.Metadata("empty"); !ok || v != "" {
			t.Fatalf("empty value: %q %v", v, ok)
		}
		if v, ok, _ := s.Metadata("etag"); !ok || v != "from-peer" {
			t.Fatalf("etag %q %v, want the captured value", v, ok)
		}
		if v, ok, _ := s.Metadata("X-Seen:"); !ok || v != "yes" {
			t.Fatalf("received header: %q %v", v, ok)
		}
		destroy(t, s, r)
	})
}

// TestTxBackpressure: Send blocks while the queue is full and returns when
// the transport drains it, or with the context's error.
func TestTxBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.h.TxBudget = 10
		release := make(chan struct{})
		var got []string
		p := &fakeProto{run: func(_ int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			<-release
			for {
				c, err := a.Tx.Next(ctx)
				if err != nil {
					return transport.Result{Err: err}
				}
				got = append(got, string(c.Data))
			}
		}}
		typ := st("v", nil)
		s, r := e.create(typ, p)
		ctx := context.Background()
		if err := s.Send(ctx, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := s.Send(tctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send on a full queue: %v", err)
		}
		cancel()
		done := make(chan error)
		go func() { done <- s.Send(ctx, []byte("abc")) }()
		settle(time.Second)
		select {
		case err := <-done:
			t.Fatalf("Send returned %v while full", err)
		default:
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		if len(got) != 2 || got[0] != "0123456789" || got[1] != "abc" {
			t.Fatalf("transport got %q", got)
		}
		destroy(t, s, r)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
	})
}

// TestDestroyWhileConnected and after: DISCONNECTED, DESTROYING; further
// operations fail.
func TestDestroyWhileConnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		typ := st("v", nil)
		typ.NailedUp = true
		s, r := e.create(typ, &fakeProto{run: connectAndHold})
		settle(time.Second)
		destroy(t, s, r)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
		for _, err := range []error{s.Connect(), s.Disconnect(), s.RequestTx(), s.Send(context.Background(), nil), s.SetMetadata("x", "y"), s.StartTimeout(time.Second)} {
			if !errors.Is(err, ErrDestroyed) {
				t.Fatalf("operation after Destroy: %v", err)
			}
		}
		if err := s.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRxBackpressure: Sink.Rx blocks once the budget is used until the
// reader catches up; nothing is lost or reordered.
func TestRxBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.h.RxBudget = 1000
		sent := 0
		p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			for i := range 100 {
				if err := sink.Rx(ctx, []byte{byte(i)}, 0); err != nil {
					return transport.Result{Err: err}
				}
				sent++
			}
			<-ctx.Done()
			return transport.Result{}
		}}
		typ := st("v", nil)
		typ.NailedUp = true
		s, err := New(e.h, Config{Policy: &policy.Policy{}, Type: typ, Protocol: p})
		if err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		// Nobody reads: 1000 / (1+64) ≈ 15 queued chunks, plus one in the pump's hand.
		if sent < 10 || sent > 20 {
			t.Fatalf("%d chunks accepted with nobody reading", sent)
		}
		var got []byte
		for ev := range s.Events() {
			if ev.Kind == event.PayloadEvent {
				got = append(got, ev.Payload...)
				if len(got) == 100 {
					go s.Destroy(context.Background())
				}
			}
		}
		for i, b := range got {
			if int(b) != i {
				t.Fatalf("byte %d = %d", i, b)
			}
		}
		if len(got) != 100 {
			t.Fatalf("%d bytes", len(got))
		}
	})
}

func TestRideshare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var sinkp transport.Sink
		p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
			sinkp = sink
			sink.(RideshareSetter).SetRideshare("next")
			<-ctx.Done()
			return transport.Result{}
		}}
		s, r := e.create(st("first", nil), p)
		if got := s.Rideshare(); got != "first" {
			t.Fatalf("Rideshare before = %q", got)
		}
		s.Connect()
		settle(time.Second)
		if got := s.Rideshare(); got != "next" {
			t.Fatalf("Rideshare = %q, want next", got)
		}
		sinkp.(RideshareSetter).SetRideshare("first")
		if got := s.Rideshare(); got != "first" {
			t.Fatalf("Rideshare after the chain = %q", got)
		}
		destroy(t, s, r)
	})
}

// TestHTTPBodySentAgain: an h1 attempt that fails after consuming the body
// gets the whole body again on the next attempt; a completed transaction
// does not (docs/streams.md §11.2.3).
func TestHTTPBodySentAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var bodies []string
		p := &fakeProto{run: func(n int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			body := ""
			for {
				c, err := a.Tx.Next(ctx)
				if err != nil {
					return transport.Result{Err: err}
				}
				body += string(c.Data)
				if c.Flags&event.EOM != 0 {
					break
				}
			}
			bodies = append(bodies, body)
			if n == 1 {
				return transport.Result{Err: errors.New("connection lost")}
			}
			sink.State(event.Connected, 0)
			sink.State(event.QoSAckRemote, 0)
			return transport.Result{Completed: true}
		}}
		typ := st("post", rtry(2, 0, 100))
		typ.Protocol = policy.H1
		s, r := e.create(typ, p)
		ctx := context.Background()
		s.Write(ctx, []byte("part1-"), event.SOM)
		s.Write(ctx, []byte("part2"), event.EOM)
		settle(time.Second)
		if len(bodies) != 2 || bodies[0] != "part1-part2" || bodies[1] != "part1-part2" {
			t.Fatalf("bodies %q", bodies)
		}
		if s.tx.Pending() {
			t.Fatal("body still queued after the completed transaction")
		}
		destroy(t, s, r)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "CONNECTED",
			"QOS_ACK_REMOTE", "DISCONNECTED", "DESTROYING")
	})
}

// TestTxBudgetCountsChunks: tiny chunks are charged their overhead, so a
// flood of 1-byte payloads fills the budget after a few chunks, not after
// budget-many (the ssproxy memory hole of SECURITY.md's known gaps).
func TestTxBudgetCountsChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.h.TxBudget = 10 * chunkOverhead
		release := make(chan struct{})
		p := &fakeProto{run: func(_ int, ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
			sink.State(event.Connected, 0)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return transport.Result{Err: ctx.Err()}
		}}
		s, r := e.create(st("v", nil), p)
		queued := 0
		for ; queued < 10*chunkOverhead; queued++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := s.Send(ctx, []byte("x"))
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if queued < 1 || queued > 10 {
			t.Fatalf("%d one-byte chunks queued within a %d-byte budget, want 1..10", queued, 10*chunkOverhead)
		}
		close(release)
		destroy(t, s, r)
	})
}
