package stream

import (
	"context"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// The direct transmit path (transport.DirectTx): while a transport's
// DirectWriter is installed, nothing is queued and nobody is writing, Send
// and Write write from the caller's goroutine, without copying the bytes
// and without waking a writer goroutine. Fields (under t.mu): dw is the
// installed writer, written by SetDirect (the transport's Run goroutine);
// writing says who holds the write role: a sending goroutine inside
// TryWrite, or the writer goroutine started by StartWriter, which gives it
// back in TakeQueued. docs/performance.md.

var _ transport.DirectTx = (*txQueue)(nil)

// SetDirect implements transport.DirectTx.
func (t *txQueue) SetDirect(w transport.DirectWriter) {
	t.mu.Lock()
	t.dw = w
	t.writing = false
	if w != nil && t.head < len(t.chunks) && !t.closed {
		t.writing = true
		w.StartWriter()
	}
	t.mu.Unlock()
}

// TakeQueued implements transport.DirectTx.
func (t *txQueue) TakeQueued(dst []transport.Chunk) []transport.Chunk {
	t.mu.Lock()
	for t.dw != nil && t.head < len(t.chunks) {
		dst = append(dst, t.popLocked())
	}
	if len(dst) == 0 {
		t.writing = false
	}
	t.mu.Unlock()
	return dst
}

// sendDirect writes p through the installed DirectWriter when it can (see
// above) and reports whether it took p (err: the framing check refused it);
// otherwise the caller queues a copy.
func (t *txQueue) sendDirect(ctx context.Context, p []byte, flags event.Flags) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	t.mu.Lock()
	w := t.dw
	if w == nil || t.writing || t.head < len(t.chunks) || t.closed || t.retain || (t.armed && t.armGen > t.fired) {
		t.mu.Unlock()
		return false, nil
	}
	if t.framing != nil {
		if err := t.framing(t.openLocked(), flags); err != nil {
			t.mu.Unlock()
			return true, err
		}
		t.open, t.openGen = flags&event.EOM == 0, t.framingGen
	}
	t.writing = true
	t.pushes++
	t.taken = t.asks
	t.s.txBytes.Add(uint64(len(p)))
	t.mu.Unlock()

	n, busy, err := w.TryWrite(p, flags)

	t.mu.Lock()
	switch {
	case t.dw != w:
		// The connection ended meanwhile (SetDirect reset the role): what
		// was not written is lost with it, as a chunk its writer had taken.
	case err == nil && n < len(p) && !t.closed:
		// The socket is full (or the transport declined, n == 0): the rest
		// goes first, the writer continues.
		rest := transport.Chunk{Data: cloneTx(p[n:]), Flags: flags, Len: -1}
		if n > 0 {
			rest.Flags &^= event.SOM
		}
		if t.head > 0 {
			t.head--
			t.chunks[t.head] = rest
		} else {
			t.chunks = append(t.chunks, transport.Chunk{})
			copy(t.chunks[1:], t.chunks)
			t.chunks[0] = rest
		}
		t.bytes += chunkCost(rest)
		w.StartWriter()
	case err == nil && (busy || t.head < len(t.chunks)):
		// The transport still writes p's tail, or chunks were sent while
		// this write was under way: the writer goroutine takes over.
		w.StartWriter()
	default:
		t.writing = false
	}
	t.mu.Unlock()
	return true, nil
}

// startWriterLocked hands the write role to the writer goroutine after a
// chunk was queued while nobody held it. t.mu is held.
func (t *txQueue) startWriterLocked() {
	if t.dw != nil && !t.writing {
		t.writing = true
		t.dw.StartWriter()
	}
}
