package mqtt

import (
	"sync"
	"time"
)

// seqKeep is how long a stream's message count is kept between its
// connections. The transport contract does not tell a transport when a
// stream is destroyed, so counts of streams idle longer than this are
// forgotten (their numbering starts again at 1).
const seqKeep = 10 * time.Minute

// seqStore keeps each stream's message count between its connections, so
// QoS events carry "the 1-based sequence number of the message on this
// stream" across reconnections (docs/streams.md §1.3).
type seqStore struct {
	mu        sync.Mutex
	m         map[uint64]seqEntry
	lastPurge time.Time
}

type seqEntry struct {
	seq uint32
	at  time.Time
}

// take returns the stream's count so far and forgets it (the running
// connection owns it until put).
func (s *seqStore) take(stream uint64) uint32 {
	if stream == 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[stream]
	if !ok {
		return 0
	}
	delete(s.m, stream)
	return e.seq
}

// put stores the stream's count when a connection ends.
func (s *seqStore) put(stream uint64, seq uint32) {
	if stream == 0 || seq == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[uint64]seqEntry{}
	}
	s.m[stream] = seqEntry{seq: seq, at: now}
	if now.Sub(s.lastPurge) > time.Minute {
		s.lastPurge = now
		for id, e := range s.m {
			if now.Sub(e.at) > seqKeep {
				delete(s.m, id)
			}
		}
	}
}
