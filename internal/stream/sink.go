package stream

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// PingSetter is implemented by the transport.Sink a stream hands to
// Protocol.Run and ServerConn.Serve. A transport with a protocol keep-alive
// (ws PING, h2/h3 PING, MQTT PINGREQ) calls SetPing once connected with a
// function that sends one; the function must not block (queue the ping and
// return). The stream calls it when the streamtype's svalidping time passes
// without a confirmation (docs/streams.md §7); the transport reports the answer
// with Sink.ValidityConfirmed. When svalidhup passes without confirmation the
// stream cancels Run's context with cause ErrValidityTimeout, and the
// connection ends like any lost connection. Transports need not import this
// package: asserting the Sink to interface{ SetPing(func()) } is the same.
type PingSetter interface {
	SetPing(ping func())
}

// RideshareSetter is implemented by the transport.Sink handed to transports.
// An HTTP transport sending a rideshare chain (docs/streams.md §11.2.6) calls
// SetRideshare with the streamtype whose data it is about to request, so
// that Stream.Rideshare tells the application which data to supply; "" (or
// the stream's own streamtype) ends the chain.
type RideshareSetter interface {
	SetRideshare(streamtype string)
}

// sink is the transport.Sink of one attempt. It is the transport's side of
// the stream: it reports states to the actor (which decides and emits
// them) and queues received payload directly (the hot path).
type sink struct {
	s   *Stream
	gen uint32
	// done: Run has returned (or a parked connection ended), ignore late
	// calls. Set once, by End.
	done atomic.Bool
	// cancel cancels the attempt's context once it has ended (End).
	cancel context.CancelCauseFunc
	// cut: the actor has ended this attempt (Disconnect, Destroy, a
	// validity timeout, a restart): from then on the attempt's payload is
	// refused, and its reports are marked so that the actor ignores a
	// CONNECTED (and the states of a connection it never announced): the
	// application never sees a connection it already asked to end. Written
	// once, by the actor, under Stream.mu; read under Stream.mu.
	cut    bool
	cutErr error // the cancel cause, returned by Rx after cut; written with cut
	// onCut is what the transport asked to run when the attempt is cut
	// (OnCut, cuthook.go): set by the transport, taken by the actor as it
	// sets cut; under Stream.mu.
	onCut func()
	// pr is the read role the transport offers (OfferPull, recv.go);
	// under Stream.mu.
	pr transport.PullReader
	// ping sends the connection's keep-alive (PingSetter); written only
	// by the transport, read by the actor's validity timer.
	ping atomic.Pointer[func()]
}

var (
	_ transport.Sink  = (*sink)(nil)
	_ PingSetter      = (*sink)(nil)
	_ RideshareSetter = (*sink)(nil)
	// transport/httpserver.MetadataClearer
	_ interface{ ClearMetadata(name string) } = (*sink)(nil)
)

// msgReport: the sink queued reports for the actor to decide.
type msgReport struct{}

// State implements transport.Sink.
func (k *sink) State(st event.State, ack uint32) { k.StateErr(st, ack, nil) }

// StateErr is State with a cause for the event's Err (an HTTP transport
// puts the *transport.StatusError of a QOS_NACK_REMOTE there). The state
// takes its place in the event queue at once (so it keeps its order with
// the payload around it) but is emitted, or skipped, by the actor
// (docs/stream-states.md). The exception is the hot one: an
// acknowledgement (QOS_*) or SERVER_TXN on the connection the actor has
// accepted, with nothing undecided before it and nothing for the actor to
// do (inlineState), is queued at once under the rule the actor published
// (upGen), without waking the actor (one per MQTT publish or HTTP request
// otherwise).
func (k *sink) StateErr(st event.State, ack uint32, err error) {
	if k.done.Load() {
		return
	}
	s := k.s
	r := report{gen: k.gen}
	if st == event.Connected {
		// Requests made until now are served by this connection.
		r.asks, r.cuts = s.tx.mark()
	}
	s.mu.Lock()
	if s.upGen == k.gen && s.q.rhead == len(s.q.reps) && s.inlineState(st) {
		s.emitErrLocked(st, ack, err)
		s.mu.Unlock()
		return
	}
	r.afterCut = k.cut
	tell := s.reportLocked(r, st, ack, err)
	pid := s.pid
	s.mu.Unlock()
	if tell {
		s.post(pid, msgReport{})
	}
}

// inlineState reports whether st, reported on the connection the actor
// accepted, needs nothing from the actor (acceptLocked would only emit
// it): an acknowledgement with no timer to stop and no counter to reset,
// or an accepted stream's next SERVER_TXN (one per HTTP request).
func (s *Stream) inlineState(st event.State) bool {
	switch st {
	case event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal, event.QoSNackLocal:
		return !s.qosNeedsActor(st)
	case event.ServerTxn:
		return true
	}
	return false
}

// qosNeedsActor reports whether the actor has anything to do for a QOS_*
// state (acceptLocked): a stream timeout to stop, or a failure counter to
// reset. Most acknowledgements (every MQTT publish) need neither, and an
// actor message per acknowledgement costs a goroutine wake-up each. The
// checks err towards telling: timeoutUsed is set before StartTimeout's
// message is sent and never cleared; the failures mirror is what the actor
// last stored, and while connected it only ever drops to 0.
func (s *Stream) qosNeedsActor(st event.State) bool {
	return (s.traits.endsTimeout(st) && s.timeoutUsed.Load()) ||
		(s.traits.resetsFailures(st) && s.failuresNow() != 0)
}

// SetMetadata implements transport.Sink: the received half of the item
// (mdSlot), whose one writer is the attempt's transport.
func (k *sink) SetMetadata(name, value string) {
	if !k.done.Load() {
		k.s.setReceived(name, value)
	}
}

// ClearMetadata forgets a received metadata value (httpserver's
// MetadataClearer): an h1 keep-alive request without a field the previous
// request had (a query argument, Authorization, a direct_proto_str header)
// leaves it unset rather than "" (docs/streams.md §10.2 step 6), or the
// application's value when it set one; the MQTT Shadow topic is held only
// for the delivery of its response.
func (k *sink) ClearMetadata(name string) {
	if !k.done.Load() {
		k.s.clearReceived(name)
	}
}

// Rx implements transport.Sink.
func (k *sink) Rx(ctx context.Context, data []byte, flags event.Flags) error {
	if k.done.Load() {
		return ErrDestroyed
	}
	// Perf reports are one per attempt and come as the attempt ends: never
	// hold them back.
	return k.s.pushRx(ctx, data, flags, flags&event.PerfJSON != 0, k)
}

// ValidityConfirmed implements transport.Sink.
func (k *sink) ValidityConfirmed() { k.s.ValidityConfirmed() }

// Logger implements transport.Sink.
func (k *sink) Logger() *slog.Logger { return k.s.h.Logger }

// SetPing implements PingSetter.
func (k *sink) SetPing(ping func()) {
	if !k.done.Load() {
		k.ping.Store(&ping)
	}
}

// SetRideshare implements RideshareSetter.
func (k *sink) SetRideshare(streamtype string) {
	if k.done.Load() {
		return
	}
	s := k.s
	s.mu.Lock()
	if streamtype == s.st.Name {
		streamtype = ""
	}
	s.rideshare = streamtype
	s.mu.Unlock()
}
