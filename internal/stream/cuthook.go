package stream

import "github.com/securestreams/ss/internal/transport"

var _ transport.CutNotifier = (*sink)(nil)

// OnCut implements transport.CutNotifier: the attempt's context is
// cancelled only by the actor (cutAttempt) while Run runs, so the actor
// runs f as it cuts, or f runs at once when the attempt was cut already.
// Either way on a goroutine of its own (as context.AfterFunc would), which
// the host's Close waits for.
func (k *sink) OnCut(f func()) {
	s := k.s
	s.mu.Lock()
	if !k.cut {
		k.onCut = f
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.runCut(f)
}

// runCut runs an OnCut function on its own goroutine.
func (s *Stream) runCut(f func()) {
	s.h.wg.Add(1)
	go func() {
		defer s.h.wg.Done()
		f()
	}()
}
