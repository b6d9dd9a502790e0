package raw

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/transport"
)

// aLongTimeAgo is the read deadline that wakes a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// pullReader is a plain connection's read role offered to the stream
// (transport.PullReader): once the stream takes it (Stream.Recv), the
// reader goroutine of pipeDirect stops reading (woken by a read deadline
// in the past) and only waits for the end of the connection, which Read,
// called on the application's goroutine, reports.
type pullReader struct {
	w *directWriter // the connection (conn, rc) and its closing

	mu        sync.Mutex
	taken     bool          // Take was called
	ready     chan struct{} // made by Take; closed by handOver or end
	readyShut bool          // ready is closed
	end       chan struct{} // made by Take; closed by end
	ended     bool          // the connection has ended (endErr)
	endErr    error

	// Read's state, used by one Read at a time (the stream's Recv).
	r    polledRead
	read func(fd uintptr) bool
}

var _ transport.PullReader = (*pullReader)(nil)

// offerPull offers the connection's read role to the stream when its sink
// takes one (nil otherwise).
func offerPull(w *directWriter, sink transport.Sink) *pullReader {
	o, ok := sink.(transport.PullOfferer)
	if !ok {
		return nil
	}
	p := &pullReader{w: w}
	o.OfferPull(p)
	return p
}

// Take implements transport.PullReader.
func (p *pullReader) Take() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken {
		return
	}
	p.taken = true
	p.ready, p.end = make(chan struct{}), make(chan struct{})
	p.read = p.r.read
	if p.ended {
		close(p.end)
		close(p.ready)
		p.readyShut = true
		return
	}
	p.w.conn.SetReadDeadline(aLongTimeAgo)
}

// Ready implements transport.PullReader.
func (p *pullReader) Ready() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// Interrupt implements transport.PullReader.
func (p *pullReader) Interrupt() { p.w.conn.SetReadDeadline(aLongTimeAgo) }

// Resume implements transport.PullReader.
func (p *pullReader) Resume() { p.w.conn.SetReadDeadline(time.Time{}) }

// Read implements transport.PullReader: one read as readLoopPolled's, on
// the caller's goroutine.
func (p *pullReader) Read() ([]byte, error) {
	p.mu.Lock()
	ended, err := p.ended, p.endErr
	p.mu.Unlock()
	if ended {
		return nil, err
	}
	p.r.data, p.r.n, p.r.err = nil, 0, nil
	err = p.w.rc.Read(p.read)
	if err == nil && p.r.err != nil {
		err = os.NewSyscallError("read", p.r.err)
	}
	if data := p.r.data; len(data) > 0 {
		p.r.data = nil
		return data, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, transport.ErrInterrupted
	}
	if err == nil {
		err = io.EOF
	}
	p.finish(err)
	return nil, err
}

// finish records the end of the connection and wakes the reader
// goroutine waiting for it (handOver).
func (p *pullReader) finish(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended, p.endErr = true, err
	if p.end != nil {
		close(p.end)
	}
	if p.ready != nil && !p.readyShut {
		close(p.ready)
		p.readyShut = true
	}
}

// handOver is what pipeDirect's reader does once readLoopPolled has
// returned rerr: when the stream took the read role (rerr is the wake-up
// deadline) it hands the role over and waits until Read reports the end of
// the connection or ctx is cut, and returns that end (nil when the peer
// closed, as readLoopPolled); otherwise the connection ended by itself and
// Read reports it. Either way the role is withdrawn.
func (p *pullReader) handOver(ctx context.Context, sink transport.Sink, rerr error) error {
	defer sink.(transport.PullOfferer).OfferPull(nil)
	p.mu.Lock()
	if !p.taken || p.ended || ctx.Err() != nil || !errors.Is(rerr, os.ErrDeadlineExceeded) {
		p.mu.Unlock()
		end := rerr
		if end == nil {
			end = io.EOF
		}
		p.finish(end)
		return rerr
	}
	p.w.conn.SetReadDeadline(time.Time{})
	close(p.ready)
	p.readyShut = true
	end := p.end
	p.mu.Unlock()
	select {
	case <-end:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	p.mu.Lock()
	err := p.endErr
	p.mu.Unlock()
	if err == io.EOF {
		return nil
	}
	return err
}
