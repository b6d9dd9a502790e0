package stream

import (
	"context"
	"slices"
	"sync"

	"github.com/securestreams/ss/internal/event"
)

// rxOverhead is what one queued rx event costs against the budget besides
// its payload, so that zero-length chunks are bounded too.
const rxOverhead = 64

// StateBound is how many undelivered state events a stream's queue holds
// before the stream stops making progress: the actor starts no new attempt
// (and a proxied stream's link neither retries nor reads) until the
// application has read the queue down to StateBound/2. States are never
// dropped; the queue can exceed the bound only by the states of the attempt
// already running (docs/stream-states.md).
const StateBound = 64

// The event queue: a FIFO guarded by Stream.mu, drained into the user's
// channel by a pump goroutine that runs only while the FIFO is non-empty.
// States are never refused; payload waits for room (receive backpressure).
// Nothing is queued after DESTROYING, and the pump closes the channel right
// after delivering it.
//
// With Config.Deliver set, the events go to deliver instead of ch, one call
// at a time and in order: received payload is offered at once on the
// producer's goroutine, without the stream's lock, with wait false
// (deliver must not block; false refuses the event, which is then queued);
// everything else, and what was refused, comes from the pump with wait true
// (deliver may block until it has room, and must return once its consumer
// is gone, discarding). Payload taken by deliver does not count against
// the receive budget: the consumer bounds what it holds.
//
// Every field is guarded by Stream.mu. The queue is data plus a bound, so
// its slice has a producer side and a consumer side rather than one
// writer: events are appended by whoever emits (the actor; the sink for
// payload and for the reports below; on proxied streams Remote.Rx for
// payload and Remote.State / LinkEnded for reports, remotestate.go) and
// removed only by the pump (or deliverRxLocked handing payload over on its
// producer's goroutine, or, once Close gives up, abandonLocked).
//
// A state a transport reports (Sink.State) is not emitted by the transport:
// the sink appends a report, a placeholder that holds the state's place
// among the payload around it, and the actor decides it (decideLocked):
// it becomes the state event (with the actor's side effects) or is skipped.
// The pump never delivers past an undecided report, so states and payload
// keep the order the transport gave them while only the actor emits states.
type eventQueue struct {
	ch        chan event.Event
	deliver   func(ev event.Event, wait bool) bool // Config.Deliver; set before the stream starts
	items     []event.Event
	head      int
	off       int           // absolute index of items[0]: reports name their slot by it
	rxBytes   int           // payload + overhead queued or in the pump's hand
	space     chan struct{} // closed when rxBytes drops below the budget
	pumping   bool          // set by whoever starts the pump, cleared by the pump
	hold      bool          // the stream is being created: queue, do not deliver yet (cleared once, by release)
	final     bool          // DESTROYING queued (set once, by whoever queues it)
	abandoned bool          // Close gave up: drop everything, close the channel
	// told: a msgReport is on its way to the actor (set by the sink,
	// cleared by the actor as it decides), so a burst of reports costs
	// one message.
	told bool
	// tellRoom: the actor parked because states reached StateBound; the
	// pump tells it (msgGate) once they fall below StateBound/2. (Both
	// bools sit with the four above: Stream must stay within 696 bytes,
	// TestStreamSize.)
	tellRoom bool
	states   int // state events queued, not yet delivered
	// reps are the undecided reports in queue order: appended by the sink,
	// removed by the actor (decideLocked).
	reps  []report
	rhead int
	room  chan struct{} // closed when states fall below StateBound/2, for Remote.WaitRoom
	// pull is the stream's pull mode (recv.go), nil until the first Recv;
	// offer is the attempt's sink whose transport offers its read role
	// (sink.pr), nil when none does.
	pull  *pullState
	offer *sink
}

// chanRoom is how many events an HTTP client stream's channel holds
// besides the one a waiting reader takes: a transaction's tail (the body,
// its EOM, QOS_ACK_REMOTE, DISCONNECTED) is queued by the attempt's
// goroutine while the application handles CONNECTED, and taken without a
// pump goroutine or a goroutine switch per event (PERFORMANCE.md "h1/h2/h3
// GET rate", 2026-12-03). Events in the channel count as delivered: the
// receive budget and StateBound may be exceeded by that many events, and
// Close's discard (abandonLocked) leaves them to the reader. Other streams
// keep an unbuffered channel (an idle stream's memory).
const chanRoom = 4

// chanRoom is the capacity of the stream's event channel. s.traits is set.
func (s *Stream) chanRoom() int {
	if s.traits.Transactional && s.conn == nil && !s.st.Server && s.q.deliver == nil {
		return chanRoom
	}
	return 0
}

// Internal event kinds that never reach the application: a transport's
// report waiting for the actor's decision, and a slot the actor skipped.
const (
	kindReport event.Kind = 0xfe
	kindSkip   event.Kind = 0xff
)

// report is one undecided report: its slot (absolute index, see off), the
// attempt that made it, and for CONNECTED the transmit requests' mark as it
// was reported (txQueue.mark).
type report struct {
	slot     int
	gen      uint32
	afterCut bool       // made after the actor cut the attempt (sink.cut)
	cond     reportCond // remote streams: emitted only in some states (Remote.LinkEnded)
	cuts     uint32
	asks     uint64
}

// resetLocked drops the slice once everything in it was delivered or
// discarded, keeping slot numbers valid; an array of queueArray events goes
// back to queueArrays. s.mu is held.
func (q *eventQueue) resetLocked() {
	q.off += len(q.items)
	if cap(q.items) == queueArray {
		a := (*[queueArray]event.Event)(q.items[:queueArray])
		clear(a[:]) // no payload or error kept alive by the pool
		queueArrays.Put(a)
	}
	q.items = nil
	q.head = 0
}

// queueArray is the length of the arrays HTTP client streams queue their
// events in. A transaction read with Recv queues about seven (POLL,
// CONNECTING, CONNECTED, the body, EOM, QOS_ACK_REMOTE, DISCONNECTED);
// growing a new slice for them each time, from nil as resetLocked leaves
// it, cost 3.5 allocations and about 860 bytes per h2 GET (PERFORMANCE.md
// "h1/h2/h3 GET rate", 2026-12-03 h2pull). queueArrays recycles them
// between streams instead, so an idle stream still holds no array.
const queueArray = 8

var queueArrays = sync.Pool{New: func() any { return new([queueArray]event.Event) }}

// appendLocked queues ev at the end. An HTTP client stream (the only kind
// whose channel has room, chanRoom) starts an empty queue with an array
// from queueArrays; other streams grow theirs as before, since a stream
// with one event queued holds the whole array while it waits. s.mu is
// held.
func (q *eventQueue) appendLocked(ev event.Event) {
	if q.items == nil && cap(q.ch) > 0 {
		q.items = queueArrays.Get().(*[queueArray]event.Event)[:0]
	}
	q.items = append(q.items, ev)
}

// ready reports whether the pump has something it may deliver now: the
// head of the queue exists and is not an undecided report. s.mu is held.
func (q *eventQueue) ready() bool {
	return q.head < len(q.items) && q.items[q.head].Kind != kindReport
}

// pushLocked delivers ev at once if the reader is waiting, else queues it
// and starts the pump if needed; it reports whether ev was queued. s.mu is
// held.
func (s *Stream) pushLocked(ev event.Event) (queued bool) {
	q := &s.q
	if q.final {
		return false
	}
	if ev.Kind == event.StateEvent && ev.State == event.Destroying {
		q.final = true
	}
	if q.abandoned {
		if q.final {
			q.closeLocked()
		}
		return false
	}
	if q.deliver == nil && !q.pumping && !q.hold && q.head == len(q.items) && !q.pullOn() {
		// Fast path: the reader is already waiting on the channel; hand the
		// event over without a pump goroutine. Order holds: nothing is
		// queued and no pump is running.
		select {
		case q.ch <- ev:
			if q.final {
				close(q.ch)
			}
			return
		default:
		}
	}
	q.appendLocked(ev)
	if ev.Kind == event.StateEvent {
		q.states++
	}
	if !q.pumping && !q.hold && q.ready() {
		s.startPumpLocked()
	}
	return true
}

// startPumpLocked starts the pump, or, once Close has stopped waiting for
// readers, discards the queue at once. s.mu is held.
func (s *Stream) startPumpLocked() {
	select {
	case <-s.h.abandon:
		s.abandonLocked()
		return
	default:
	}
	if s.q.pullOn() {
		s.q.wakePullLocked() // Recv takes it (recv.go)
		return
	}
	if s.drainLocked() {
		return
	}
	s.q.pumping = true
	s.h.pumps.Add(1)
	go s.pump()
}

// drainLocked delivers queued events in order for as long as the reader is
// waiting on the channel (a non-blocking send, as pushLocked's fast path),
// doing the pump's bookkeeping for each, so that they cost no pump
// goroutine. It reports whether nothing deliverable is left (false: the
// pump must run). It leaves to the pump a state whose delivery must tell
// the actor (tellRoom), which the pump does outside the lock. The pump is
// not running and s.mu is held.
func (s *Stream) drainLocked() (done bool) {
	q := &s.q
	if q.deliver != nil || q.hold {
		return false
	}
	for {
		q.skipDiscardedLocked()
		if q.head == len(q.items) {
			q.resetLocked()
			return true
		}
		ev := q.items[q.head]
		if ev.Kind == kindReport {
			return true // the actor starts delivery again once it decides
		}
		if ev.Kind == event.StateEvent && q.tellRoom {
			return false
		}
		select {
		case q.ch <- ev:
		default:
			return false
		}
		q.items[q.head] = event.Event{}
		q.head++
		if ev.Kind == event.PayloadEvent {
			q.releaseRxLocked(len(ev.Payload)+rxOverhead, s.rxBudget())
			continue
		}
		q.states--
		if q.states < StateBound/2 {
			q.wakeRoomLocked()
		}
		if ev.State == event.Destroying {
			q.endLocked()
			return true
		}
	}
}

// abandonLocked discards what is queued and closes the channel if
// DESTROYING was queued (else when it is). s.mu is held.
func (s *Stream) abandonLocked() {
	q := &s.q
	q.abandoned = true
	q.resetLocked()
	clear(q.reps)
	q.reps, q.rhead = nil, 0
	q.states = 0
	q.wakeRoomLocked()
	q.pumping = false
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	if q.final {
		q.closeLocked()
	}
}

// release starts delivery once the stream has been created successfully.
func (s *Stream) release() {
	s.mu.Lock()
	q := &s.q
	q.hold = false
	if !q.pumping && q.ready() && !q.abandoned {
		s.startPumpLocked()
	}
	s.mu.Unlock()
}

// emitLocked checks and records a state change and queues its event. s.mu
// is held.
func (s *Stream) emitLocked(st event.State, ack uint32) { s.emitErrLocked(st, ack, nil) }

// emitErrLocked is emitLocked with the state's cause (Event.Err).
// Reports still undecided are decided first, so that the current state
// moves in the order the application will see the events.
func (s *Stream) emitErrLocked(st event.State, ack uint32, err error) {
	if s.q.final {
		return
	}
	if s.q.rhead < len(s.q.reps) {
		s.decideLocked()
	}
	s.checkLocked(st)
	s.pushLocked(event.Event{Kind: event.StateEvent, State: st, Ack: ack, Err: err})
}

// checkLocked checks the transition to st (counting an illegal one) and
// makes st the current state. s.mu is held.
func (s *Stream) checkLocked(st event.State) {
	if !Checked(st) {
		return
	}
	if !Legal(s.cur, st) {
		n := s.h.illegal.Add(1)
		s.h.Logger.Error("ss: illegal state transition", "stream", s.id, "streamtype", s.st.Name,
			"from", s.cur.String(), "to", st.String(), "count", n)
	}
	s.cur = st
}

// reportLocked queues a state a transport reported for the actor to
// decide; it reports whether the actor must be told (no msgReport is on
// its way yet). Nothing is queued after DESTROYING. s.mu is held.
func (s *Stream) reportLocked(r report, st event.State, ack uint32, err error) (tell bool) {
	q := &s.q
	if q.final || q.abandoned {
		return false
	}
	r.slot = q.off + len(q.items)
	q.reps = append(q.reps, r)
	q.appendLocked(event.Event{Kind: kindReport, State: st, Ack: ack, Err: err})
	tell = !q.told
	q.told = true
	return tell
}

// decideLocked decides every undecided report in queue order: the actor
// accepts it (acceptLocked: the state is checked, becomes current and will
// be delivered in its place) or skips it. Only the actor calls it: it runs
// as the actor handles any message and before the actor emits a state.
// s.mu is held.
func (s *Stream) decideLocked() {
	q := &s.q
	q.told = false
	for ; q.rhead < len(q.reps); q.rhead++ {
		r := q.reps[q.rhead]
		i := r.slot - q.off
		if i < q.head || i >= len(q.items) || q.items[i].Kind != kindReport {
			continue // discarded (Close gave up on the queue)
		}
		ev := &q.items[i]
		var ok bool
		if s.remote {
			ok = s.acceptRemoteLocked(r, ev)
		} else {
			ok = s.acceptLocked(r, ev.State)
		}
		if !ok {
			*ev = event.Event{Kind: kindSkip}
			continue
		}
		if ev.State == event.Connected && Checked(s.cur) && !Legal(s.cur, event.Connected) && Legal(s.cur, event.Connecting) {
			// CONNECTED after DISCONNECTED within one attempt: CONNECTING
			// first (docs/stream-states.md).
			s.checkLocked(event.Connecting)
			q.items = slices.Insert(q.items, i, event.Event{Kind: event.StateEvent, State: event.Connecting})
			q.states++
			for j := q.rhead + 1; j < len(q.reps); j++ {
				q.reps[j].slot++
			}
			ev = &q.items[i+1]
		}
		s.checkLocked(ev.State)
		ev.Kind = event.StateEvent
		q.states++
	}
	clear(q.reps)
	q.reps, q.rhead = q.reps[:0], 0
	if !q.pumping && !q.hold && !q.abandoned && q.ready() {
		s.startPumpLocked()
	}
}

func (s *Stream) emit(st event.State, ack uint32) { s.emitErr(st, ack, nil) }

func (s *Stream) emitErr(st event.State, ack uint32, err error) {
	s.mu.Lock()
	s.emitErrLocked(st, ack, err)
	s.mu.Unlock()
}

// emitCause emits st with its cause and, when cause is set, keeps it as the
// stream's last error (Stats.LastError), both under one lock.
func (s *Stream) emitCause(st event.State, ack uint32, cause error) {
	s.mu.Lock()
	if cause != nil {
		s.lastErr = cause
	}
	s.emitErrLocked(st, ack, cause)
	s.mu.Unlock()
}

// pushRx queues received payload, waiting while the queued payload exceeds
// the budget (with a nil ctx it does not wait: errRxFull, nothing taken).
// It returns an error when ctx is done or the stream is ending.
// k is the attempt's sink (nil on remote streams): once the actor has cut
// the attempt its payload is refused.
func (s *Stream) pushRx(ctx context.Context, data []byte, flags event.Flags, force bool, k *sink) error {
	cost := len(data) + rxOverhead
	budget := s.rxBudget()
	s.mu.Lock()
	q := &s.q
	for !force && q.rxBytes > 0 && q.rxBytes+cost > budget && !q.final && !q.abandoned {
		if ctx == nil {
			s.mu.Unlock()
			return errRxFull
		}
		if q.space == nil {
			q.space = make(chan struct{})
		}
		space := q.space
		s.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		s.mu.Lock()
	}
	if q.final || q.abandoned {
		s.mu.Unlock()
		return ErrDestroyed
	}
	if k != nil && k.cut && !force {
		err := k.cutErr // read under s.mu, which cutAttempt holds to write it
		s.mu.Unlock()
		return err
	}
	if flags&event.PerfJSON == 0 {
		s.rxBytes.Add(uint64(len(data)))
	}
	if q.deliver != nil && !q.pumping && !q.hold && q.head == len(q.items) && !q.final {
		return s.deliverRxLocked(event.Event{Kind: event.PayloadEvent, Payload: data, Flags: flags}, cost)
	}
	if s.pushLocked(event.Event{Kind: event.PayloadEvent, Payload: data, Flags: flags}) {
		q.rxBytes += cost
	}
	s.mu.Unlock()
	return nil
}

// deliverRxLocked offers payload to Config.Deliver on the calling
// goroutine, nothing being queued or in delivery: the caller delivers
// (pumping) while the lock is released, so that events pushed meanwhile
// queue behind it. Refused, the payload goes first in the queue, for the
// pump. s.mu is held on entry and released on return.
func (s *Stream) deliverRxLocked(ev event.Event, cost int) error {
	q := &s.q
	q.pumping = true
	s.mu.Unlock()
	taken := q.deliver(ev, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.abandoned {
		return nil
	}
	q.pumping = false
	if !taken {
		if q.head > 0 {
			q.head--
			q.items[q.head] = ev
		} else {
			q.items = append([]event.Event{ev}, q.items...)
			q.off-- // the queued events keep their slot numbers (reports)
		}
		q.rxBytes += cost
	}
	if q.ready() {
		s.startPumpLocked()
	}
	return nil
}

// pump delivers queued events to the channel in order and exits when the
// queue is empty (or after DESTROYING, closing the channel).
func (s *Stream) pump() {
	defer s.h.pumps.Done()
	q := &s.q
	release := 0
	budget := s.rxBudget()
	stateDone := false
	for {
		s.mu.Lock()
		wake := false
		if stateDone {
			stateDone = false
			q.states--
			if q.states < StateBound/2 {
				wake = q.tellRoom
				q.tellRoom = false
				q.wakeRoomLocked()
			}
		}
		if wake {
			// Tell the actor outside the lock (tell takes it).
			s.mu.Unlock()
			s.tell(msgGate{})
			s.mu.Lock()
		}
		if release > 0 {
			q.releaseRxLocked(release, budget)
			release = 0
		}
		if q.pullOn() {
			// Recv was called: it takes the queue from here (recv.go).
			q.pumping = false
			q.wakePullLocked()
			s.mu.Unlock()
			return
		}
		q.skipDiscardedLocked()
		if q.head == len(q.items) {
			// Drop the array: a stream whose queue is empty holds none
			// (most are idle; a busy one allocates again per burst, less
			// than the pump goroutine it starts).
			q.resetLocked()
			q.pumping = false
			s.mu.Unlock()
			return
		}
		if q.items[q.head].Kind == kindReport {
			// Undecided: the actor starts the pump again once it has
			// decided (decideLocked).
			q.pumping = false
			s.mu.Unlock()
			return
		}
		ev := q.items[q.head]
		q.items[q.head] = event.Event{}
		q.head++
		s.mu.Unlock()

		if q.deliver != nil {
			q.deliver(ev, true)
		} else {
			select {
			case q.ch <- ev:
			case <-s.h.abandon:
				s.mu.Lock()
				s.abandonLocked()
				s.mu.Unlock()
				return
			}
		}
		if ev.Kind == event.PayloadEvent {
			release = len(ev.Payload) + rxOverhead
			continue
		}
		stateDone = true
		if ev.State == event.Destroying {
			s.mu.Lock()
			q.pumping = false
			q.endLocked()
			s.mu.Unlock()
			return
		}
	}
}

// skipDiscardedLocked moves the head past discarded reports (kindSkip).
// s.mu is held.
func (q *eventQueue) skipDiscardedLocked() {
	for q.head < len(q.items) && q.items[q.head].Kind == kindSkip {
		q.items[q.head] = event.Event{}
		q.head++
	}
}

// releaseRxLocked returns n bytes of delivered payload to the receive
// budget and wakes a producer waiting for room once the queue is below
// budget. s.mu is held.
func (q *eventQueue) releaseRxLocked(n, budget int) {
	q.rxBytes -= n
	if q.space != nil && q.rxBytes < budget {
		close(q.space)
		q.space = nil
	}
}

// endLocked: DESTROYING has been delivered. The channel closes and the
// queue empties. s.mu is held.
func (q *eventQueue) endLocked() {
	q.closeLocked()
	q.resetLocked()
	q.states = 0
	q.wakeRoomLocked()
}

// closeLocked closes the event channel. A stream with Config.Deliver has
// none until Events is called (the channel only closes there, and an idle
// SS proxy onward stream would carry it for nothing: PERFORMANCE.md,
// "Memory per proxied stream"): it gets the shared closed one. s.mu is
// held.
func (q *eventQueue) closeLocked() {
	if q.ch == nil {
		q.ch = closedEvents
		return
	}
	close(q.ch)
}

// closedEvents is the Events channel of a Deliver stream that ended
// before anyone asked for it.
var closedEvents = func() chan event.Event {
	ch := make(chan event.Event)
	close(ch)
	return ch
}()

// wakeRoomLocked releases Remote.WaitRoom callers. s.mu is held.
func (q *eventQueue) wakeRoomLocked() {
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// eventsFull reports whether StateBound states wait for the application;
// when they do, the pump will tell the actor (msgGate) once the
// application has read them down to StateBound/2.
func (s *Stream) eventsFull() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	full := s.q.states >= StateBound && !s.q.final && !s.q.abandoned
	if full {
		s.q.tellRoom = true
	}
	return full
}
