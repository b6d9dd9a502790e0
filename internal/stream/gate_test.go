package stream

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// testGate is a Gate the test opens and closes.
type testGate struct {
	mu     sync.Mutex
	open   bool
	state  event.State
	err    error
	checks int
	notify []func()
}

func (g *testGate) Check() (bool, event.State, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks++
	return g.open, g.state, g.err
}

func (g *testGate) Watch(notify func()) func() {
	g.mu.Lock()
	g.notify = append(g.notify, notify)
	i := len(g.notify) - 1
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.notify[i] = nil
		g.mu.Unlock()
	}
}

// set changes the gate and notifies its watchers.
func (g *testGate) set(open bool) {
	g.mu.Lock()
	g.open = open
	ns := append([]func(){}, g.notify...)
	g.mu.Unlock()
	for _, n := range ns {
		if n != nil {
			n()
		}
	}
}

func (g *testGate) watchers() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, f := range g.notify {
		if f != nil {
			n++
		}
	}
	return n
}

func (e *env) createGated(typ *policy.Streamtype, p transport.Protocol, gates ...Gate) (*Stream, *rec) {
	e.t.Helper()
	s, err := New(e.h, Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{typ}}, Type: typ, Protocol: p, Gates: gates})
	if err != nil {
		e.t.Fatal(err)
	}
	return s, e.record(s)
}

// TestGateHoldsAttempts: while a gate is closed no attempt starts and its
// state and cause are emitted once (however often it notifies while still
// closed); once it opens the parked attempt starts.
func TestGateHoldsAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		cause := errors.New("no token yet")
		g := &testGate{state: event.AuthFailed, err: cause}
		p := &fakeProto{run: connectAndHold}
		s, r := e.createGated(st("g", rtry(3, 0, 100)), p, g)
		if err := s.RequestTx(); err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		g.set(false) // notified, still closed: nothing new
		settle(time.Second)
		if n := p.count(); n != 0 {
			t.Fatalf("%d attempts while the gate was closed, want 0", n)
		}
		if st := s.Stats(); st.Attempts != 0 || st.Failures != 0 {
			t.Fatalf("Stats %+v while gated, want no attempt and no failure", st)
		}
		r.expectTimed(t, "CREATING@0 CONNECTING@0 AUTH_FAILED@0")
		r.mu.Lock()
		got := r.evs[2].Err
		r.mu.Unlock()
		if !errors.Is(got, cause) {
			t.Fatalf("AUTH_FAILED Err = %v, want %v", got, cause)
		}
		g.set(true)
		settle(time.Second)
		if n := p.count(); n != 1 {
			t.Fatalf("%d attempts after the gate opened, want 1", n)
		}
		r.expectTimed(t, "CREATING@0 CONNECTING@0 AUTH_FAILED@0 CONNECTING@2000 CONNECTED@2000")
		destroy(t, s, r)
		if n := g.watchers(); n != 0 {
			t.Fatalf("%d gate watchers left after Destroy, want 0", n)
		}
	})
}

// TestGateParksRetry: a gate that closes during the retry wait parks the
// retry without consuming it (no attempt, the failure counter unchanged);
// a gate with no state emits nothing.
func TestGateParksRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		g := &testGate{open: true}
		p := &fakeProto{run: refuse}
		s, r := e.createGated(st("g", rtry(2, 0, 1000)), p, g)
		s.Connect()
		settle(500 * time.Millisecond)
		g.set(false)
		settle(5 * time.Second)
		if n := p.count(); n != 1 {
			t.Fatalf("%d attempts, want 1 (the retry is parked)", n)
		}
		if f := s.Stats().Failures; f != 1 {
			t.Fatalf("Failures = %d while parked, want 1", f)
		}
		g.set(true)
		settle(time.Minute)
		r.expectTimed(t, "CREATING@0 CONNECTING@0 UNREACHABLE@0 POLL@5500 CONNECTING@5500 UNREACHABLE@5500 "+
			"POLL@6500 CONNECTING@6500 UNREACHABLE@6500 ALL_RETRIES_FAILED@6500")
		destroy(t, s, r)
	})
}

// TestGateDisconnectWhileParked: Disconnect cancels the parked attempt; the
// gate opening later starts nothing.
func TestGateDisconnectWhileParked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		g := &testGate{}
		p := &fakeProto{run: connectAndHold}
		s, r := e.createGated(st("g", nil), p, g)
		s.Connect()
		settle(time.Second)
		s.Disconnect()
		settle(time.Second)
		g.set(true)
		settle(time.Second)
		if n := p.count(); n != 0 {
			t.Fatalf("%d attempts, want 0", n)
		}
		r.expectTimed(t, "CREATING@0")
		destroy(t, s, r)
	})
}

// TestGateStateAppearsWhileParked: a gate that parks the stream with no
// state (a token on its way) and later reports AUTH_FAILED (the refresh
// failed) has it emitted then, once, with its cause; the stream connects
// when the gate opens.
func TestGateStateAppearsWhileParked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		g := &testGate{}
		p := &fakeProto{run: connectAndHold}
		s, r := e.createGated(st("g", rtry(3, 0, 100)), p, g)
		s.Connect()
		settle(time.Second)
		cause := errors.New("refresh failed")
		g.mu.Lock()
		g.state, g.err = event.AuthFailed, cause
		g.mu.Unlock()
		g.set(false)
		settle(time.Second)
		g.set(false) // the same state again: not emitted twice
		settle(time.Second)
		r.expectTimed(t, "CREATING@0 CONNECTING@1000 AUTH_FAILED@1000")
		r.mu.Lock()
		got := r.evs[2].Err
		r.mu.Unlock()
		if !errors.Is(got, cause) {
			t.Fatalf("AUTH_FAILED Err = %v, want %v", got, cause)
		}
		g.set(true)
		settle(time.Second)
		r.expectTimed(t, "CREATING@0 CONNECTING@1000 AUTH_FAILED@1000 CONNECTING@3000 CONNECTED@3000")
		destroy(t, s, r)
	})
}
