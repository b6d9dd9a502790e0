package stream

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// phase is where the stream is in its lifecycle (actor-owned).
type phase uint8

const (
	idle       phase = iota // no attempt, no connection, no retry pending
	attempting              // Run in progress, not yet CONNECTED
	connected               // Run in progress, CONNECTED
	retryWait               // retry timer armed
	gated                   // an attempt is due but a Gate is closed
	ending                  // DESTROYING queued
)

// Timer kinds.
const (
	tRetry = iota
	tTimeout
	tValidity
	nTimers
)

// actorState is the stream's lifecycle: attempts, retry, connect and
// disconnect requests, timeouts, which connection is current. Every field
// is written only by the stream's actor goroutine; everything else asks
// by message (docs/stream-states.md).
type actorState struct {
	phase        phase
	failures     uint16
	gen          uint32 // attempt generation
	self         *actor.PID
	cancel       context.CancelCauseFunc
	sink         *sink
	stopping     bool // Disconnect: the running attempt was cancelled
	destroy      bool // Destroy requested
	connectAfter bool // Connect while stopping
	txAfter      bool // tx requested while stopping
	timers       [nTimers]*time.Timer
	timerGen     [nTimers]uint32
	validPing    bool          // validity: waiting for the answer to a ping
	pingAt       int64         // UnixNano of the last ping
	gatePoll     bool          // gated: the parked attempt emits POLL
	gateState    event.State   // gated: the gate state last emitted while parked
	timeout      time.Duration // the armed stream timeout (for TIMEOUT's Err)
	gateStops    []func()
	up           bool  // the running attempt's CONNECTED was accepted, its DISCONNECTED not yet emitted
	connAt       int64 // UnixNano of that CONNECTED (validity counts from it)
}

// Messages to the actor.
type (
	msgConnect       struct{}
	msgDisconnect    struct{}
	msgDestroy       struct{}
	msgTx            struct{}
	msgStartTimeout  struct{ d time.Duration }
	msgCancelTimeout struct{}
	msgConfirmed     struct{} // validity confirmed while a keep-alive was outstanding
	msgTimer         struct {
		kind uint8
		gen  uint32
	}
	msgRunDone struct {
		gen uint32
		at  int64 // UnixNano when the attempt ended (the health time, resetHealthy)
		res transport.Result
	}
)

// Receive is the stream actor's behaviour.
func (s *Stream) Receive(c actor.Context) {
	switch c.Message().(type) {
	case *actor.Started:
		if s.a != nil {
			return // restarted by a supervisor: the stream keeps its state
		}
		s.a = &actorState{self: c.Self()}
		s.mu.Lock()
		if s.ended { // the runtime closed before the Props were spawned
			s.mu.Unlock()
			s.a.phase = ending
			c.Stop(c.Self())
			return
		}
		s.pid = s.a.self // before New has stored it: the attempt's sink needs it
		early := s.early
		s.early = nil
		s.mu.Unlock()
		s.watchGates()
		s.started()
		// Requests made before the actor existed (Props spawned later).
		for _, m := range early {
			s.handle(m)
		}
	case *actor.Restarting:
		// A supervisor restarts the actor (docs/supervision.md): reconnect.
		s.handle(msgRestart{})
	case *actor.Stopped:
		// Stopped without Destroy (actor system shutdown, or a supervisor):
		// end cleanly so the channel is still closed.
		if s.a.phase != ending {
			s.a.destroy = true
			if s.a.cancel != nil {
				s.cutAttempt(ErrDestroyed)
			}
			s.finishEvents()
		}
		s.h.Actors.Forget(c.Self())
		s.h.remove(s)
	default:
		s.handle(c.Message())
	}
}

// handle processes one of the stream's own messages. Reports the
// transports queued (msgReport or not) are decided first: they happened
// before whatever this message asks.
func (s *Stream) handle(msg any) {
	if s.a.phase == ending {
		return // DESTROYING is queued: late messages change nothing
	}
	s.mu.Lock()
	if s.q.rhead < len(s.q.reps) {
		s.decideLocked()
	}
	s.mu.Unlock()
	switch m := msg.(type) {
	case msgTx:
		s.onTx()
	case msgConnect:
		s.onConnect()
	case msgDisconnect:
		s.onDisconnect()
	case msgDestroy:
		s.onDestroy()
	case msgStartTimeout:
		s.a.timeout = m.d
		s.armTimer(tTimeout, m.d)
	case msgCancelTimeout:
		s.stopTimer(tTimeout)
	case msgConfirmed:
		s.onPong()
	case msgRestart:
		s.onRestart()
	case msgGate:
		s.onGate()
	case msgTimer:
		if m.gen == s.a.timerGen[m.kind] && s.a.timers[m.kind] != nil {
			s.a.timers[m.kind] = nil
			s.onTimer(int(m.kind))
		}
	case msgReport:
		// Decided above.
	case msgRunDone:
		if m.gen == s.a.gen {
			s.onRunDone(m.at, m.res)
		}
	}
}

func (s *Stream) started() {
	switch {
	case s.conn != nil:
		// Accepted server stream: CONNECTING at accept, then serve.
		s.startAttempt(false)
	case s.st.Server:
		// A listening streamtype never connects.
	case s.st.NailedUp:
		s.attempt(false)
	}
}

// onTx: data or RequestTx arrived while the stream was idle.
func (s *Stream) onTx() {
	switch {
	case s.a.stopping:
		s.a.txAfter = true
	case s.a.phase == idle && !s.st.Server:
		s.attempt(true)
	}
}

func (s *Stream) onConnect() {
	defer func() { s.failures.Store(uint32(s.a.failures)) }()
	if s.st.Server || s.conn != nil {
		return
	}
	switch {
	case s.a.stopping:
		s.a.connectAfter = true
	case s.a.phase == idle || s.a.phase == retryWait:
		s.stopTimer(tRetry)
		s.a.failures = 0
		s.attempt(false)
	case s.a.phase == gated:
		s.a.failures = 0
		s.a.gatePoll = false
		s.onGate()
	default:
		// An attempt is running or the stream is connected: no new attempt,
		// but the counter is reset (docs/streams.md §6.3 rule 1). This also keeps
		// a Connect that races with the retry timer (the timer's attempt
		// started first) from losing its reset.
		s.a.failures = 0
	}
}

func (s *Stream) onDisconnect() {
	switch s.a.phase {
	case attempting, connected:
		if !s.a.stopping {
			s.a.stopping = true
			s.a.connectAfter, s.a.txAfter = false, false
			s.cutAttempt(ErrDisconnect)
		}
	case retryWait:
		s.stopTimer(tRetry)
		s.goIdle()
	case gated:
		s.goIdle()
	}
}

func (s *Stream) onDestroy() {
	if s.a.destroy || s.a.phase == ending {
		return
	}
	s.a.destroy = true
	s.tx.close()
	for k := range s.a.timers {
		s.stopTimer(k)
	}
	if s.a.cancel != nil {
		s.cutAttempt(ErrDestroyed)
		return // finish when Run has returned
	}
	s.finish()
}

// finish queues DISCONNECTED (if a connection was up) and DESTROYING, and
// stops the actor.
func (s *Stream) finish() {
	pid := s.finishEvents()
	switch {
	case s.own:
		s.h.remove(s) // what the actor's Stopped does (mailbox.go)
	case pid != nil:
		s.h.Actors.Stop(pid)
	}
}

func (s *Stream) finishEvents() *actor.PID {
	s.a.phase = ending
	s.unwatchGates()
	s.tx.close()
	for k := range s.a.timers {
		s.stopTimer(k)
	}
	s.h.detach(s) // no longer live for Streams: before DESTROYING can be delivered
	s.mu.Lock()
	s.endLocked(s.a.up)
	s.a.up = false
	s.upGen = 0
	pid := s.a.self
	s.mu.Unlock()
	if onEnd := s.cfg().onEnd; onEnd != nil {
		onEnd(s)
	}
	return pid
}

// startAttempt begins a connection attempt: POLL (when poll and the current
// state is not POLL already), CONNECTING, then Run in its own goroutine.
func (s *Stream) startAttempt(poll bool) {
	s.tx.beginAttempt()
	s.attempts.Add(1)
	s.a.gen++
	s.a.phase = attempting
	s.mu.Lock()
	if poll && s.cur != event.Poll && Legal(s.cur, event.Poll) {
		s.emitLocked(event.Poll, 0)
	}
	s.emitLocked(event.Connecting, 0)
	s.a.up = false
	md, extra := s.metadataSnapshotLocked() // the application's values (mdSlot)
	s.mu.Unlock()
	a := &transport.Attempt{Policy: s.pol, Type: s.st, Metadata: md, Extra: extra, Tx: &s.tx, Env: s.h.Env, StreamID: s.id, Poller: s.cfg().poller}
	ctx, cancel := context.WithCancelCause(context.Background())
	k := &sink{s: s, gen: s.a.gen, cancel: cancel}
	s.a.cancel, s.a.sink = cancel, k
	s.h.wg.Add(1) // until k.End
	s.h.runners.run(func() {
		var res transport.Result
		if s.conn != nil {
			res = s.conn.Serve(ctx, a, k)
		} else if s.proto != nil {
			res = s.proto.Run(ctx, a, k)
		} else {
			res = transport.Result{Err: errors.New("ss: no transport for protocol " + s.st.Protocol.String())}
		}
		if !res.Parked { // else the parked connection calls End at its end
			k.End(res)
		}
	})
}

// cutAttempt ends the running attempt on the stream's initiative: its
// context is cancelled with cause; from now on its payload is refused and
// a CONNECTED it reports is ignored (sink.cut, acceptLocked).
func (s *Stream) cutAttempt(cause error) {
	var onCut func()
	if k := s.a.sink; k != nil {
		s.mu.Lock()
		k.cut, k.cutErr = true, cause
		onCut, k.onCut = k.onCut, nil
		s.mu.Unlock()
	}
	s.a.cancel(cause)
	if onCut != nil {
		s.runCut(onCut) // the transport's transport.AfterCut (cuthook.go)
	}
}

// acceptLocked decides a state the running attempt's transport reported
// (decideLocked): it reports whether the state is emitted, and applies
// what it means for the lifecycle. A report of an attempt that has ended
// (or is not the current one) and a second CONNECTED are skipped. s.mu is
// held; only the actor calls it.
func (s *Stream) acceptLocked(r report, st event.State) bool {
	if r.gen != s.a.gen || s.a.cancel == nil || s.a.phase == ending {
		return false
	}
	if r.afterCut && (st == event.Connected || !s.a.up) {
		// Reported after the stream ended the attempt: no new connection,
		// and nothing about one the application never saw.
		return false
	}
	switch st {
	case event.Connected:
		if s.a.up {
			return false
		}
		s.a.up = true
		s.upGen = r.gen
		s.a.connAt = nowNano()
		if s.conn == nil {
			// Before CONNECTED can be delivered: a request made after the
			// application sees it is not mistaken for one this connection
			// serves.
			s.tx.connected(r.asks, r.cuts, !s.traits.Transactional)
		}
		if s.a.phase == attempting {
			s.a.phase = connected
			if !s.a.stopping && !s.a.destroy {
				s.armValidity()
				s.armHealthy()
			}
		}
	case event.ServerUpgrade:
		if f := s.cfg().upgradeFraming; f != nil {
			// Before SERVER_UPGRADE can be delivered: the application's
			// next chunk is checked as a ws frame.
			s.tx.setFraming(f)
		}
	case event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal:
		// A transaction or publish completed (docs/streams.md §6.3 and §8),
		// as the protocol's Traits say.
		if s.traits.endsTimeout(st) {
			s.stopTimer(tTimeout)
		}
		if s.traits.resetsFailures(st) {
			s.a.failures = 0
			s.failures.Store(0)
		}
	}
	return true
}

// onRunDone handles the end of an attempt or connection (docs/streams.md §5.3,
// §5.4). The attempt's error is the Err of the UNREACHABLE or DISCONNECTED
// it causes (and of ALL_RETRIES_FAILED after it), Stats.LastError, and is
// logged once (docs/errors.md).
func (s *Stream) onRunDone(at int64, res transport.Result) {
	defer func() { s.failures.Store(uint32(s.a.failures)) }()
	cause := attemptCause(res.Err)
	consumed := s.tx.attemptEnded(res.Completed) && res.Completed
	s.tx.runEnded()
	s.a.cancel(nil)
	s.a.cancel, s.a.sink = nil, nil
	s.mu.Lock()
	s.upGen = 0 // the sink queues nothing of this attempt by itself any more
	s.mu.Unlock()
	s.stopTimer(tValidity)
	s.endHealthy(at)
	wasConnected := s.a.up
	if s.a.destroy {
		s.finish()
		return
	}
	if s.conn != nil {
		// Accepted stream: DISCONNECTED, then destroyed automatically.
		s.a.up = false
		s.emitCause(event.Disconnected, 0, cause)
		s.finish()
		return
	}
	if s.a.stopping {
		// Disconnect: DISCONNECTED whether connected or still attempting.
		s.a.stopping = false
		s.a.up = false
		s.emit(event.Disconnected, 0)
		if s.traits.TimeoutEndsWithConnection {
			s.stopTimer(tTimeout)
		}
		s.goIdle()
		switch {
		case s.a.connectAfter:
			s.a.connectAfter, s.a.txAfter = false, false
			s.onConnect()
		case s.a.txAfter:
			s.a.txAfter = false
			s.onTx()
		}
		return
	}
	if wasConnected {
		if cause != nil {
			s.h.Logger.Warn("ss: connection ended", "stream", s.id, "streamtype", s.st.Name,
				"attempt", s.attempts.Load(), "err", cause)
		}
		s.a.up = false
		s.emitCause(event.Disconnected, 0, cause)
		if s.traits.TimeoutEndsWithConnection {
			s.stopTimer(tTimeout)
		}
		switch {
		case res.Completed:
			// The next transaction starts at once when it was asked for
			// (RequestTx, Send) at any moment since this one's CONNECTED,
			// or its body is already queued.
			s.goIdleAfter(consumed)
		case s.st.Opportunistic && !s.st.NailedUp:
			// nailed_up reconnects whenever the connection drops, even
			// when opportunistic (docs/lws-differences.md).
			s.goIdle()
		default:
			s.backoff(res.RetryAfter, cause)
		}
		return
	}
	// Failed before CONNECTED.
	if cause == nil {
		cause = ErrNoCause
	}
	s.h.Logger.Warn("ss: attempt failed", "stream", s.id, "streamtype", s.st.Name,
		"attempt", s.attempts.Load(), "err", cause)
	s.emitCause(event.Unreachable, unreachableAck(res.Err), cause)
	s.backoff(res.RetryAfter, cause)
}

// attemptCause is the error an attempt's end reports: nil when the stream
// itself ended it (Disconnect, Destroy).
func attemptCause(err error) error {
	if errors.Is(err, ErrDisconnect) || errors.Is(err, ErrDestroyed) {
		return nil
	}
	return err
}

// unreachableAck is 1 when the failure was DNS resolution with no DNS server
// answering (docs/streams.md §1.3).
func unreachableAck(err error) uint32 {
	var de *net.DNSError
	if errors.As(err, &de) && (de.IsTimeout || de.IsTemporary) && !de.IsNotFound {
		return 1
	}
	return 0
}

// backoff takes one backoff step (docs/streams.md §6.2); cause is the failure
// that called for it (ALL_RETRIES_FAILED's Err).
func (s *Stream) backoff(retryAfter time.Duration, cause error) {
	delay, retry := BackoffFor(s.st.Retry).Step(&s.a.failures, retryAfter, s.h.rnd)
	if !retry {
		s.emitErr(event.AllRetriesFailed, 0, cause)
		s.stopTimer(tTimeout)
		s.goIdle()
		return
	}
	s.a.phase = retryWait
	s.armTimer(tRetry, delay)
}

// goIdle leaves the stream idle, or starts an attempt at once (POLL,
// CONNECTING) when a transmit request arrived while the stream could not
// act on it (during the attempt or connection that just ended, or a retry
// wait): every RequestTx, RequestTxLen and Send is honoured, whenever it
// arrives (docs/streams.md §5.2).
func (s *Stream) goIdle() { s.goIdleAfter(false) }

// goIdleAfter is goIdle; consumed says a completed HTTP transaction took
// chunks from the queue, so chunks still queued are the next body.
func (s *Stream) goIdleAfter(consumed bool) {
	s.a.phase = idle
	if s.tx.idle(consumed) {
		s.attempt(true)
	}
}

func (s *Stream) onTimer(kind int) {
	switch kind {
	case tRetry:
		if s.a.phase == retryWait {
			s.attempt(true)
		}
	case tTimeout:
		s.emitErr(event.Timeout, 0, &TimeoutError{After: s.a.timeout})
	case tValidity:
		s.onValidity()
	}
}

func (s *Stream) armTimer(kind int, d time.Duration) {
	s.stopTimer(kind)
	s.a.timerGen[kind]++
	msg := msgTimer{kind: uint8(kind), gen: s.a.timerGen[kind]}
	pid := s.a.self
	s.a.timers[kind] = time.AfterFunc(d, func() { s.post(pid, msg) })
}

func (s *Stream) stopTimer(kind int) {
	if t := s.a.timers[kind]; t != nil {
		t.Stop()
		s.a.timers[kind] = nil
		s.a.timerGen[kind]++
	}
}

// endLocked emits the final events (DISCONNECTED when connected, then
// DESTROYING), marks the stream ended and wakes its waiters. s.mu must be
// held.
func (s *Stream) endLocked(connected bool) {
	if connected {
		s.emitLocked(event.Disconnected, 0)
	}
	s.emitLocked(event.Destroying, 0)
	s.ended = true
	if s.destroyed != nil {
		close(s.destroyed)
	}
}
