package raw

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// pipeDirect is Pipe for a plain socket whose transmit queue supports the
// direct path (transport.DirectTx): the application's Send writes to the
// socket itself while nothing is queued, and a writer goroutine runs only
// while chunks wait for the socket to drain. A connected stream that is not
// sending has one goroutine: the reader, parked in the runtime poller
// without a buffer (readLoopPolled). No context of its own either (each
// costs a few hundred bytes per connection): ctx closes conn, and a failed
// write closes it too, which ends the reader.
func pipeDirect(ctx context.Context, conn net.Conn, rc syscall.RawConn, tx transport.DirectTx, sink transport.Sink) error {
	w := &directWriter{conn: conn, rc: rc, tx: tx}
	w.write = w.writeOnce
	stop := transport.AfterCut(ctx, sink, w.close)
	offerPull(w, sink) // Stream.Recv may take the read role (pull.go)
	tx.SetDirect(w)
	rerr := w.handOver(ctx, sink, readLoopPolled(ctx, rc, sink))
	tx.SetDirect(nil)
	w.close() // ends a writer blocked on a full socket
	w.wg.Wait()
	stop()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if werr := w.failed(); werr != nil {
		return werr
	}
	return rerr
}

// directWriter is the transport.DirectWriter of one connection.
type directWriter struct {
	conn net.Conn
	rc   syscall.RawConn
	// try, when set, is the non-blocking write used instead of rc (a
	// socket parked in an event loop: evloop.Conn.TryWrite, parked.go).
	try func(p []byte) (int, error)
	tx  transport.DirectTx
	wg  sync.WaitGroup // the writer goroutine

	mu     sync.Mutex
	closed bool // close was called: later write errors are its doing
	// pullOff is set once the reader goroutine is past the point of
	// handing the read role over, pull once the stream took it (pull.go).
	pullOff bool
	werr    error // the first write error before that
	pull    *pullReader

	// One TryWrite at a time (the queue's write role): its argument and
	// results, and the function handed to rc.Write, bound once so that a
	// write allocates nothing.
	p     []byte
	n     int
	errno error
	write func(fd uintptr) bool
}

// close closes the connection (idempotent).
func (w *directWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.conn.Close()
}

// fail records a write error and closes the connection, which ends the
// reader and so the connection.
func (w *directWriter) fail(err error) {
	w.mu.Lock()
	if w.werr == nil && !w.closed {
		w.werr = err
	}
	w.closed = true
	w.mu.Unlock()
	w.conn.Close()
}

func (w *directWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.werr
}

// TryWrite implements transport.DirectWriter: one non-blocking write.
func (w *directWriter) TryWrite(p []byte, _ event.Flags) (int, bool, error) {
	if w.try != nil {
		n, err := w.try(p)
		if err != nil {
			w.fail(err)
			return 0, false, err
		}
		return n, false, nil
	}
	w.p = p
	err := w.rc.Write(w.write)
	n, errno := w.n, w.errno
	w.p, w.errno = nil, nil
	if err == nil && errno != nil && errno != syscall.EAGAIN {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		w.fail(err)
		return 0, false, err
	}
	return max(n, 0), false, nil
}

// writeOnce is TryWrite's rc.Write function.
func (w *directWriter) writeOnce(fd uintptr) bool {
	for {
		w.n, w.errno = syscall.Write(int(fd), w.p)
		if w.errno != syscall.EINTR {
			return true // never wait for writability here
		}
	}
}

// StartWriter implements transport.DirectWriter.
func (w *directWriter) StartWriter() {
	w.wg.Add(1)
	go w.writeQueued()
}

// writeQueued writes queued chunks, waiting for the socket as needed, until
// the queue is empty (the role goes back to the senders) or a write fails.
func (w *directWriter) writeQueued() {
	defer w.wg.Done()
	var chunks []transport.Chunk
	var bufs net.Buffers
	for {
		chunks = w.tx.TakeQueued(chunks[:0])
		if len(chunks) == 0 {
			return
		}
		var err error
		if len(chunks) == 1 {
			_, err = w.conn.Write(chunks[0].Data)
		} else {
			bufs = bufs[:0]
			for i := range chunks {
				bufs = append(bufs, chunks[i].Data)
			}
			_, err = bufs.WriteTo(w.conn)
			clear(bufs[:cap(bufs)])
		}
		if err != nil {
			// The role stays taken: the connection is ending, and
			// SetDirect(nil) gives it back.
			w.fail(err)
			return
		}
		w.tx.Release(chunks)
		clear(chunks)
	}
}
