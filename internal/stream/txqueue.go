package stream

import (
	"context"
	"sync"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// chunkOverhead is what a queued chunk costs beyond its payload (the Chunk
// itself, its slot in the slice, allocation rounding). It is charged against
// the byte budget so that a peer sending 1-byte payloads cannot queue tens of
// thousands of chunks within one budget (SECURITY.md).
const chunkOverhead = 64

// chunkCost is what c counts against the tx byte budget.
func chunkCost(c transport.Chunk) int { return len(c.Data) + chunkOverhead }

// txQueue is the stream's transmit queue; transports see it as their
// transport.TxSource (and, on accepted streams, transport.ServerTx). It is
// bounded by a byte budget: push waits while it is full.
type txQueue struct {
	s  *Stream
	mu sync.Mutex

	chunks  []transport.Chunk
	head    int
	bytes   int           // payload bytes plus chunkOverhead per queued chunk
	space   chan struct{} // closed when bytes drop below the budget
	avail   chan struct{} // closed when a chunk arrives
	want    bool          // RequestTx not yet served
	lenHint int64         // RequestTxLen for the next message, -1 none
	kick    bool          // the stream is idle: tell the actor about tx
	closed  bool

	// What arrived while kick was disarmed, so that no request is lost
	// between an attempt's start and the stream going idle again (the actor
	// checks them in goIdle; see idle).
	asked   bool // a RequestTx/RequestTxLen not yet served by an attempt
	pushed  bool // data queued since the last attempt started
	serving bool // connected (raw/ws/mqtt): a bare RequestTx is served at once
	cut     bool // Disconnect called: CONNECTED of this attempt serves nothing
	// framing validates each chunk at push time (ws: docs/streams.md §11.6);
	// open is the message state it is checked against.
	framing func(open bool, flags event.Flags) error
	open    bool

	// retain: HTTP client streams keep the chunks an attempt consumed
	// (sent) until its transaction completes, so that a failed attempt
	// sends the whole body again (docs/streams.md §11.2.3).
	retain bool
	sent   []transport.Chunk

	status    int // Respond status (accepted HTTP streams), 0 = not called
	statusSet bool

	// The direct path (txdirect.go).
	dw      transport.DirectWriter
	writing bool
}

var (
	_ transport.TxSource = (*txQueue)(nil)
	_ transport.ServerTx = (*txQueue)(nil)
)

// push queues c (taking ownership of c.Data), waiting for room. A ctx
// already done queues nothing and returns its error.
func (t *txQueue) push(ctx context.Context, c transport.Chunk) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	budget := t.s.txBudget()
	t.mu.Lock()
	if t.framing != nil && !t.closed {
		// Refuse at once rather than after waiting for room (checked again
		// below: another writer may move the message state meanwhile).
		if err := t.framing(t.open, c.Flags); err != nil {
			t.mu.Unlock()
			return err
		}
	}
	for !t.closed && t.bytes > 0 && t.bytes+chunkCost(c) > budget {
		if t.space == nil {
			t.space = make(chan struct{})
		}
		space := t.space
		t.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
		t.mu.Lock()
	}
	if t.closed {
		t.mu.Unlock()
		return t.s.gone()
	}
	if t.framing != nil {
		if err := t.framing(t.open, c.Flags); err != nil {
			t.mu.Unlock()
			return err
		}
		t.open = c.Flags&event.EOM == 0
	}
	t.chunks = append(t.chunks, c)
	t.pushed = true
	t.bytes += chunkCost(c)
	t.s.txBytes.Add(uint64(len(c.Data)))
	if t.avail != nil {
		close(t.avail)
		t.avail = nil
	}
	t.startWriterLocked()
	kick := t.kick
	t.kick = false
	t.mu.Unlock()
	if kick {
		t.s.tell(msgTx{})
	}
	return nil
}

// request records RequestTx / RequestTxLen (n < 0: no length).
func (t *txQueue) request(n int64) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return t.s.gone()
	}
	t.want = true
	if !t.serving {
		t.asked = true
	}
	if n >= 0 {
		t.lenHint = n
	}
	kick := t.kick
	t.kick = false
	t.mu.Unlock()
	if kick {
		t.s.tell(msgTx{})
	}
	return nil
}

// setFraming installs a framing check from now on, with no message open.
func (t *txQueue) setFraming(f func(open bool, flags event.Flags) error) {
	t.mu.Lock()
	t.framing, t.open = f, false
	t.mu.Unlock()
}

// beginAttempt disarms the idle notification as an attempt starts: what
// was requested or queued so far is served by this attempt; later requests
// are recorded (asked, pushed) for idle to find.
func (t *txQueue) beginAttempt() {
	t.mu.Lock()
	t.kick = false
	t.asked, t.pushed, t.serving, t.cut = false, false, false, false
	t.mu.Unlock()
}

// connected is called (by the attempt's sink, before CONNECTED is queued)
// when the attempt reaches CONNECTED: requests made so far are served by
// this connection (docs/streams.md §5.2), unless Disconnect was called since the
// attempt started. On raw, ws and mqtt a bare RequestTx made while connected
// is served at once (there is nothing to wait for: data is pushed); on HTTP
// it asks for the next transaction.
func (t *txQueue) connected(persistent bool) {
	t.mu.Lock()
	if !t.cut {
		t.asked = false
		t.serving = persistent
	}
	t.mu.Unlock()
}

// runEnded is called by the actor when the attempt's Run has returned,
// before DISCONNECTED is queued: a bare RequestTx asks for a new attempt
// again.
func (t *txQueue) runEnded() {
	t.mu.Lock()
	t.serving = false
	t.mu.Unlock()
}

// disconnect is called by Stream.Disconnect before it tells the actor:
// what was requested before it is dropped (the stream goes idle, docs/streams.md
// §5.6); what is requested after it starts a new attempt once the stream
// is idle.
func (t *txQueue) disconnect() {
	t.mu.Lock()
	t.asked, t.pushed, t.serving, t.cut = false, false, false, true
	// Nothing sent from now on goes to this connection by the direct path
	// (its writer goroutine, if running, takes nothing more).
	t.dw, t.writing = nil, false
	t.mu.Unlock()
}

// idle is called by the actor as the stream becomes idle. It reports
// whether a transmit request is waiting: a RequestTx not yet served, or
// data queued since the last attempt started (or, with consumed, data left
// after a completed HTTP transaction that took part of the queue: the next
// message). Otherwise it arms the idle notification, atomically with the
// check, so a request made at any moment is either seen here or tells the
// actor.
func (t *txQueue) idle(consumed bool) (start bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := t.head < len(t.chunks)
	if !t.closed && (t.asked || (data && (t.pushed || consumed))) {
		return true
	}
	t.kick = true
	return false
}

func (t *txQueue) close() {
	t.mu.Lock()
	t.closed = true
	t.chunks, t.head, t.bytes = nil, 0, 0
	if t.space != nil {
		close(t.space)
		t.space = nil
	}
	if t.avail != nil {
		close(t.avail)
		t.avail = nil
	}
	t.mu.Unlock()
}

// Next implements transport.TxSource.
func (t *txQueue) Next(ctx context.Context) (transport.Chunk, error) {
	t.mu.Lock()
	for t.head == len(t.chunks) {
		if t.closed {
			t.mu.Unlock()
			return transport.Chunk{}, ErrDestroyed
		}
		if t.avail == nil {
			t.avail = make(chan struct{})
		}
		avail := t.avail
		t.mu.Unlock()
		select {
		case <-avail:
		case <-ctx.Done():
			return transport.Chunk{}, context.Cause(ctx)
		}
		t.mu.Lock()
	}
	c := t.popLocked()
	t.mu.Unlock()
	return c, nil
}

func (t *txQueue) popLocked() transport.Chunk {
	c := t.chunks[t.head]
	t.chunks[t.head] = transport.Chunk{}
	t.head++
	if t.head == len(t.chunks) {
		t.head = 0
		if cap(t.chunks) > 64 {
			t.chunks = nil
		} else {
			t.chunks = t.chunks[:0]
		}
	}
	t.bytes -= chunkCost(c)
	if t.space != nil && t.bytes < t.s.txBudget() {
		close(t.space)
		t.space = nil
	}
	t.want = false
	if c.Flags&event.SOM != 0 && c.Len < 0 && t.lenHint >= 0 {
		c.Len = t.lenHint
		t.lenHint = -1
	}
	if t.retain {
		t.sent = append(t.sent, c)
	}
	return c
}

// attemptEnded is called by the actor when an attempt is over: a completed
// transaction forgets the chunks it consumed; otherwise they go back to the
// front of the queue for the next attempt.
// It reports whether the attempt consumed any chunk.
func (t *txQueue) attemptEnded(completed bool) (consumed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.sent) == 0 {
		return false
	}
	if completed || t.closed {
		clear(t.sent)
		t.sent = t.sent[:0]
		return true
	}
	rest := t.chunks[t.head:]
	chunks := make([]transport.Chunk, 0, len(t.sent)+len(rest))
	chunks = append(append(chunks, t.sent...), rest...)
	for _, c := range t.sent {
		t.bytes += chunkCost(c)
	}
	t.chunks, t.head = chunks, 0
	t.sent = nil
	return true
}

// NextBatch is Next for writers that can send several chunks at once: it
// waits for at least one chunk and appends every queued chunk to dst.
func (t *txQueue) NextBatch(ctx context.Context, dst []transport.Chunk) ([]transport.Chunk, error) {
	c, err := t.Next(ctx)
	if err != nil {
		return dst, err
	}
	dst = append(dst, c)
	t.mu.Lock()
	for t.head < len(t.chunks) {
		dst = append(dst, t.popLocked())
	}
	t.mu.Unlock()
	return dst, nil
}

// Release hands back chunks a transport has completely written: their
// buffers are reused by later Send/Write calls. Transports that keep no
// reference to a chunk's Data after writing it may call it (optional; the
// raw transport does).
func (t *txQueue) Release(chunks []transport.Chunk) {
	for i := range chunks {
		releaseTx(chunks[i].Data)
	}
}

// Pending implements transport.TxSource.
func (t *txQueue) Pending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.want || t.head < len(t.chunks)
}

// LenHint implements transport.TxSource.
func (t *txQueue) LenHint() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lenHint
}

// Response implements transport.ServerTx.
func (t *txQueue) Response() transport.Response {
	t.mu.Lock()
	status := t.status
	if t.statusSet && status == 0 {
		status = 200
	}
	t.mu.Unlock()
	md, extra := t.s.metadataSnapshot()
	return transport.Response{Status: status, Metadata: md, Extra: extra}
}

// NewTransaction implements transport.ServerTx.
func (t *txQueue) NewTransaction() {
	t.mu.Lock()
	t.status, t.statusSet = 0, false
	t.mu.Unlock()
}

func (t *txQueue) respond(status int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.s.gone()
	}
	t.status, t.statusSet = status, true
	return nil
}
