//go:build linux

package raw

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"

	"github.com/securestreams/ss/internal/bufpool"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/evloop"
	"github.com/securestreams/ss/internal/transport"
)

// errLoopEnded ends a parked connection whose event loop stopped (the SS
// proxy server that owned it was closed) while it was parked.
var errLoopEnded = errors.New("raw: the connection's event loop ended")

// park moves a connected plain socket (TCP or unix, no TLS) into the
// attempt's event loop (Attempt.Poller) when the stream allows it
// (transport.ParkedSink, the direct transmit path), and reports whether
// it did: Run then returns Result{Parked: true} and no goroutine stays
// with the connection. Received bytes are read inline on the loop's
// thread and handed to the stream without waiting (TryRx); writes go
// through the direct path (evloop.Conn.TryWrite). A goroutine runs only
// while the stream's receive budget is full (it waits in Rx, the socket
// unread: back-pressure) or while the socket refuses writes (the
// directWriter's writer), and at the end, which it reports with
// ParkedSink.End.
func park(ctx context.Context, a *transport.Attempt, conn net.Conn, sink transport.Sink, timing *transport.Timing) bool {
	ps, ok := sink.(transport.ParkedSink)
	if !ok || a.Poller == nil {
		return false
	}
	tx, ok := a.Tx.(transport.DirectTx)
	if !ok {
		return false
	}
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		// Plain sockets only: TLS, SOCKS wrappers and injected test
		// connections keep their own Read.
	default:
		return false
	}
	ec, err := a.Poller.Adopt(conn)
	if err != nil {
		return false // conn is untouched: the net path serves it
	}
	p := &parkedConn{c: ec, ctx: ctx, sink: ps}
	if a.Type.Perf {
		p.timing = timing
	}
	p.w = directWriter{conn: ec, try: ec.TryWrite, tx: tx}
	transport.AfterCut(ctx, sink, p.w.close)
	tx.SetDirect(&p.w)
	ec.SetNonblockingReads(true)
	ec.SetHandlers(p.readable, p.woken)
	if !ec.Park() {
		go p.finish(errLoopEnded) // cut already, or the loop has stopped
	}
	return true
}

// parkedConn is one connection parked in an event loop.
type parkedConn struct {
	c      *evloop.Conn
	ctx    context.Context // the attempt's: cut by the stream
	sink   transport.ParkedSink
	w      directWriter      // its tx is the stream's transmit queue (kept once: 256 B size class)
	timing *transport.Timing // kept for the perf report (Type.Perf), else nil
	// pending is payload read inline that the stream's receive budget did
	// not take: rxBehind's, handed over by readable.
	pending []byte
	ended   atomic.Bool
}

// readable is the loop's readable handler, inline on its thread: one read
// (the loop calls again while data is left, so other sockets get their
// turn), offered to the stream without waiting.
func (p *parkedConn) readable() {
	buf := bufpool.Get(readSize)
	n, err := p.c.Read(buf)
	if err == evloop.ErrWouldBlock {
		bufpool.Put(buf)
		return
	}
	if data := keepRead(buf, n); len(data) > 0 {
		taken, rerr := p.sink.TryRx(data, 0)
		switch {
		case rerr != nil:
			p.c.Unpark()
			go p.finish(rerr)
			return
		case !taken:
			// The application (the proxy's client) is behind: wait for it
			// on a goroutine, the socket unread meanwhile.
			p.c.Unpark()
			p.pending = data
			go p.rxBehind()
			return
		}
	}
	if err != nil {
		p.c.Unpark()
		if errors.Is(err, io.EOF) {
			err = nil
		}
		go p.finish(err)
	}
}

// rxBehind hands the pending payload over once the stream has room, then
// parks the connection again.
func (p *parkedConn) rxBehind() {
	data := p.pending
	p.pending = nil
	if err := p.sink.Rx(p.ctx, data, 0); err != nil {
		p.finish(err)
		return
	}
	if !p.c.Park() {
		p.finish(errLoopEnded) // closed (the cause is kept) or the loop stopped
	}
}

// woken: the parked connection was closed (the stream cut the attempt, a
// write failed) or its event loop stopped.
func (p *parkedConn) woken() { p.finish(errLoopEnded) }

// finish ends the connection once and reports it (ParkedSink.End): the
// cause is the stream's cut, else a write error, else rerr (nil: the peer
// closed).
func (p *parkedConn) finish(rerr error) {
	if p.ended.Swap(true) {
		return
	}
	p.w.tx.SetDirect(nil)
	p.w.close() // ends a writer waiting for room
	p.w.wg.Wait()
	err := rerr
	switch {
	case p.ctx.Err() != nil:
		err = context.Cause(p.ctx)
	case p.w.failed() != nil:
		err = p.w.failed()
	}
	if p.timing != nil {
		_ = p.sink.Rx(context.Background(), transport.PerfReport(p.timing, 0, -1), event.SOM|event.EOM|event.PerfJSON)
	}
	p.sink.End(transport.Result{Err: err})
}
