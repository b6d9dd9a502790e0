// Package bound limits how many messages of one kind may be on their way to
// an actor at once (see Bound).
package bound

import "sync"

// Bound limits how many messages of one kind may be on their way to an
// actor at once. A sender that a remote peer drives (a broker's PUBLISH, a
// connection flood on a listener) takes a slot before it sends and the
// actor gives the slot back once it has handled the message, so the
// actor's mailbox never holds more than the bound of them, however fast the
// peer is. protoactor's own bounded mailbox is not used: its Push spins
// while the mailbox is full, which would block (and burn) the sender.
type Bound struct {
	mu    sync.Mutex
	n     int
	max   int
	space chan struct{} // closed and replaced when a slot frees up while someone waits
}

// New returns a Bound of max slots (at least 1).
func New(max int) *Bound {
	if max < 1 {
		max = 1
	}
	return &Bound{max: max}
}

// TryTake takes a slot if one is free; it never blocks.
func (b *Bound) TryTake() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n >= b.max {
		return false
	}
	b.n++
	return true
}

// Take takes a slot, waiting while none is free until done is closed (then
// it reports false and takes nothing).
func (b *Bound) Take(done <-chan struct{}) bool { return b.await(done, true) }

// Wait blocks while every slot is taken, until done is closed (then it
// reports false). It takes nothing: it lets a producer pause until the
// actor catches up.
func (b *Bound) Wait(done <-chan struct{}) bool { return b.await(done, false) }

// await blocks until a slot is free (taking it when take is set) or done is
// closed (then it reports false).
func (b *Bound) await(done <-chan struct{}, take bool) bool {
	for {
		b.mu.Lock()
		if b.n < b.max {
			if take {
				b.n++
			}
			b.mu.Unlock()
			return true
		}
		w := b.waitLocked()
		b.mu.Unlock()
		select {
		case <-w:
		case <-done:
			return false
		}
	}
}

func (b *Bound) waitLocked() chan struct{} {
	if b.space == nil {
		b.space = make(chan struct{})
	}
	return b.space
}

// Give returns a slot (the actor handled the message).
func (b *Bound) Give() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n > 0 {
		b.n--
	}
	if b.space != nil {
		close(b.space)
		b.space = nil
	}
}

// Len returns the number of slots taken.
func (b *Bound) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Cap returns the number of slots.
func (b *Bound) Cap() int { return b.max }
