package ws

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// A connection on a plain socket offers its read role to the stream
// (transport.PullReader, implemented by the pump so that the offer
// allocates nothing), as the raw transport does: once the stream takes it
// (Stream.Recv), the reader goroutine is woken by a read deadline in the
// past, stops reading and only waits for the end of the connection, which
// Read, called on the application's goroutine, reports. The frame reader
// keeps its state across the deadline (reader.go), so the hand-over may
// fall anywhere, inside a frame included. The role's state (pullRole) is
// allocated by Take.

var _ transport.FramedPullReader = (*pump)(nil)

// aLongTimeAgo is the read deadline that wakes a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// errPullEnded is what Read reports when the role was taken after the
// connection ended.
var errPullEnded = errors.New("ss: ws: connection ended")

// pullRole is the state of a taken read role.
type pullRole struct {
	mu        sync.Mutex
	ready     chan struct{} // closed by handOver or finish
	readyShut bool          // ready is closed
	end       chan struct{} // closed by finish
	ended     bool          // the connection has ended (endErr)
	endErr    error
}

// offerPull offers the read role when the connection is a plain socket
// and the sink takes one; it reports whether it did.
func (p *pump) offerPull() bool {
	o, ok := p.sink.(transport.PullOfferer)
	if !ok {
		return false
	}
	if _, ok := p.c.NetConn().(syscall.Conn); !ok {
		return false // TLS: as the raw transport, no inline read
	}
	o.OfferPull(p)
	return true
}

// Take implements transport.PullReader.
func (p *pump) Take() {
	p.pullMu.Lock()
	defer p.pullMu.Unlock()
	if p.pull != nil {
		return
	}
	r := &pullRole{ready: make(chan struct{}), end: make(chan struct{})}
	p.pull = r
	if p.pullOff {
		// The reader goroutine has stopped on its own: the connection is
		// over.
		r.finish(errPullEnded)
		return
	}
	_ = p.c.NetConn().SetReadDeadline(aLongTimeAgo)
}

// taken returns the role's state; Take has been called.
func (p *pump) taken() *pullRole {
	p.pullMu.Lock()
	defer p.pullMu.Unlock()
	return p.pull
}

// Ready implements transport.PullReader.
func (p *pump) Ready() <-chan struct{} { return p.taken().ready }

// Interrupt implements transport.PullReader.
func (p *pump) Interrupt() { _ = p.c.NetConn().SetReadDeadline(aLongTimeAgo) }

// Resume implements transport.PullReader.
func (p *pump) Resume() { _ = p.c.NetConn().SetReadDeadline(time.Time{}) }

// Read implements transport.PullReader (ReadFramed without the flags).
func (p *pump) Read() ([]byte, error) {
	data, _, err := p.ReadFramed()
	return data, err
}

// ReadFramed implements transport.FramedPullReader: the next rx chunk,
// read on the caller's goroutine with the reader goroutine's frame
// reader. Control frames are handled as the reader goroutine does (a PONG
// confirms validity). The end of the connection is returned as the reader
// goroutine would have returned it (RunConn's Result comes from it).
func (p *pump) ReadFramed() ([]byte, event.Flags, error) {
	r := p.taken()
	r.mu.Lock()
	ended, err := r.ended, r.endErr
	r.mu.Unlock()
	if ended {
		return nil, 0, err
	}
	data, flags, err := p.fr.next()
	if err == nil {
		return data, flags, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, 0, transport.ErrInterrupted
	}
	r.finish(err)
	return nil, 0, err
}

// finish records the end of the connection and wakes the reader goroutine
// waiting for it (handOver).
func (r *pullRole) finish(err error) {
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

// handOver is what the reader goroutine does once its frame reader
// returned rerr: when the stream took the read role (rerr is the wake-up
// deadline) it hands the role over and waits until Read reports the end of
// the connection, or ctx is done, and returns that end; otherwise the
// connection ended by itself and a Read reports it. Either way the offer
// is withdrawn.
func (p *pump) handOver(ctx context.Context, rerr error) error {
	if !p.offered {
		return rerr
	}
	defer p.sink.(transport.PullOfferer).OfferPull(nil)
	p.pullMu.Lock()
	p.pullOff = true
	r := p.pull
	p.pullMu.Unlock()
	if r == nil {
		return rerr
	}
	r.mu.Lock()
	if r.ended || ctx.Err() != nil || !errors.Is(rerr, os.ErrDeadlineExceeded) {
		r.mu.Unlock()
		r.finish(rerr)
		return rerr
	}
	_ = p.c.NetConn().SetReadDeadline(time.Time{})
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
