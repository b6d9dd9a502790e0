package stream

import (
	"slices"
	"sync"
	"time"
)

// Attempt goroutines. Every attempt runs Protocol.Run (or ServerConn.Serve)
// on a goroutine of its own, since the actor must not block. A goroutine
// started per attempt grows its stack again each time through TLS, HTTP/2
// or QUIC and the stream's own calls (runtime.newstack was 18% of the CPU
// of an HTTP/2 GET, PERFORMANCE.md "h1/h2/h3 GET rate"); so a goroutine
// whose attempt has ended waits a little for the next one (of any stream
// of the host) before it exits, keeping its stack. At most maxIdleRunners
// wait, each at most runnerLinger: an idle runtime holds no goroutine for
// longer, and a burst of ended attempts does not park one goroutine each.
const (
	maxIdleRunners = 4
	runnerLinger   = 500 * time.Millisecond
)

// runners is the host's set of goroutines waiting for an attempt.
type runners struct {
	mu     sync.Mutex
	idle   []chan func() // each idle runner's hand-off (capacity 1), the last to park last
	closed bool
	quit   chan struct{} // closed by close: idle runners exit
	wg     sync.WaitGroup
	once   sync.Once
}

// run runs fn on an idle runner, or on a new goroutine when none waits.
func (r *runners) run(fn func()) {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		w := r.idle[n-1]
		r.idle[n-1] = nil
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		w <- fn // never blocks: capacity 1, and only the taker sends
		return
	}
	closed := r.closed
	if !closed {
		r.wg.Add(1)
	}
	r.mu.Unlock()
	if closed {
		go fn()
		return
	}
	go r.loop(fn)
}

// loop runs fn, then the attempts handed to it while it waits, until none
// comes within runnerLinger, enough runners wait already, or close. Its
// own frame is kept small (the waiting is in next): an attempt that ends
// up a long-lived connection parks its reader under it, and the runtime
// halves a parked goroutine's stack only while less than a quarter of it
// is in use (PERFORMANCE.md "Connected raw stream").
func (r *runners) loop(fn func()) {
	defer r.wg.Done()
	wt := &runnerWait{w: make(chan func(), 1)}
	for fn != nil {
		fn()
		fn = r.next(wt)
	}
	wt.stop()
}

// runnerWait is one runner's hand-off and linger timer.
type runnerWait struct {
	w chan func() // capacity 1
	t *time.Timer
}

func (wt *runnerWait) stop() {
	if wt.t != nil {
		wt.t.Stop()
	}
}

// next parks the runner until an attempt is handed to it (returned) or it
// should exit (nil).
//
//go:noinline
func (r *runners) next(wt *runnerWait) func() {
	w := wt.w
	r.mu.Lock()
	if r.closed || len(r.idle) >= maxIdleRunners {
		r.mu.Unlock()
		return nil
	}
	r.idle = append(r.idle, w)
	r.mu.Unlock()
	if wt.t == nil {
		wt.t = time.NewTimer(runnerLinger)
	} else {
		wt.t.Reset(runnerLinger)
	}
	select {
	case fn := <-w:
		wt.t.Stop()
		return fn
	case <-wt.t.C:
	case <-r.quit:
	}
	r.mu.Lock()
	i := slices.Index(r.idle, w)
	if i >= 0 {
		r.idle = slices.Delete(r.idle, i, i+1)
	}
	r.mu.Unlock()
	if i >= 0 {
		return nil
	}
	return <-w // taken while the timer fired: its attempt is on the way
}

// close makes the idle runners exit and waits for every runner; attempts
// started later run on goroutines of their own. Idempotent.
func (r *runners) close() {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.quit)
	})
	r.wg.Wait()
}
