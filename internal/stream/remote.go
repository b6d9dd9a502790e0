package stream

import (
	"context"
	"log/slog"
	"time"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// RemoteDriver runs the connection lifecycle of a remote stream: a stream
// whose states, received payload and metadata come from elsewhere (an SS
// proxy link, docs/wire.md) instead of local attempts. The stream keeps its
// ordinary event queue (order, receive backpressure, CREATING once,
// DESTROYING last, transition checking) and transmit queue; the driver
// reports what happens through the Remote handed to Start and learns about
// the application's requests through the other methods, which are called
// from the stream's actor and must not block.
type RemoteDriver interface {
	// Start is called once, before any other method, with the stream's
	// handle.
	Start(r *Remote)
	// Tx: the application queued data or asked for a transmit opportunity
	// (Send, Write, RequestTx, RequestTxLen). The notification is one-shot:
	// the driver re-arms it with Remote.ArmTx once it has looked at the
	// transmit queue.
	Tx()
	// Connect: the application called Connect.
	Connect()
	// Disconnect: the application called Disconnect.
	Disconnect()
	// StartTimeout: the application armed the stream timeout: d > 0, or 0
	// for the streamtype's timeout_ms as the far end knows it (docs/wire.md
	// §3.7).
	StartTimeout(d time.Duration)
	// CancelTimeout: the application cancelled the stream timeout.
	CancelTimeout()
	// Close: the stream is being destroyed. The driver stops (closing its
	// link); later calls it makes on the Remote are ignored. It must not
	// block.
	Close()
}

// Remote is a remote stream as its RemoteDriver sees it. Its methods are safe
// from any goroutine.
type Remote struct {
	s     *Stream
	start time.Time
}

// NewRemote creates a remote stream driven by d. Like New it queues
// CREATING at once, so that it is the stream's first event whatever the
// driver reports first (UPSTREAM_LINK_RETRY while a proxy cannot be
// reached); a CREATING the driver reports is ignored. cfg.Protocol and
// cfg.Conn are ignored; cfg.Metadata is not applied (the driver owns
// metadata); cfg.Framing checks tx chunks as for local streams.
func NewRemote(h *Host, cfg Config, d RemoteDriver) (*Stream, error) {
	s := &Stream{h: h, pol: cfg.Policy, st: cfg.Type, rare: newRareConfig(Config{OnEnd: cfg.OnEnd}), remote: true,
		traits: &noTraits} // a remote stream runs no attempts: its traits are the far end's
	s.id = h.nextID.Add(1)
	s.tx.s = s
	s.tx.armed, s.tx.armGen = true, 1
	s.tx.framing = cfg.Framing
	s.q.ch = make(chan event.Event)
	if n := len(s.st.Metadata); n > 0 {
		s.md = make([]mdSlot, n)
	}
	if err := h.add(s); err != nil {
		return nil, err
	}
	s.emit(event.Creating, 0)
	r := &Remote{s: s, start: time.Now()}
	ra := &remoteActor{s: s, d: d}
	pid, err := h.Actors.Spawn(actor.PropsFromReceiver(ra), "ssr-")
	if err != nil {
		s.mu.Lock()
		s.q.final = true
		s.q.abandoned = true
		s.mu.Unlock()
		h.remove(s)
		return nil, err
	}
	s.mu.Lock()
	s.pid = pid
	lateDestroy := s.destroyTold
	s.mu.Unlock()
	d.Start(r)
	if lateDestroy {
		h.Actors.Tell(pid, msgDestroy{})
	}
	return s, nil
}

// remoteActor is the actor of a remote stream: it turns the application's
// requests into driver calls and ends the stream.
type remoteActor struct {
	s    *Stream
	d    RemoteDriver
	self *actor.PID
	done bool
}

func (ra *remoteActor) Receive(c actor.Context) {
	// The driver's reports happened before whatever this message asks:
	// decide them first (as the local actor's handle does).
	ra.s.mu.Lock()
	if ra.s.q.rhead < len(ra.s.q.reps) {
		ra.s.decideLocked()
	}
	ra.s.mu.Unlock()
	switch m := c.Message().(type) {
	case *actor.Started:
		ra.self = c.Self()
	case msgReport:
		// Decided above.
	case msgTx:
		if !ra.done {
			ra.d.Tx()
		}
	case msgConnect:
		if !ra.done {
			ra.d.Connect()
		}
	case msgDisconnect:
		if !ra.done {
			ra.d.Disconnect()
		}
	case msgStartTimeout:
		if !ra.done {
			ra.d.StartTimeout(m.d)
		}
	case msgCancelTimeout:
		if !ra.done {
			ra.d.CancelTimeout()
		}
	case msgDestroy:
		if !ra.done {
			ra.finish()
			ra.s.h.Actors.Stop(ra.self)
		}
	case *actor.Stopped:
		if !ra.done {
			ra.finish()
		}
		ra.s.h.Actors.Forget(c.Self())
		ra.s.h.remove(ra.s)
	}
}

// finish stops the driver and queues DISCONNECTED (when CONNECTED had been
// delivered and not ended) and DESTROYING.
func (ra *remoteActor) finish() {
	ra.done = true
	s := ra.s
	ra.d.Close()
	s.tx.close()
	s.h.detach(s) // before DESTROYING can be delivered
	s.mu.Lock()
	if s.q.rhead < len(s.q.reps) {
		s.decideLocked() // the reports made before Destroy, so remoteUp is current
	}
	s.endLocked(s.remoteUp)
	s.mu.Unlock()
	if onEnd := s.cfg().onEnd; onEnd != nil {
		onEnd(s)
	}
}

// Stream returns the stream.
func (r *Remote) Stream() *Stream { return r.s }

// SetRxBudget bounds the received payload queued for the application to n
// bytes from now on (n > 0): the proxy's client_buflen for the streamtype,
// from CREATE_RESULT (docs/wire.md §4.1).
func (r *Remote) SetRxBudget(n int) {
	if n > 0 {
		r.s.rxBudSet.Store(int64(n))
	}
}

// Logger returns the stream's logger (never nil).
func (r *Remote) Logger() *slog.Logger { return r.s.h.Logger }

// Since returns the time since the stream was created (UPSTREAM_LINK_RETRY's
// ack is its milliseconds).
func (r *Remote) Since() time.Duration { return time.Since(r.start) }

// WaitRoom waits while StateBound states wait for the application (or
// until ctx is done, returning its error). A driver calls it before
// anything that produces states without the application asking (a link
// retry, reading the next frame), so that a stream nobody reads stops
// making progress instead of growing its queue.
func (r *Remote) WaitRoom(ctx context.Context) error {
	s := r.s
	for {
		s.mu.Lock()
		q := &s.q
		// Undecided reports count: they become states once the actor
		// decides them.
		if q.states+len(q.reps)-q.rhead < StateBound || q.final || q.abandoned {
			s.mu.Unlock()
			return nil
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Rx queues received payload; it blocks while the application's queue is
// over its budget (receive backpressure) and fails when ctx is done or the
// stream is ending. data is retained.
func (r *Remote) Rx(ctx context.Context, data []byte, flags event.Flags) error {
	return r.s.pushRx(ctx, data, flags, flags&event.PerfJSON != 0, nil)
}

// TakeTx appends every chunk queued for transmission to dst without
// waiting, releasing their room in the transmit queue.
func (r *Remote) TakeTx(dst []transport.Chunk) []transport.Chunk {
	t := &r.s.tx
	t.mu.Lock()
	for t.head < len(t.chunks) {
		dst = append(dst, t.popLocked())
	}
	t.mu.Unlock()
	return dst
}

// PeekTx describes the transmit queue: the RequestTxLen hint (-1 none),
// whether a transmit request or data is pending, and the length hint
// carried by the first queued chunk when it starts a message (-1 none).
func (r *Remote) PeekTx() (lenHint int64, pending bool, headLen int64) {
	t := &r.s.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	headLen = -1
	if t.head < len(t.chunks) {
		c := t.chunks[t.head]
		if c.Flags&event.SOM != 0 && c.Len >= 0 {
			headLen = c.Len
		}
	}
	return t.lenHintLocked(), t.pendingLocked(), headLen
}

// ArmTx re-arms the one-shot Tx notification and reports whether chunks are
// queued (they arrived before the notification was armed).
func (r *Remote) ArmTx() bool {
	t := &r.s.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.armed = true
	t.armGen++
	return t.head < len(t.chunks)
}

// Go runs f in a goroutine that the runtime's Close waits for.
func (r *Remote) Go(f func()) {
	r.s.h.wg.Add(1)
	go func() {
		defer r.s.h.wg.Done()
		f()
	}()
}

// SetRideshare records the rideshare streamtype of the data being received
// (Stream.Rideshare).
func (r *Remote) SetRideshare(name string) {
	r.s.mu.Lock()
	r.s.rideshare = name
	r.s.mu.Unlock()
}

// NextTx waits for at least one queued chunk (or ctx) and appends every
// queued chunk to dst, releasing their room in the transmit queue.
func (r *Remote) NextTx(ctx context.Context, dst []transport.Chunk) ([]transport.Chunk, error) {
	return r.s.tx.NextBatch(ctx, dst)
}

// ReleaseTx hands back chunks the driver has completely written, so that
// their buffers can be reused by later Send/Write calls (when the transmit
// queue pools its buffers). The driver must not touch them afterwards.
func (r *Remote) ReleaseTx(chunks []transport.Chunk) {
	if rel, ok := any(&r.s.tx).(interface{ Release([]transport.Chunk) }); ok {
		rel.Release(chunks)
	}
}
