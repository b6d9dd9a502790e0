package ws

import (
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// maxDirect bounds the data frames written from the sending goroutine (the
// direct path, transport.DirectTx): larger ones go through the queue and
// the writer goroutine.
const maxDirect = 16 << 10

// flushTailLocked writes the tail of a frame that a non-blocking write left
// behind, waiting for the socket. w.mu is held.
func (w *frameWriter) flushTailLocked() error {
	if len(w.tail) == 0 {
		return nil
	}
	_, err := w.conn.Write(w.tail)
	w.tail = nil
	return err
}

// tryData writes one data frame without waiting: what the socket does not
// take stays in w.tail (busy). It declines (ok false) frames larger than
// maxDirect, or when a tail is already pending.
func (w *frameWriter) tryData(rc syscall.RawConn, op byte, fin bool, data []byte) (ok, busy bool, err error) {
	if len(data) > maxDirect {
		return false, false, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return false, false, errCloseSent
	}
	if len(w.tail) > 0 {
		return false, false, nil
	}
	if w.deadlineSet {
		w.deadlineSet = false
		if err := w.conn.SetWriteDeadline(time.Time{}); err != nil {
			return false, false, err
		}
	}
	b := w.frame(op, fin, data)
	n, errno, werr := w.nb.do(rc, b)
	if werr == nil && errno != nil && errno != syscall.EAGAIN {
		werr = os.NewSyscallError("write", errno)
	}
	if werr != nil {
		return false, false, werr
	}
	n = max(n, 0)
	if n < len(b) {
		w.tail = append([]byte(nil), b[n:]...)
		return true, true, nil
	}
	return true, false, nil
}

// nonblockWrite is one non-blocking write through a syscall.RawConn. Its
// function is bound once and its argument and results are fields, so that
// a write allocates nothing (a closure capturing them escapes to the heap:
// three allocations per frame). Used under frameWriter.mu.
type nonblockWrite struct {
	p     []byte
	n     int
	errno error
	fn    func(fd uintptr) bool
}

// do writes what of p the socket takes now; errno is the write's error
// (EAGAIN when it took nothing), err the RawConn's.
func (nb *nonblockWrite) do(rc syscall.RawConn, p []byte) (n int, errno, err error) {
	if nb.fn == nil {
		nb.fn = nb.write
	}
	nb.p = p
	err = rc.Write(nb.fn)
	n, errno = nb.n, nb.errno
	nb.p, nb.errno = nil, nil
	return n, errno, err
}

func (nb *nonblockWrite) write(fd uintptr) bool {
	for {
		nb.n, nb.errno = syscall.Write(int(fd), nb.p)
		if nb.errno != syscall.EINTR {
			return true // never wait for writability here
		}
	}
}

// frame builds one whole frame in w.buf (masked for a client).
func (w *frameWriter) frame(op byte, fin bool, data []byte) []byte {
	var hdr [14]byte
	n := w.header(&hdr, op, fin, len(data))
	if cap(w.buf) < n+len(data) {
		w.buf = make([]byte, 0, max(n+len(data), 256))
	}
	b := append(w.buf[:0], hdr[:n]...)
	if w.client {
		b = b[:n+len(data)]
		maskCopy(b[n:], data, [4]byte(hdr[n-4:n]), 0)
	} else {
		b = append(b, data...)
	}
	return b
}

// direct is the transport.DirectWriter of one ws connection: a data chunk
// sent while nothing is queued is framed and written from the sending
// goroutine; the writer goroutine (writeQueued) runs only while frames wait
// for the socket. open is the message state of the frames written (the
// write role's holder alone touches it).
type direct struct {
	p    *pump
	rc   syscall.RawConn
	tx   transport.DirectTx
	op   byte // opText or opBinary
	open bool
	wg   sync.WaitGroup
}

// directFor returns the direct writer when the connection is a plain socket
// and a.Tx supports the direct path, else nil.
func directFor(p *pump, conn net.Conn, dataOp byte) *direct {
	tx, ok := p.a.Tx.(transport.DirectTx)
	if !ok {
		return nil
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &direct{p: p, rc: rc, tx: tx, op: dataOp}
}

// fail reports a write failure to RunConn's loop (as the writer goroutine
// would).
func (d *direct) fail(err error) {
	select {
	case d.p.writeDone <- err:
	default:
	}
}

// check applies the framing rule as pump.writer does: a refused chunk is
// logged and dropped. It returns the frame's opcode and fin.
func (d *direct) check(p []byte, flags event.Flags) (op byte, fin, ok bool) {
	if err := CheckFraming(d.open, flags); err != nil {
		d.p.log.Warn("ss: ws: tx chunk dropped", "stream", d.p.a.StreamID, "flags", flags, "len", len(p), "err", err)
		return 0, false, false
	}
	op = opContinuation
	if flags&event.SOM != 0 {
		op = d.op
	}
	return op, flags&event.EOM != 0, true
}

// TryWrite implements transport.DirectWriter.
func (d *direct) TryWrite(p []byte, flags event.Flags) (int, bool, error) {
	if len(p) > maxDirect {
		return 0, false, nil // the writer goroutine frames it
	}
	op, fin, ok := d.check(p, flags)
	if !ok {
		return len(p), false, nil
	}
	took, busy, err := d.p.w.tryData(d.rc, op, fin, p)
	if err != nil {
		d.fail(err)
		return 0, false, err
	}
	if !took {
		// Declined after all (a tail pending): queue it unchanged; the
		// message state is as before this chunk.
		return 0, false, nil
	}
	d.open = !fin
	return len(p), busy, nil
}

// StartWriter implements transport.DirectWriter.
func (d *direct) StartWriter() {
	d.wg.Add(1)
	go d.writeQueued()
}

// writeQueued finishes a frame's tail, then writes queued chunks until the
// queue is empty (the role goes back to the senders) or a write fails.
func (d *direct) writeQueued() {
	defer d.wg.Done()
	d.p.w.mu.Lock()
	err := d.p.w.flushTailLocked()
	d.p.w.mu.Unlock()
	if err != nil {
		d.fail(err)
		return
	}
	var chunks []transport.Chunk
	for {
		chunks = d.tx.TakeQueued(chunks[:0])
		if len(chunks) == 0 {
			return
		}
		for i := range chunks {
			op, fin, ok := d.check(chunks[i].Data, chunks[i].Flags)
			if !ok {
				continue
			}
			if err := d.p.w.writeData(op, fin, chunks[i].Data); err != nil {
				// The role stays taken: the connection is ending, and
				// SetDirect(nil) gives it back.
				d.fail(err)
				return
			}
			d.open = !fin
		}
		d.tx.Release(chunks)
		clear(chunks)
	}
}
