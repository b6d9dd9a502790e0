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
//
// It is data plus a budget. Every field is guarded by mu; the queue itself
// has a producer side and a consumer side, and everything else has exactly
// one writer, named beside it. What the application asked for is counted
// (asks, pushes, cuts) by the application's calls, and every reader keeps
// its own mark of how far it has accounted for them (the actor: askSeen,
// pushSeen, attemptCuts; the transport's writer: taken, hintUsed), so that
// no flag is set by one side and cleared by another.
type txQueue struct {
	s  *Stream
	mu sync.Mutex

	// The queue: chunks are appended by push (Send/Write), taken by the
	// transport's writer (Next, NextBatch, Remote.TakeTx), put back by the
	// actor (attemptEnded) and dropped by close.
	chunks []transport.Chunk
	head   int
	bytes  int           // payload bytes plus chunkOverhead per queued chunk
	space  chan struct{} // closed when bytes drop below the budget
	avail  chan struct{} // closed when a chunk arrives

	// Written by the application's calls only.
	asks       uint64 // RequestTx/RequestTxLen calls (request)
	pushes     uint64 // chunks queued (push)
	hint       int64  // RequestTxLen's length (request)
	hintAt     uint64 // asks when hint was given; 0 none (request)
	dropAsks   uint64 // asks when Disconnect was last called (disconnect)
	dropPushes uint64 // pushes likewise (disconnect)
	fired      uint64 // the armGen whose notification push/request sent (push, request)
	status     int    // Respond status (accepted HTTP streams) (respond)
	cuts       uint32 // Disconnect calls (disconnect)
	openGen    uint32 // the framingGen open was computed under (push)
	statusTxn  uint32 // txn when Respond was called (respond)
	open       bool   // a message is open, under framing framingGen (push)
	statusSet  bool   // Respond was called (respond)
	retain     bool   // set at creation: see sent below

	// Written by the transport's writer only (taken: by whoever holds the
	// write role, the writer or a direct sender, txdirect.go).
	taken    uint64 // asks when a chunk was last taken: a RequestTx is pending while asks > taken (popLocked, sendDirect)
	hintUsed uint64 // the hintAt it last applied to a chunk (popLocked)
	txn      uint32 // transactions started on an accepted stream (NewTransaction)

	// Written by the actor only (on remote streams, armed and armGen by
	// the driver, through Remote.ArmTx; the actor never arms them there).
	attemptCuts uint32                                   // cuts when the running attempt began
	armGen      uint64                                   // ... once per arming: it fires when armed && armGen > fired
	askSeen     uint64                                   // asks served by an attempt or dropped by Disconnect
	pushSeen    uint64                                   // pushes likewise
	framing     func(open bool, flags event.Flags) error // set at creation, then by setFraming (ws: docs/streams.md §11.6)
	framingGen  uint32                                   // setFraming calls (the actor at SERVER_UPGRADE)
	armed       bool                                     // the stream is idle: the next request or push tells the actor (msgTx) ...
	serving     bool                                     // the running attempt is CONNECTED on raw/ws/mqtt: a bare RequestTx is served at once

	closed bool // written once, by whoever ends the stream (the actor; endUnstarted; remoteActor.finish)
	// writing: the direct path's write role is held (txdirect.go).
	writing bool

	// retain: HTTP client streams keep the chunks an attempt consumed
	// (sent) until its transaction completes, so that a failed attempt
	// sends the whole body again (docs/streams.md §11.2.3). Set at
	// creation. sent is appended by popLocked and emptied by the actor
	// (attemptEnded).
	sent []transport.Chunk

	// The direct path (txdirect.go); writing sits with the bools above.
	dw transport.DirectWriter
}

var (
	_ transport.TxSource = (*txQueue)(nil)
	_ transport.ServerTx = (*txQueue)(nil)
)

// fireLocked tells the actor about a request or push when the stream is
// idle, once per arming. t.mu is held; it returns whether to tell (outside
// the lock).
func (t *txQueue) fireLocked() bool {
	if t.armed && t.armGen > t.fired {
		t.fired = t.armGen
		return true
	}
	return false
}

// push queues c (taking ownership of c.Data), waiting for room. A ctx
// already done queues nothing and returns its error.
func (t *txQueue) push(ctx context.Context, c transport.Chunk) error {
	_, err := t.pushWait(ctx, c, true)
	return err
}

// pushWait is push; without wait it queues nothing and returns false when
// the queue has no room for c.
func (t *txQueue) pushWait(ctx context.Context, c transport.Chunk, wait bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	budget := t.s.txBudget()
	t.mu.Lock()
	if t.framing != nil && !t.closed {
		// Refuse at once rather than after waiting for room (checked again
		// below: another writer may move the message state meanwhile).
		if err := t.framing(t.openLocked(), c.Flags); err != nil {
			t.mu.Unlock()
			return true, err
		}
	}
	for !t.closed && t.bytes > 0 && t.bytes+chunkCost(c) > budget {
		if t.space == nil {
			t.space = make(chan struct{})
		}
		space := t.space
		t.mu.Unlock()
		if !wait {
			return false, nil
		}
		select {
		case <-space:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		t.mu.Lock()
	}
	if t.closed {
		t.mu.Unlock()
		return true, t.s.gone()
	}
	if t.framing != nil {
		if err := t.framing(t.openLocked(), c.Flags); err != nil {
			t.mu.Unlock()
			return true, err
		}
		t.open, t.openGen = c.Flags&event.EOM == 0, t.framingGen
	}
	t.chunks = append(t.chunks, c)
	t.pushes++
	t.bytes += chunkCost(c)
	t.s.txBytes.Add(uint64(len(c.Data)))
	if t.avail != nil {
		close(t.avail)
		t.avail = nil
	}
	t.startWriterLocked()
	kick := t.fireLocked()
	t.mu.Unlock()
	if kick {
		t.s.tell(msgTx{})
	}
	return true, nil
}

// openLocked reports whether a message is open under the current framing
// (a new framing starts with none open). t.mu is held.
func (t *txQueue) openLocked() bool { return t.open && t.openGen == t.framingGen }

// request records RequestTx / RequestTxLen (n < 0: no length).
func (t *txQueue) request(n int64) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return t.s.gone()
	}
	t.asks++
	if n >= 0 {
		t.hint, t.hintAt = n, t.asks
	}
	kick := t.fireLocked()
	t.mu.Unlock()
	if kick {
		t.s.tell(msgTx{})
	}
	return nil
}

// lenHintLocked is the RequestTxLen length not yet applied to a chunk, -1
// none. t.mu is held.
func (t *txQueue) lenHintLocked() int64 {
	if t.hintAt > t.hintUsed {
		return t.hint
	}
	return -1
}

// pendingLocked reports whether a RequestTx not yet met by a chunk, or a
// chunk, waits. t.mu is held.
func (t *txQueue) pendingLocked() bool { return t.asks > t.taken || t.head < len(t.chunks) }

// setFraming installs a framing check from now on, with no message open
// (the actor, as it accepts SERVER_UPGRADE).
func (t *txQueue) setFraming(f func(open bool, flags event.Flags) error) {
	t.mu.Lock()
	t.framing = f
	t.framingGen++
	t.mu.Unlock()
}

// beginAttempt is called by the actor as an attempt starts: it disarms the
// idle notification; what was requested or queued so far is served by
// this attempt, later requests are counted for idle to find.
func (t *txQueue) beginAttempt() {
	t.mu.Lock()
	t.armed = false
	t.askSeen, t.pushSeen = t.asks, t.pushes
	t.attemptCuts = t.cuts
	t.serving = false
	t.mu.Unlock()
}

// mark is how far the application's requests had got when a transport
// reported CONNECTED (sink.StateErr takes it as it reports).
func (t *txQueue) mark() (asks uint64, cuts uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.asks, t.cuts
}

// connected is called by the actor as it accepts the attempt's CONNECTED,
// with the mark taken when the transport reported it: requests made until
// then are served by this connection (docs/streams.md §5.2), unless
// Disconnect was called since the attempt started. On raw, ws and mqtt
// (persistent) a bare RequestTx made while connected is served at once
// (there is nothing to wait for: data is pushed); on HTTP it asks for the
// next transaction.
func (t *txQueue) connected(asks uint64, cuts uint32, persistent bool) {
	t.mu.Lock()
	if cuts == t.attemptCuts {
		t.askSeen = max(t.askSeen, asks)
		t.serving = persistent
	}
	t.mu.Unlock()
}

// runEnded is called by the actor when the attempt's Run has returned,
// before DISCONNECTED is queued: requests made while a persistent
// connection served them are accounted for; a bare RequestTx asks for a
// new attempt again from now on.
func (t *txQueue) runEnded() {
	t.mu.Lock()
	if t.serving && t.cuts == t.attemptCuts {
		t.askSeen = t.asks
	}
	t.serving = false
	t.mu.Unlock()
}

// disconnect is called by Stream.Disconnect before it tells the actor:
// what was requested before it is dropped (the stream goes idle,
// docs/streams.md §5.6); what is requested after it starts a new attempt
// once the stream is idle, and the running attempt's CONNECTED serves
// nothing.
func (t *txQueue) disconnect() {
	t.mu.Lock()
	t.dropAsks, t.dropPushes = t.asks, t.pushes
	t.cuts++
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
	t.askSeen = max(t.askSeen, t.dropAsks)
	t.pushSeen = max(t.pushSeen, t.dropPushes)
	data := t.head < len(t.chunks)
	if !t.closed && (t.asks > t.askSeen || (data && (t.pushes > t.pushSeen || consumed))) {
		return true
	}
	t.armed = true
	t.armGen++
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
	t.taken = t.asks
	// RequestTxLen announces the next message's length: it is that
	// message's length even when Send gave one of its own, so that a Send
	// of another length is a mismatch the transport refuses (docs/streams.md
	// §11.5.3) rather than a stale hint for a later message.
	if c.Flags&event.SOM != 0 && t.hintAt > t.hintUsed {
		c.Len = t.hint
		t.hintUsed = t.hintAt
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
	return t.pendingLocked()
}

// LenHint implements transport.TxSource.
func (t *txQueue) LenHint() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lenHintLocked()
}

// Response implements transport.ServerTx.
func (t *txQueue) Response() transport.Response {
	t.mu.Lock()
	status := 0
	if t.statusSet && t.statusTxn == t.txn {
		status = t.status
		if status == 0 {
			status = 200
		}
	}
	t.mu.Unlock()
	md, extra := t.s.metadataSnapshot()
	return transport.Response{Status: status, Metadata: md, Extra: extra}
}

// NewTransaction implements transport.ServerTx.
func (t *txQueue) NewTransaction() {
	t.mu.Lock()
	t.txn++ // a Respond made for the previous transaction no longer applies
	t.mu.Unlock()
}

func (t *txQueue) respond(status int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.s.gone()
	}
	t.status, t.statusSet, t.statusTxn = status, true, t.txn
	return nil
}
