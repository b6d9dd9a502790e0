package raw

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/securestreams/ss/internal/transport"
)

// aLongTimeAgo is the read deadline that wakes a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// A plain connection offers its read role to the stream
// (transport.PullReader, implemented by its directWriter so that the offer
// allocates nothing): once the stream takes it (Stream.Recv), the reader
// goroutine of pipeDirect stops reading (woken by a read deadline in the
// past) and only waits for the end of the connection, which Read, called
// on the application's goroutine, reports. The role's state (pullReader)
// is allocated by Take.

var _ transport.PullReader = (*directWriter)(nil)

// pullReader is the state of a taken read role.
type pullReader struct {
	transport.PullRole
	w *directWriter

	// Read's state, used by one Read at a time (the stream's Recv).
	r    polledRead
	read func(fd uintptr) bool
}

// offerPull offers the connection's read role to the stream when its sink
// takes one.
func offerPull(w *directWriter, sink transport.Sink) {
	if o, ok := sink.(transport.PullOfferer); ok {
		o.OfferPull(w)
	}
}

// Take implements transport.PullReader.
func (w *directWriter) Take() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pull != nil {
		return
	}
	p := &pullReader{w: w}
	p.Init()
	p.read = p.r.read
	w.pull = p
	if w.pullOff {
		// The reader goroutine has stopped on its own: the connection
		// is over.
		p.Finish(errPullEnded)
		return
	}
	w.conn.SetReadDeadline(aLongTimeAgo)
}

// errPullEnded is what Read reports when the role was taken after the
// connection ended.
var errPullEnded = errors.New("ss: raw: connection ended")

// taken returns the role's state; Take has been called.
func (w *directWriter) taken() *pullReader {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pull
}

// Ready implements transport.PullReader.
func (w *directWriter) Ready() <-chan struct{} { return w.taken().Ready() }

// Interrupt implements transport.PullReader.
func (w *directWriter) Interrupt() { w.conn.SetReadDeadline(aLongTimeAgo) }

// Resume implements transport.PullReader.
func (w *directWriter) Resume() { w.conn.SetReadDeadline(time.Time{}) }

// Read implements transport.PullReader: one read as readLoopPolled's, on
// the caller's goroutine.
func (w *directWriter) Read() ([]byte, error) {
	p := w.taken()
	if ended, err := p.Ended(); ended {
		return nil, err
	}
	p.r.data, p.r.n, p.r.err = nil, 0, nil
	err := w.rc.Read(p.read)
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
	p.Finish(err)
	return nil, err
}

// handOver is what pipeDirect's reader does once readLoopPolled has
// returned rerr: when the stream took the read role (rerr is the wake-up
// deadline) it hands the role over and waits until Read reports the end of
// the connection or ctx is cut, and returns that end (nil when the peer
// closed, as readLoopPolled); otherwise the connection ended by itself and
// a Read reports it. Either way the offer is withdrawn.
func (w *directWriter) handOver(ctx context.Context, sink transport.Sink, rerr error) error {
	o, ok := sink.(transport.PullOfferer)
	if !ok {
		return rerr
	}
	defer o.OfferPull(nil)
	w.mu.Lock()
	w.pullOff = true
	p := w.pull
	w.mu.Unlock()
	if p == nil {
		return rerr
	}
	end := rerr
	if end == nil {
		end = io.EOF
	}
	err := p.HandOver(ctx, rerr, end, func() { w.conn.SetReadDeadline(time.Time{}) })
	if err == io.EOF {
		return nil
	}
	return err
}
