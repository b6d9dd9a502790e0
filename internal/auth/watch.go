package auth

import "sync"

// watchSet holds registered callbacks (Store.Watch, Refresher.Watch).
type watchSet[F any] struct {
	mu   sync.Mutex
	fns  map[uint64]F
	next uint64
}

// add registers fn; stop unregisters it.
func (w *watchSet[F]) add(fn F) (stop func()) {
	w.mu.Lock()
	if w.fns == nil {
		w.fns = map[uint64]F{}
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.fns, id)
		w.mu.Unlock()
	}
}

// list returns the registered callbacks, to be called without the lock.
func (w *watchSet[F]) list() []F {
	w.mu.Lock()
	defer w.mu.Unlock()
	fns := make([]F, 0, len(w.fns))
	for _, fn := range w.fns {
		fns = append(fns, fn)
	}
	return fns
}
