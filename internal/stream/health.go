package stream

// The health time (docs/streams.md §6.3): a connection that stays
// CONNECTED for BackoffFor(...).Health() resets the failure counter. No
// timer runs for it: the actor notes when the connection becomes healthy
// (armHealthy) and decides the reset when the connection ends
// (endHealthy), from the time the attempt ended; until then Stats and
// qosNeedsActor read the counter through failuresNow. A timer per
// connected stream would be 144 B of heap on every idle connection
// (PERFORMANCE.md, "Memory per proxied stream").

// armHealthy notes, at CONNECTED, when the connection becomes healthy; a
// counter already at 0 has nothing to reset. Only the actor calls it.
func (s *Stream) armHealthy() {
	if s.a.failures == 0 {
		return
	}
	s.healthyAt.Store(nowNano() + int64(BackoffFor(s.st.Retry).Health()))
}

// endHealthy applies the health time to the connection that ended at
// (UnixNano): the counter is reset when it stayed up long enough. Only the
// actor calls it, from onRunDone.
func (s *Stream) endHealthy(at int64) {
	h := s.healthyAt.Load()
	if h == 0 {
		return
	}
	s.healthyAt.Store(0)
	if at >= h && s.a.phase == connected {
		s.a.failures = 0
		s.failures.Store(0)
	}
}

// failuresNow is the failure counter as the actor would have it now: 0
// once the running connection has been up for the health time.
func (s *Stream) failuresNow() uint32 {
	if h := s.healthyAt.Load(); h != 0 && nowNano() >= h {
		return 0
	}
	return s.failures.Load()
}
