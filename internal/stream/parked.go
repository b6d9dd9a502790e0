package stream

import (
	"errors"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// A connection parked in an event loop (transport.ParkedSink,
// Config.Poller) outlives its Run: Run returns Result{Parked: true} once
// the socket is parked, its runner goroutine goes back to the host's
// runners, and the connection reports its end with End, which does what
// the runner does after an ordinary Run (docs/stream-states.md, "Who
// sends what"). Until then the attempt is running for the actor (its
// phase, its context and OnCut, the host's wait group): nothing else in
// the state machine changes.

var _ transport.ParkedSink = (*sink)(nil)

// errRxFull: pushRx without waiting found the receive budget full.
var errRxFull = errors.New("ss: receive budget full")

// TryRx implements transport.ParkedSink: Rx without waiting, for a read
// done inline on an event loop's thread.
func (k *sink) TryRx(data []byte, flags event.Flags) (bool, error) {
	if k.done.Load() {
		return false, ErrDestroyed
	}
	switch err := k.s.pushRx(nil, data, flags, flags&event.PerfJSON != 0, k); err {
	case nil:
		return true, nil
	case errRxFull:
		return false, nil
	default:
		return false, err
	}
}

// End implements transport.ParkedSink; the runner calls it too, when Run
// returns without parking. The first call counts.
func (k *sink) End(res transport.Result) {
	if k.done.Swap(true) {
		return
	}
	s := k.s
	k.cancel(nil)
	s.mu.Lock()
	pid := s.pid
	s.mu.Unlock()
	s.post(pid, msgRunDone{gen: k.gen, at: nowNano(), res: res})
	s.h.wg.Done()
}
