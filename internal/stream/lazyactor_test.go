package stream

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/policy"
)

// hasActor reports whether the stream's actor was spawned (or is being
// spawned).
func hasActor(s *Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid != nil || s.spawning
}

// TestLazyActorSpawnedOnFirstRequest: a stream that waits for the
// application has no actor until it is asked for something; Disconnect and
// CancelTimeout on such a stream ask for nothing; RequestTx spawns the actor
// and the attempt starts as before (docs/supervision.md "When a stream's
// actor is spawned").
func TestLazyActorSpawnedOnFirstRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: connectAndHold}
		s, r := e.create(st("v", nil), p)
		settle(time.Second)
		if hasActor(s) {
			t.Fatal("an idle stream nobody asked anything of has an actor")
		}
		if err := s.Disconnect(); err != nil {
			t.Fatal(err)
		}
		if err := s.CancelTimeout(); err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		if hasActor(s) {
			t.Fatal("Disconnect or CancelTimeout on an idle stream spawned its actor")
		}
		if err := s.RequestTx(); err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		if !hasActor(s) {
			t.Fatal("RequestTx did not spawn the actor")
		}
		r.expect(t, "CREATING", "POLL", "CONNECTING", "CONNECTED")
		destroy(t, s, r)
		r.expect(t, "CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
		if p.count() != 1 {
			t.Fatalf("%d attempts, want 1", p.count())
		}
	})
}

// TestLazyActorStartTimeout: a stream timeout armed on an idle stream
// spawns the actor, whose timer fires TIMEOUT.
func TestLazyActorStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		s, r := e.create(st("v", nil), &fakeProto{run: connectAndHold})
		if err := s.StartTimeout(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		settle(3 * time.Second)
		r.expectTimed(t, "CREATING@0 TIMEOUT@2000")
		destroy(t, s, r)
	})
}

// TestLazyActorDestroyWithoutActor: destroying a stream that never needed
// its actor ends it without one: DESTROYING, channel closed, no attempt,
// no longer counted by the host.
func TestLazyActorDestroyWithoutActor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		p := &fakeProto{run: connectAndHold}
		s, r := e.create(st("v", nil), p)
		destroy(t, s, r)
		r.expect(t, "CREATING", "DESTROYING")
		if hasActor(s) {
			t.Fatal("Destroy spawned the actor of an idle stream")
		}
		if n := e.h.Streams(); n != 0 {
			t.Fatalf("host counts %d live streams after Destroy, want 0", n)
		}
		if err := s.RequestTx(); err == nil {
			t.Fatal("RequestTx on a destroyed stream succeeded")
		}
		if err := s.Destroy(context.Background()); err != nil {
			t.Fatalf("second Destroy: %v", err)
		}
		settle(time.Second)
		if p.count() != 0 || hasActor(s) {
			t.Fatalf("%d attempts, actor %v after Destroy; want none", p.count(), hasActor(s))
		}
	})
}

// TestLazyActorNailedUpAtOnce: a nailed_up stream connects by itself, so
// its actor is spawned by New.
func TestLazyActorNailedUpAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		typ := st("v", nil)
		typ.NailedUp = true
		s, r := e.create(typ, &fakeProto{run: connectAndHold})
		if !hasActor(s) {
			t.Fatal("a nailed_up stream has no actor after New")
		}
		settle(time.Second)
		r.expect(t, "CREATING", "CONNECTING", "CONNECTED")
		destroy(t, s, r)
	})
}

// TestLazyActorHostClose: Close ends idle streams that never had an actor
// and streams whose actor runs alike.
func TestLazyActorHostClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		idle, ri := e.create(st("idle", nil), &fakeProto{run: connectAndHold})
		busy, rb := e.create(st("busy", nil), &fakeProto{run: connectAndHold})
		if err := busy.RequestTx(); err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		if err := e.h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-ri.end
		<-rb.end
		ri.expect(t, "CREATING", "DESTROYING")
		rb.expect(t, "CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
		if hasActor(idle) {
			t.Fatal("Close spawned an idle stream's actor")
		}
	})
}

// TestLazyActorSpawnRace: the first requests and Destroy race from several
// goroutines; every stream still ends with DESTROYING last, its channel
// closed, and at most one attempt (run with -race).
func TestLazyActorSpawnRace(t *testing.T) {
	e := newEnv(t)
	p := &fakeProto{run: connectAndHold}
	typ := st("v", nil)
	pol := &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		s, err := New(e.h, Config{Policy: pol, Type: typ, Protocol: p})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(4)
		go func() {
			defer wg.Done()
			var last event.Event
			for ev := range s.Events() {
				last = ev
			}
			if last.Kind != event.StateEvent || last.State != event.Destroying {
				t.Errorf("stream %d: last event %v, want DESTROYING", i, last)
			}
		}()
		go func() { defer wg.Done(); _ = s.RequestTx() }()
		go func() { defer wg.Done(); _ = s.Send(context.Background(), []byte("x")) }()
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Destroy(ctx)
		}()
	}
	wg.Wait()
	if c := p.count(); c > n {
		t.Fatalf("%d attempts for %d streams", c, n)
	}
	if live := e.h.Streams(); live != 0 {
		t.Fatalf("%d streams still live", live)
	}
}
