package stream

import "github.com/securestreams/ss/internal/event"

// Gate holds a stream's connection attempts until it opens (an auth token
// not yet fetched, a system streamtype the stream depends on, ...).
// docs/stream-states.md shows where the actor consults its gates.
type Gate interface {
	// Check reports whether an attempt may start now. When it may not, state
	// is the state to emit once for this closure (e.g. event.AuthFailed, or 0
	// for none) and err the cause (put in Event.Err).
	Check() (open bool, state event.State, err error)
	// Watch calls notify (from any goroutine; notify never blocks) whenever
	// Check's answer may have changed; stop unregisters.
	Watch(notify func()) (stop func())
}

// msgGate: a gate's answer may have changed.
type msgGate struct{}

// watchGates registers the stream's gates; the actor calls it once, as it
// starts.
func (s *Stream) watchGates() {
	if len(s.cfg().gates) == 0 || s.conn != nil {
		return
	}
	notify := func() { s.tell(msgGate{}) }
	for _, g := range s.cfg().gates {
		s.a.gateStops = append(s.a.gateStops, g.Watch(notify))
	}
}

// unwatchGates unregisters the gates (the stream is ending).
func (s *Stream) unwatchGates() {
	for _, stop := range s.a.gateStops {
		if stop != nil {
			stop()
		}
	}
	s.a.gateStops = nil
}

// attempt starts a connection attempt when every gate is open. Otherwise
// the stream parks (phase gated): no attempt, no retry timer, the failure
// counter untouched; the first closed gate's state and cause are emitted
// once as the stream parks (or when it first appears while parked), and the
// actor checks again when a gate notifies (onGate). Every client attempt goes through here (first,
// retry, Connect, tx-triggered); accepted streams have no gates.
func (s *Stream) attempt(poll bool) {
	if s.eventsFull() {
		// The application is not reading: no new attempt (and no new
		// states) until it does (docs/stream-states.md).
		if s.a.phase != gated {
			s.a.phase = gated
			s.a.gatePoll = poll
			s.a.gateState = 0
		}
		return
	}
	for _, g := range s.cfg().gates {
		open, st, err := g.Check()
		if open {
			continue
		}
		if s.a.phase != gated {
			s.a.phase = gated
			s.a.gatePoll = poll
			s.a.gateState = 0
		}
		// A closure's state may appear while parked (a token refresh that
		// fails after the stream started waiting): emitted once per
		// distinct state.
		if st != 0 && st != s.a.gateState {
			s.a.gateState = st
			s.emitGateState(st, err)
		}
		return
	}
	s.startAttempt(poll)
}

// emitGateState emits a closed gate's state. A state that only follows
// CONNECTING (AUTH_FAILED, UNREACHABLE) is preceded by CONNECTING when the
// current state does not allow it directly (docs/stream-states.md).
func (s *Stream) emitGateState(st event.State, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if Checked(st) && !Legal(s.cur, st) && Legal(s.cur, event.Connecting) && Legal(event.Connecting, st) {
		s.emitLocked(event.Connecting, 0)
	}
	s.emitErrLocked(st, 0, err)
}

// onGate: a gate may have opened.
func (s *Stream) onGate() {
	if s.a.phase == gated {
		s.attempt(s.a.gatePoll)
	}
}
