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

// sink is the transport.Sink of one attempt.
type sink struct {
	s    *Stream
	gen  uint32
	done atomic.Bool // Run has returned: ignore late calls
}

var (
	_ transport.Sink  = (*sink)(nil)
	_ PingSetter      = (*sink)(nil)
	_ RideshareSetter = (*sink)(nil)
	// transport/httpserver.MetadataClearer
	_ interface{ ClearMetadata(name string) } = (*sink)(nil)
)

// State implements transport.Sink.
func (k *sink) State(st event.State, ack uint32) { k.StateErr(st, ack, nil) }

// StateErr is State with a cause for the event's Err (an HTTP transport
// puts the *transport.StatusError of a QOS_NACK_REMOTE there).
func (k *sink) StateErr(st event.State, ack uint32, err error) {
	if k.done.Load() {
		return
	}
	s := k.s
	if st == event.Connected && s.conn == nil {
		s.mu.Lock()
		dup := s.connected && s.cur == event.Connected
		s.mu.Unlock()
		if dup {
			return
		}
		// Before CONNECTED is visible: a request made after it is not
		// mistaken for one this connection serves.
		s.tx.connected(!s.traits.Transactional)
	}
	if st == event.ServerUpgrade && s.upgradeFraming != nil {
		// Before SERVER_UPGRADE is visible: the application's next chunk
		// is checked as a ws frame.
		s.tx.setFraming(s.upgradeFraming)
	}
	s.mu.Lock()
	if st == event.Connected {
		if s.connected && s.cur == event.Connected {
			s.mu.Unlock()
			return
		}
		if s.cur == event.Disconnected {
			s.emitLocked(event.Connecting, 0)
		}
		s.connected = true
		s.lastConfirm.Store(nowNano())
	}
	s.emitErrLocked(st, ack, err)
	s.mu.Unlock()
	switch st {
	case event.Connected:
		s.tell(msgSinkState{gen: k.gen, st: st})
	case event.QoSAckRemote, event.QoSNackRemote, event.QoSAckLocal:
		if s.qosNeedsActor(st) {
			s.tell(msgSinkState{gen: k.gen, st: st})
		}
	}
}

// qosNeedsActor reports whether the actor has anything to do for a QOS_*
// state (onSinkState): a stream timeout to stop, or a failure counter to
// reset. Most acknowledgements (every MQTT publish) need neither, and an
// actor message per acknowledgement costs a goroutine wake-up each. The
// checks err towards telling: timeoutUsed is set before StartTimeout's
// message is sent and never cleared; the failures mirror is what the actor
// last stored, and while connected it only ever drops to 0.
func (s *Stream) qosNeedsActor(st event.State) bool {
	return (s.traits.endsTimeout(st) && s.timeoutUsed.Load()) ||
		(s.traits.resetsFailures(st) && s.failures.Load() != 0)
}

// SetMetadata implements transport.Sink.
func (k *sink) SetMetadata(name, value string) {
	if !k.done.Load() {
		k.s.setReceived(name, value)
	}
}

// ClearMetadata makes a metadata value unset again (httpserver's
// MetadataClearer): an h1 keep-alive request without a field the previous
// request had (a query argument, Authorization, a direct_proto_str header)
// leaves it unset rather than "" (docs/streams.md §10.2 step 6).
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
	return k.s.pushRx(ctx, data, flags, flags&event.PerfJSON != 0)
}

// ValidityConfirmed implements transport.Sink.
func (k *sink) ValidityConfirmed() { k.s.ValidityConfirmed() }

// Logger implements transport.Sink.
func (k *sink) Logger() *slog.Logger { return k.s.h.Logger }

// SetPing implements PingSetter.
func (k *sink) SetPing(ping func()) {
	if !k.done.Load() {
		k.s.ping.Store(&ping)
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
