package stream

import (
	"context"
	"errors"
	"io"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// ErrRecvBusy is returned by Recv while another Recv on the same stream is
// under way: one Recv at a time.
var ErrRecvBusy = errors.New("ss: another Recv is under way on this stream")

// ErrRecvDeliver is returned by Recv on a stream whose events go to
// Config.Deliver.
var ErrRecvDeliver = errors.New("ss: Recv on a stream whose events go to Config.Deliver")

// pullState is a stream's pull mode (Recv), allocated by the first Recv;
// every field is guarded by Stream.mu. The read role the current
// connection offers (transport.PullOfferer) is kept apart, in the
// attempt's sink (sink.pr, eventQueue.offer), so that a stream that never
// calls Recv allocates nothing for it.
type pullState struct {
	// on: Recv was called once; the stream is in pull mode for good: no
	// pump is started, the events wait in the queue for Recv.
	on bool
	// busy: a Recv is under way.
	busy bool
	// over: DESTROYING was returned (or the channel closed): Recv returns
	// io.EOF from then on.
	over bool
	// wake holds a token when something may have become ready while Recv
	// waited (capacity 1, made when pull mode starts).
	wake chan struct{}
	// reading is the reader Recv is in (Read, s.mu released), nil when
	// none: the offer may be withdrawn meanwhile. interrupted: an event
	// arrived meanwhile and reading.Interrupt was called (Recv calls
	// Resume after the read).
	reading     transport.PullReader
	interrupted bool
}

// on reports whether the stream is in pull mode. s.mu is held.
func (q *eventQueue) pullOn() bool { return q.pull != nil && q.pull.on }

// wakePullLocked tells a Recv that something was queued: a token for a
// waiting one, an interrupt for one in the read. s.mu is held and the
// stream is in pull mode.
func (q *eventQueue) wakePullLocked() {
	p := q.pull
	select {
	case p.wake <- struct{}{}:
	default:
	}
	if p.reading != nil && !p.interrupted {
		p.interrupted = true
		p.reading.Interrupt()
	}
}

// OfferPull implements transport.PullOfferer: r is the attempt's read
// role (nil withdraws it). In pull mode it is taken at once.
func (k *sink) OfferPull(r transport.PullReader) {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	q := &s.q
	if r == nil {
		k.pr = nil
		if q.offer == k {
			q.offer = nil
		}
		return
	}
	if k.done.Load() || q.final || q.abandoned {
		return
	}
	k.pr, q.offer = r, k
	if q.pullOn() {
		r.Take()
		q.wakePullLocked() // a Recv waiting with no reader reads now
	}
}

// Recv returns the stream's next event, in the order Events would give it,
// waiting until there is one or ctx is done (ctx.Err(); no event is lost).
// The first call switches the stream to pull mode for good: no pump
// goroutine is started from then on, and the events wait in the queue for
// Recv (an event the pump already held is received from the channel).
// After DESTROYING was returned, Recv returns io.EOF; once the host's
// Close has given up on the queue, ErrClosed. One Recv at a time: another
// call meanwhile returns ErrRecvBusy.
//
// On a connection whose transport offers its read role (a plain raw or
// ws socket), Recv with nothing queued reads the socket itself on the
// caller's goroutine; in pull mode the socket is read only inside Recv, so
// a peer closing is seen at the next Recv and the receive budget is the
// application's pace.
func (s *Stream) Recv(ctx context.Context) (event.Event, error) {
	s.mu.Lock()
	q := &s.q
	if q.deliver != nil {
		s.mu.Unlock()
		return event.Event{}, ErrRecvDeliver
	}
	if q.pull == nil {
		q.pull = &pullState{}
	}
	p := q.pull
	if p.busy {
		s.mu.Unlock()
		return event.Event{}, ErrRecvBusy
	}
	if !p.on {
		p.on = true
		p.wake = make(chan struct{}, 1)
		if q.offer != nil {
			q.offer.pr.Take()
		}
	}
	p.busy = true
	ev, err := s.recvLocked(ctx, p)
	p.busy = false
	s.mu.Unlock()
	return ev, err
}

// recvLocked is Recv's loop. s.mu is held on entry and on return.
func (s *Stream) recvLocked(ctx context.Context, p *pullState) (event.Event, error) {
	q := &s.q
	for {
		if p.over {
			return event.Event{}, io.EOF
		}
		if q.pumping {
			// A pump started before pull mode still runs: it stops at its
			// next event (pump), which may be in its hand now.
			s.mu.Unlock()
			select {
			case ev, ok := <-q.ch:
				s.mu.Lock()
				if !ok || (ev.Kind == event.StateEvent && ev.State == event.Destroying) {
					p.over = true
				}
				if !ok {
					return event.Event{}, io.EOF
				}
				return ev, nil
			case <-p.wake:
			case <-ctx.Done():
				s.mu.Lock()
				return event.Event{}, ctx.Err()
			}
			s.mu.Lock()
			continue
		}
		if len(q.ch) > 0 {
			// Events the channel holds (chanRoom) from before pull mode
			// come first.
			select {
			case ev, ok := <-q.ch:
				if !ok || (ev.Kind == event.StateEvent && ev.State == event.Destroying) {
					p.over = true
				}
				if !ok {
					return event.Event{}, io.EOF
				}
				return ev, nil
			default:
			}
		}
		if ev, ok := s.popLocked(p); ok {
			return ev, nil
		}
		if q.abandoned {
			return event.Event{}, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return event.Event{}, err
		}
		if k := q.offer; k != nil && !q.hold {
			ev, ok, err := s.readLocked(ctx, p, k)
			if ok || err != nil {
				return ev, err
			}
			continue
		}
		s.mu.Unlock()
		select {
		case <-p.wake:
		case <-ctx.Done():
		case <-s.h.abandon:
			s.mu.Lock()
			if !q.abandoned {
				s.abandonLocked()
			}
			continue
		}
		s.mu.Lock()
	}
}

// popLocked takes the next deliverable event from the queue with the
// pump's bookkeeping (drainLocked's), telling the actor when it was
// waiting for room. s.mu is held (released and taken again to tell).
func (s *Stream) popLocked(p *pullState) (event.Event, bool) {
	q := &s.q
	if q.hold || q.abandoned {
		return event.Event{}, false
	}
	q.skipDiscardedLocked()
	if q.head == len(q.items) {
		if q.head > 0 {
			q.resetLocked()
		}
		return event.Event{}, false
	}
	ev := q.items[q.head]
	if ev.Kind == kindReport {
		return event.Event{}, false // the actor wakes Recv once it decides
	}
	q.items[q.head] = event.Event{}
	q.head++
	if ev.Kind == event.PayloadEvent {
		q.releaseRxLocked(len(ev.Payload)+rxOverhead, s.rxBudget())
		return ev, true
	}
	q.states--
	if q.states < StateBound/2 {
		q.wakeRoomLocked()
		if q.tellRoom {
			q.tellRoom = false
			s.mu.Unlock()
			s.tell(msgGate{})
			s.mu.Lock()
		}
	}
	if ev.State == event.Destroying {
		q.endLocked()
		p.over = true
	}
	return ev, true
}

// readLocked reads the connection on the caller's goroutine (the read
// role taken from the transport) and returns what it read as the next
// event, or ok false when the read was interrupted or the connection
// ended (the caller looks at the queue again). s.mu is
// held on entry and on return, released during the read.
func (s *Stream) readLocked(ctx context.Context, p *pullState, k *sink) (event.Event, bool, error) {
	q := &s.q
	rd := k.pr
	select {
	case <-rd.Ready():
	default:
		// The reader goroutine has not given up the role yet.
		s.mu.Unlock()
		select {
		case <-rd.Ready():
		case <-p.wake:
		case <-ctx.Done():
		}
		s.mu.Lock()
		return event.Event{}, false, nil
	}
	p.reading = rd
	s.mu.Unlock()
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, rd.Interrupt)
	}
	var data []byte
	var flags event.Flags // a framed reader's SOM/EOM (ws)
	var err error
	if fr, ok := rd.(transport.FramedPullReader); ok {
		data, flags, err = fr.ReadFramed()
	} else {
		data, err = rd.Read()
	}
	if stop != nil && !stop() {
		// The interrupt ran (or runs): clear it below.
		s.mu.Lock()
		p.interrupted = true
	} else {
		s.mu.Lock()
	}
	p.reading = nil
	if p.interrupted || errors.Is(err, transport.ErrInterrupted) {
		// An interrupt that landed after the read returned is cleared here
		// too; one that lands after this Resume costs one empty read.
		p.interrupted = false
		rd.Resume()
	}
	if err != nil && q.offer == k && !errors.Is(err, transport.ErrInterrupted) {
		// The connection ended: its Run returns, and the actor's states
		// follow in the queue.
		q.offer = nil
	}
	if (len(data) > 0 || flags != 0) && s.takeReadLocked(data, flags, k) && q.head == len(q.items) {
		return event.Event{Kind: event.PayloadEvent, Payload: data, Flags: flags}, true, nil
	}
	return event.Event{}, false, nil // the caller looks at the queue and ctx
}

// takeReadLocked accounts for payload Recv read itself, as pushRx does for
// the transport's reads, and queues it behind anything queued meanwhile;
// with nothing queued it is not queued but handed over at once (the
// caller checks). It reports false when the payload is dropped (the
// attempt was cut or the stream is ending). s.mu is held.
func (s *Stream) takeReadLocked(data []byte, flags event.Flags, k *sink) bool {
	q := &s.q
	if q.final || q.abandoned || k == nil || k.cut || k.done.Load() {
		return false
	}
	s.rxBytes.Add(uint64(len(data)))
	if q.head == len(q.items) && !q.hold {
		return true
	}
	if s.pushLocked(event.Event{Kind: event.PayloadEvent, Payload: data, Flags: flags}) {
		q.rxBytes += len(data) + rxOverhead
	}
	return true
}
