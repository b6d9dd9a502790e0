package stream

import "github.com/securestreams/ss/internal/event"

// A remote stream's states come from its driver (the proxy link), but as on
// a local stream the driver only reports them: Remote.State and
// Remote.LinkEnded append a report that holds the state's place among the
// payload around it and tell the stream's actor (remoteActor), which
// decides it in queue order (decideLocked, acceptRemoteLocked): the actor
// is the one writer of the current state, the connection flag (remoteUp)
// and the last error (docs/stream-states.md).

// reportCond makes a remote stream's report conditional on the state the
// actor decides it in.
type reportCond uint8

const (
	condNone   reportCond = iota
	condUp                // emitted only while the stream is connected
	condActive            // emitted while connected or while an attempt is under way
)

// State reports a state the far end reported (docs/streams.md §3.2) with its
// cause (Event.Err; nil when none). The actor decides it in order with the
// payload and reports before it: it is checked and becomes the current
// state; CONNECTED marks the stream connected until DISCONNECTED,
// UNREACHABLE, AUTH_FAILED or ALL_RETRIES_FAILED, so that Destroy reports
// DISCONNECTED first; the cause of an UNREACHABLE, DISCONNECTED or
// AUTH_FAILED becomes Stats.LastError and is logged once, like a local
// stream's failed attempt (docs/errors.md). CREATING (queued by NewRemote)
// and DESTROYING (only Destroy ends a stream) are ignored.
func (r *Remote) State(st event.State, ack uint32, err error) {
	if st == event.Destroying || st == event.Creating {
		return
	}
	r.report(condNone, st, ack, err)
}

// LinkEnded reports that the link carrying the stream ended; asked says the
// application's Disconnect closed it. The actor decides, in order with what
// was reported before: DISCONNECTED with cause when the stream was
// connected, or when asked and an attempt was under way (POLL, CONNECTING);
// nothing otherwise.
func (r *Remote) LinkEnded(asked bool, cause error) {
	cond := condUp
	if asked {
		cond = condActive
	}
	r.report(cond, event.Disconnected, 0, cause)
}

func (r *Remote) report(cond reportCond, st event.State, ack uint32, err error) {
	s := r.s
	s.mu.Lock()
	tell := s.reportLocked(report{cond: cond}, st, ack, err)
	pid := s.pid
	s.mu.Unlock()
	if tell && pid != nil {
		s.h.Actors.Tell(pid, msgReport{})
	}
}

// acceptRemoteLocked decides a remote stream's report (decideLocked): it
// reports whether the state is emitted and applies what it means. Only the
// remote stream's actor calls it; s.mu is held.
func (s *Stream) acceptRemoteLocked(r report, ev *event.Event) bool {
	switch r.cond {
	case condUp:
		if !s.remoteUp {
			return false
		}
	case condActive:
		if !s.remoteUp && !midAttempt(s.cur) {
			return false
		}
	}
	st := ev.State
	switch st {
	case event.Connected:
		s.remoteUp = true
	case event.Disconnected, event.Unreachable, event.AuthFailed, event.AllRetriesFailed:
		s.remoteUp = false
	}
	if ev.Err != nil {
		switch st {
		case event.Unreachable, event.Disconnected, event.AuthFailed:
			s.lastErr = ev.Err
			s.h.Logger.Warn("ss: proxied stream: "+st.String(), "stream", s.id, "streamtype", s.st.Name, "err", ev.Err)
		}
	}
	return true
}

// midAttempt reports whether st leaves a remote stream with an attempt or
// connection that a closed link ends with DISCONNECTED.
func midAttempt(st event.State) bool {
	switch st {
	case event.Connected, event.Connecting, event.Poll, event.QoSAckRemote, event.QoSNackRemote,
		event.QoSAckLocal, event.QoSNackLocal, event.Timeout, event.ServerTxn, event.ServerUpgrade:
		return true
	}
	return false
}
