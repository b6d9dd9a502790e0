// Package raw is the raw transport (docs/streams.md §11.7): a TCP or unix socket,
// with TLS when the streamtype says so, carrying an ordered byte stream with
// no message boundaries. The client is a transport.Protocol; the server a
// transport.ServerProtocol (§10.2).
package raw

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/securestreams/ss/internal/bufpool"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// readSize is the size of the pooled read buffers of plain sockets (see
// readLoopPolled).
const readSize = 64 << 10

// Client is the raw client protocol.
type Client struct {
	env *transport.Env
}

// New returns the raw client protocol.
func New(env *transport.Env) transport.Protocol { return &Client{env: env} }

// Run implements transport.Protocol: dial (unix, TCP, TLS), CONNECTED, then
// move bytes both ways until either side closes or ctx is cancelled.
//
// Its goroutine is the connection's reader, parked in the runtime poller
// for as long as the connection is idle, so the frames under the parked
// read are kept small (connect and pipeGoroutines are separate functions):
// the runtime halves a parked goroutine's stack only while less than a
// quarter of it is in use, and the dial grows it to 8 KiB
// (PERFORMANCE.md "Connected raw stream").
func (c *Client) Run(ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
	conn, timing, err := c.connect(ctx, a, sink)
	if err != nil {
		c.perf(a, sink, timing)
		return transport.Result{Err: err}
	}
	if !a.Type.Perf {
		timing = nil // not kept while the connection lives
	}
	sink.State(event.Connected, 0)
	sink.ValidityConfirmed()
	if park(ctx, a, conn, sink, timing) {
		return transport.Result{Parked: true} // parked.go: the end comes through the sink
	}
	err = Pipe(ctx, conn, a.Tx, sink)
	c.perf(a, sink, timing)
	return transport.Result{Err: err}
}

// connect resolves and dials the attempt's endpoint; the Timing is for
// perf reports.
//
//go:noinline
func (c *Client) connect(ctx context.Context, a *transport.Attempt, sink transport.Sink) (net.Conn, *transport.Timing, error) {
	timing := new(transport.Timing)
	ep, err := transport.ResolveEndpoint(a)
	if err != nil {
		return nil, timing, err
	}
	env := a.Env
	if env == nil {
		env = c.env
	}
	// The dial's timeout is not a child of ctx (transport.CutTimeout): a
	// child would allocate ctx's map of children, kept while the
	// connection lives.
	dctx, cancel := transport.CutTimeout(ctx, sink, env.ConnectTimeout)
	conn, err := transport.Dial(dctx, a, ep, transport.DialOptions{}, timing)
	cancel()
	if err != nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return conn, timing, err
}

func (c *Client) perf(a *transport.Attempt, sink transport.Sink, t *transport.Timing) {
	if a.Type.Perf {
		_ = sink.Rx(context.Background(), transport.PerfReport(t, 0, -1), event.SOM|event.EOM|event.PerfJSON)
	}
}

// Close implements transport.Protocol.
func (c *Client) Close(context.Context) error { return nil }

// batcher is implemented by the stream's transmit queue: all queued chunks
// at once, for one writev, and Release to recycle their buffers once
// written.
type batcher interface {
	NextBatch(ctx context.Context, dst []transport.Chunk) ([]transport.Chunk, error)
	Release(chunks []transport.Chunk)
}

// Pipe moves bytes between conn and the stream until the peer closes (nil),
// an I/O error, or ctx is done (its cause). It closes conn.
func Pipe(parent context.Context, conn net.Conn, tx transport.TxSource, sink transport.Sink) error {
	if d, ok := tx.(transport.DirectTx); ok {
		if sc, ok := conn.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				return pipeDirect(parent, conn, rc, d, sink)
			}
		}
	}
	return pipeGoroutines(parent, conn, tx, sink)
}

// pipeGoroutines is Pipe with a reader and a writer goroutine (TLS, or a
// transmit queue without the direct path). A function of its own so that
// its locals are not in Pipe's frame under pipeDirect's parked reader.
//
//go:noinline
func pipeGoroutines(parent context.Context, conn net.Conn, tx transport.TxSource, sink transport.Sink) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := writeLoop(ctx, conn, tx)
		if ctx.Err() == nil {
			werr = err
			cancel()
		}
	}()
	rerr := readLoop(ctx, conn, sink)
	cancel()
	<-done
	conn.Close()
	switch {
	case parent.Err() != nil:
		return context.Cause(parent)
	case werr != nil:
		return werr
	}
	return rerr
}

func readLoop(ctx context.Context, conn net.Conn, sink transport.Sink) error {
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return readLoopPolled(ctx, rc, sink)
		}
	}
	return readLoopAdaptive(ctx, conn, sink)
}

// readLoopPolled reads a plain socket: it waits for readability without a
// buffer, then reads into a pooled one (internal/bufpool, shared by every
// connection). A read that fills at least half of it hands the buffer
// itself to the stream; a shorter one is copied out into a buffer of its
// size (pooled from 4 KiB up) and the read buffer goes back to the pool. So
// an idle connected stream holds no read buffer, and an application that
// hands payloads back (Event.Release) makes bulk receive allocation-free.
func readLoopPolled(ctx context.Context, rc syscall.RawConn, sink transport.Sink) error {
	var r polledRead
	read := r.read // one closure for the whole loop
	for {
		r.data, r.n, r.err = nil, 0, nil
		err := rc.Read(read)
		if err == nil && r.err != nil {
			err = os.NewSyscallError("read", r.err)
		}
		if len(r.data) > 0 {
			if serr := sink.Rx(ctx, r.data, 0); serr != nil {
				return serr
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		if r.n == 0 {
			return nil // end of file
		}
	}
}

// polledRead is one read of readLoopPolled, called by the runtime poller
// when the socket may be readable.
type polledRead struct {
	data []byte
	n    int
	err  error
}

func (r *polledRead) read(fd uintptr) bool {
	buf := bufpool.Get(readSize)
	for {
		r.n, r.err = syscall.Read(int(fd), buf)
		if r.err != syscall.EINTR {
			break
		}
	}
	if r.err == syscall.EAGAIN {
		bufpool.Put(buf)
		return false // wait for readability
	}
	r.data = keepRead(buf, r.n)
	return true
}

// keepRead returns the payload of a read of n bytes into buf, a pooled
// readSize buffer (nil when n <= 0): buf itself when the read filled at
// least half of it (its capacity stays readSize so that Event.Release can
// pool it again), else a copy in a buffer of its size, buf going back to
// the pool.
func keepRead(buf []byte, n int) []byte {
	switch {
	case n <= 0:
		bufpool.Put(buf)
		return nil
	case n >= readSize/2:
		return buf[:n]
	}
	data := bufpool.Get(n)
	copy(data, buf[:n])
	bufpool.Put(buf)
	return data
}

// minRead and maxAdaptive bound the read buffer of connections that are not
// plain sockets (TLS): it grows while reads fill it and shrinks while they
// do not, so an idle stream holds a small one.
const (
	minRead     = 512
	maxAdaptive = 16 << 10 // one TLS record
)

func readLoopAdaptive(ctx context.Context, conn net.Conn, sink transport.Sink) error {
	size := minRead
	buf := make([]byte, size)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			var data []byte
			if n >= maxAdaptive/2 {
				data = buf[:n:n]
				buf = nil
			} else {
				data = make([]byte, n)
				copy(data, buf[:n])
			}
			switch {
			case n == size && size < maxAdaptive:
				size = min(size*4, maxAdaptive)
				buf = nil
			case n < size/4 && size > minRead:
				size = max(size/4, minRead)
				buf = nil
			}
			if buf == nil {
				buf = make([]byte, size)
			}
			if rerr := sink.Rx(ctx, data, 0); rerr != nil {
				return rerr
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func writeLoop(ctx context.Context, conn net.Conn, tx transport.TxSource) error {
	if b, ok := tx.(batcher); ok {
		var chunks []transport.Chunk
		var bufs net.Buffers
		for {
			var err error
			chunks, err = b.NextBatch(ctx, chunks[:0])
			if err != nil {
				return err
			}
			if len(chunks) == 1 {
				if _, err := conn.Write(chunks[0].Data); err != nil {
					return err
				}
			} else {
				bufs = bufs[:0]
				for i := range chunks {
					bufs = append(bufs, chunks[i].Data)
				}
				if _, err := bufs.WriteTo(conn); err != nil {
					return err
				}
				clear(bufs[:cap(bufs)])
			}
			b.Release(chunks)
			clear(chunks)
		}
	}
	for {
		c, err := tx.Next(ctx)
		if err != nil {
			return err
		}
		if _, err := conn.Write(c.Data); err != nil {
			return err
		}
	}
}
