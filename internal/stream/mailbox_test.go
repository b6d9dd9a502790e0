package stream

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// createOwn is env.create for a stream with its own mailbox
// (Config.OwnMailbox, the SS proxy's onward streams).
func (e *env) createOwn(typ *policy.Streamtype, p transport.Protocol) (*Stream, *rec) {
	e.t.Helper()
	s, err := New(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: p, OwnMailbox: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return s, e.record(s)
}

// noActor fails the test if s has a protoactor actor.
func noActor(t *testing.T, s *Stream) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pid != nil {
		t.Fatal("an own-mailbox stream has an actor")
	}
}

// TestOwnMailboxLifecycle: a stream whose lifecycle runs from its own
// mailbox instead of an actor gets every state in the same order and at
// the same times as an actor's stream: retries and their timers, a nailed-up
// stream's reconnects with the health time, Disconnect then Connect, a
// lazy stream started by its first request, Destroy while connected.
func TestOwnMailboxLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: refuse}
		s, r := e.createOwn(st("v", rtry(5, 0, 1000, 2000, 3000)), p)
		settle(time.Second)
		if hasActor(s) {
			t.Fatal("a lazy own-mailbox stream started before any request")
		}
		s.RequestTx()
		settle(time.Minute)
		r.expectTimed(t, "CREATING@0 POLL@1000 CONNECTING@1000 UNREACHABLE@1000 POLL@2000 CONNECTING@2000 UNREACHABLE@2000 "+
			"POLL@4000 CONNECTING@4000 UNREACHABLE@4000 POLL@7000 CONNECTING@7000 UNREACHABLE@7000 "+
			"POLL@10000 CONNECTING@10000 UNREACHABLE@10000 POLL@13000 CONNECTING@13000 UNREACHABLE@13000 ALL_RETRIES_FAILED@13000")
		if st := s.Stats(); st.Attempts != 6 || st.Failures != 6 {
			t.Fatalf("Stats %+v, want 6 attempts and 6 failures", st)
		}
		noActor(t, s)
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: connectFor(150 * time.Millisecond)}
		typ := st("v", rtry(1, 0, 100, 5000))
		typ.NailedUp = true
		s, r := e.createOwn(typ, p)
		settle(1000 * time.Millisecond)
		r.expectTimed(t, "CREATING@0 CONNECTING@0 CONNECTED@0 DISCONNECTED@150 POLL@250 CONNECTING@250 CONNECTED@250 DISCONNECTED@400 "+
			"POLL@500 CONNECTING@500 CONNECTED@500 DISCONNECTED@650 POLL@750 CONNECTING@750 CONNECTED@750 DISCONNECTED@900 "+
			"POLL@1000 CONNECTING@1000 CONNECTED@1000")
		noActor(t, s)
		destroy(t, s, r)
	})
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		s, r := e.createOwn(st("v", nil), &fakeProto{run: connectAndHold})
		s.Connect()
		settle(time.Second)
		s.Disconnect()
		s.Connect()
		settle(time.Second)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED")
		if err := s.StartTimeout(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		settle(3 * time.Second)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED", "TIMEOUT")
		noActor(t, s)
		destroy(t, s, r)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED", "TIMEOUT", "DISCONNECTED", "DESTROYING")
		if n := e.h.Streams(); n != 0 {
			t.Fatalf("host counts %d streams after DESTROYING", n)
		}
	})
}

// TestOwnMailboxDestroyUnstarted: a lazy own-mailbox stream nobody asked
// anything of ends without ever starting its lifecycle (CREATING,
// DESTROYING), and a request after that starts nothing.
func TestOwnMailboxDestroyUnstarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: connectAndHold}
		s, r := e.createOwn(st("v", nil), p)
		destroy(t, s, r)
		r.expect(t, "CREATING", "DESTROYING")
		if err := s.Connect(); err == nil {
			t.Fatal("Connect after Destroy: no error")
		}
		settle(time.Second)
		if p.count() != 0 || hasActor(s) {
			t.Fatalf("%d attempts, lifecycle started %v, after Destroy", p.count(), hasActor(s))
		}
	})
}

// TestOwnMailboxPanicReconnects: a panic while the mailbox runs a message
// is contained and turns into a reconnect, as protoactor's default
// supervision restarts an actor.
func TestOwnMailboxPanicReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		typ := st("v", nil)
		typ.NailedUp = true
		s, r := e.createOwn(typ, &fakeProto{run: connectAndHold})
		settle(time.Second)
		testHookOwnHandle = func(msg any) {
			if _, ok := msg.(msgPanicForTest); ok {
				panic("test")
			}
		}
		defer func() { testHookOwnHandle = nil }()
		s.tell(msgPanicForTest{})
		settle(time.Second)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED")
		destroy(t, s, r)
	})
}

// msgPanicForTest makes testHookOwnHandle panic.
type msgPanicForTest struct{}
