package stream

import "time"

func nowNano() int64 { return time.Now().UnixNano() }

// confirmedAt is when the connection was last proven alive: its last
// confirmation (written only by ValidityConfirmed) or, when none came
// since, its CONNECTED (actor-owned). Actor only.
func (s *Stream) confirmedAt() int64 { return max(s.lastConfirm.Load(), s.a.connAt) }

// validity returns the streamtype's svalidping and svalidhup.
func (s *Stream) validity() (ping, hup time.Duration) {
	r := s.st.Retry
	if r == nil {
		return 0, 0
	}
	return time.Duration(r.SValidPing) * time.Second, time.Duration(r.SValidHup) * time.Second
}

// armValidity starts connection validity checking at CONNECTED
// (docs/streams.md §7). Confirmations are timestamps (Sink.ValidityConfirmed
// stores one without waking the actor); the timer checks them when it fires.
func (s *Stream) armValidity() {
	ping, hup := s.validity()
	if hup == 0 {
		return
	}
	s.a.validPing = false
	if ping == 0 || ping >= hup {
		s.armTimer(tValidity, hup)
	} else {
		s.armTimer(tValidity, ping)
	}
}

func (s *Stream) onValidity() {
	if s.a.phase != connected || s.a.stopping {
		return
	}
	ping, hup := s.validity()
	now := nowNano()
	since := time.Duration(now - s.confirmedAt())
	if ping == 0 || ping >= hup {
		if since < hup {
			s.armTimer(tValidity, hup-since)
			return
		}
		s.validityTimeout()
		return
	}
	if s.a.validPing {
		if s.confirmedAt() >= s.a.pingAt {
			// Answered: back to waiting for the ping time.
			s.a.validPing = false
			if since < ping {
				s.armTimer(tValidity, ping-since)
				return
			}
		} else {
			s.validityTimeout()
			return
		}
	} else if since < ping {
		s.armTimer(tValidity, ping-since)
		return
	}
	// ping time passed without confirmation: send a keep-alive.
	s.a.validPing = true
	s.a.pingAt = now
	s.pings.Add(1)
	if k := s.a.sink; k != nil {
		if p := k.ping.Load(); p != nil {
			(*p)()
		}
	}
	s.armTimer(tValidity, hup-ping)
}

// onPong: a confirmation arrived while a keep-alive was outstanding: wait
// the ping time again from that confirmation (docs/streams.md §7: the timer is
// re-armed every time validity is confirmed).
func (s *Stream) onPong() {
	if s.a.phase != connected || !s.a.validPing {
		return
	}
	s.a.validPing = false
	ping, _ := s.validity()
	since := time.Duration(nowNano() - s.confirmedAt())
	s.armTimer(tValidity, max(ping-since, 0))
}

func (s *Stream) validityTimeout() {
	s.h.Logger.Info("ss: connection validity timeout", "stream", s.id, "streamtype", s.st.Name)
	if s.a.cancel != nil {
		s.cutAttempt(ErrValidityTimeout)
	}
}
