package ss

import "iter"

// Events returns the stream's event channel: states and received payload
// in the order they happened, CREATING first and DESTROYING last, after
// which the channel is closed. Nothing is dropped and nothing grows
// without bound: while the application does not read, the stream stops
// reading from the network (received data waiting for the application is
// bounded by Config.RxBuffer) and, once StateBound states wait, starts no
// new connection attempt until the application reads. Read it until it is
// closed (Runtime.Close closes it anyway, discarding what was not read).
// An HTTP client stream's channel holds up to 4 events, counted as
// delivered (docs/streams.md §1.3); every other stream's is unbuffered.
func (s *Stream) Events() <-chan Event { return s.s.Events() }

// All ranges over the stream's events until DESTROYING (inclusive). Breaking
// out of the loop does not destroy the stream.
func (s *Stream) All() iter.Seq[Event] {
	return func(yield func(Event) bool) {
		for ev := range s.s.Events() {
			if !yield(ev) {
				return
			}
		}
	}
}
