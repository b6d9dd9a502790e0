package transport

import (
	"context"
	"errors"
	"os"
	"sync"
)

// PullRole is the state of a connection's read role once the stream has
// taken it (PullReader.Take), shared by the transports that offer one: it
// closes Ready when the reader goroutine hands the role over, and carries
// the end of the connection from Read, on the application's goroutine, to
// the reader goroutine waiting for it (HandOver). Init it before use.
type PullRole struct {
	mu        sync.Mutex
	ready     chan struct{} // closed by HandOver or Finish
	readyShut bool          // ready is closed
	end       chan struct{} // closed by Finish
	ended     bool          // the connection has ended (endErr)
	endErr    error
}

// Init makes the role's channels.
func (r *PullRole) Init() {
	r.ready, r.end = make(chan struct{}), make(chan struct{})
}

// Ready is PullReader.Ready.
func (r *PullRole) Ready() <-chan struct{} { return r.ready }

// Ended reports whether the connection has ended, and how (Read returns
// that end again).
func (r *PullRole) Ended() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended, r.endErr
}

// Finish records the end of the connection (the first one counts) and
// wakes the reader goroutine waiting in HandOver.
func (r *PullRole) Finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return
	}
	r.ended, r.endErr = true, err
	close(r.end)
	if !r.readyShut {
		close(r.ready)
		r.readyShut = true
	}
}

// HandOver is what the reader goroutine does once its read returned rerr
// after Take. When rerr is the wake-up deadline (os.ErrDeadlineExceeded),
// nothing ended the connection and ctx is not done, it calls resume (which
// clears the deadline), closes Ready and waits until Finish or ctx, and
// returns the end Finish recorded, or ctx's cause. Otherwise the
// connection ended by itself: it records end (what Read reports) and
// returns rerr.
func (r *PullRole) HandOver(ctx context.Context, rerr, end error, resume func()) error {
	r.mu.Lock()
	if r.ended || ctx.Err() != nil || !errors.Is(rerr, os.ErrDeadlineExceeded) {
		r.mu.Unlock()
		r.Finish(end)
		return rerr
	}
	resume()
	close(r.ready)
	r.readyShut = true
	r.mu.Unlock()
	select {
	case <-r.end:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endErr
}
