package ws

import (
	"context"
	"errors"
	"os"
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
// fall anywhere, inside a frame included. The role's state
// (transport.PullRole) is allocated by Take.

var _ transport.FramedPullReader = (*pump)(nil)

// aLongTimeAgo is the read deadline that wakes a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// errPullEnded is what Read reports when the role was taken after the
// connection ended.
var errPullEnded = errors.New("ss: ws: connection ended")

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
	r := &transport.PullRole{}
	r.Init()
	p.pull = r
	if p.pullOff {
		// The reader goroutine has stopped on its own: the connection is
		// over.
		r.Finish(errPullEnded)
		return
	}
	_ = p.c.NetConn().SetReadDeadline(aLongTimeAgo)
}

// taken returns the role's state; Take has been called.
func (p *pump) taken() *transport.PullRole {
	p.pullMu.Lock()
	defer p.pullMu.Unlock()
	return p.pull
}

// Ready implements transport.PullReader.
func (p *pump) Ready() <-chan struct{} { return p.taken().Ready() }

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
	if ended, err := r.Ended(); ended {
		return nil, 0, err
	}
	data, flags, err := p.fr.next()
	if err == nil {
		return data, flags, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, 0, transport.ErrInterrupted
	}
	r.Finish(err)
	return nil, 0, err
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
	return r.HandOver(ctx, rerr, rerr, func() { _ = p.c.NetConn().SetReadDeadline(time.Time{}) })
}
