package connmgr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/securestreams/ss/actor"
)

// Message is one PUBLISH received for an attachment.
type Message struct {
	Topic    string
	Payload  []byte // owned by the receiver
	QoS      byte
	Retained bool
}

// Token is a publish in progress: Done is closed when the PUBLISH was written
// (QoS 0) or acknowledged (PUBACK for QoS 1, PUBCOMP for QoS 2), or failed;
// Error says which.
type Token interface {
	Done() <-chan struct{}
	Error() error
}

// Attachment is one stream's share of a broker connection. Its connection
// actor owns its routing state; the stream owns the receiving end of its
// queue.
type Attachment struct {
	m      *Manager
	pid    *actor.PID    // the connection actor
	gone   chan struct{} // closed when the connection actor has stopped
	l      *link         // the broker connection it was made on
	opener string

	// owned by the connection actor
	filter   string
	qos      byte
	stalled  bool   // its full queue holds the link's reader back
	stallSeq uint32 // invalidates stall timers

	err      atomic.Pointer[error]
	done     chan struct{} // closed with err set: connection lost, evicted or closed
	notify   chan struct{} // cap 1: messages are queued
	detached atomic.Bool

	qmu  sync.Mutex
	q    []Message
	over bool // guarded by qmu: q reached RxQueue and the actor has not heard of room since
}

// Done is closed when the attachment can no longer be used: the broker
// connection was lost or closed, or the attachment was evicted as a slow
// consumer. Err says why.
func (a *Attachment) Done() <-chan struct{} { return a.done }

// Err returns why Done was closed (nil while it is open).
func (a *Attachment) Err() error {
	if p := a.err.Load(); p != nil {
		return *p
	}
	return nil
}

// fail ends the attachment (connection actor only); the first error sticks.
func (a *Attachment) fail(err error) {
	if a.err.CompareAndSwap(nil, &err) {
		close(a.done)
	}
}

// SessionPresent reports whether the broker resumed a session at CONNECT.
func (a *Attachment) SessionPresent() bool { return a.l.sessionPresent }

// Opener returns the streamtype whose settings opened the broker connection.
func (a *Attachment) Opener() string { return a.opener }

// Ready is signalled when Receive has messages.
func (a *Attachment) Ready() <-chan struct{} { return a.notify }

// Receive returns the queued messages (nil when none), in arrival order.
// spare, if not nil, is a slice from an earlier Receive the caller no longer
// needs; it is reused.
func (a *Attachment) Receive(spare []Message) []Message {
	clear(spare)
	a.qmu.Lock()
	msgs := a.q
	a.q = spare[:0]
	over := a.over && len(msgs) > 0
	if over {
		a.over = false
	}
	a.qmu.Unlock()
	if over {
		a.m.sys.Tell(a.pid, cSpace{a: a})
	}
	return msgs
}

// askConn sends msg to the connection actor and waits for its reply,
// bounded by ctx, Close and the connection actor stopping.
func askConn[T any](ctx context.Context, a *Attachment, msg any, reply chan T) (T, error) {
	return ask(ctx, a.m, a.pid, msg, reply, a.gone)
}

// Subscribe routes PUBLISHes matching filter to the attachment and, unless
// the broker already holds the subscription in a resumed session
// (wire == false), sends SUBSCRIBE and waits for SUBACK (bounded by
// Config.AckTimeout). A SUBACK failure code gives an error wrapping ErrRefused.
// An attachment has at most one filter; subscribing again replaces it.
func (a *Attachment) Subscribe(ctx context.Context, filter string, qos byte, wire bool) error {
	if err := ValidFilter(filter); err != nil {
		return err
	}
	if qos > 2 {
		return fmt.Errorf("ss: mqtt subscribe %q: qos %d", filter, qos)
	}
	l := a.l
	l.wireMu.Lock()
	reply := make(chan error, 1)
	err, aerr := askConn(ctx, a, cSubscribe{a: a, filter: filter, qos: qos, reply: reply}, reply)
	if aerr != nil {
		err = aerr
		if errors.Is(aerr, errGone) {
			err = a.Err()
		}
	}
	if err != nil || !wire {
		l.wireMu.Unlock()
		return err
	}
	tok := l.client.Subscribe(filter, qos, nil)
	l.wireMu.Unlock()
	err = a.wait(ctx, tok, "SUBACK")
	if err == nil {
		if st, ok := tok.(*paho.SubscribeToken); ok {
			if rc, ok := st.Result()[filter]; ok && rc >= 0x80 {
				err = fmt.Errorf("%w: SUBSCRIBE %q: return code 0x%02x", ErrRefused, filter, rc)
			}
		}
	} else {
		err = fmt.Errorf("ss: mqtt subscribe %q: %w", filter, err)
	}
	if err != nil {
		a.m.sys.Tell(a.pid, cUnroute{a: a, filter: filter})
	}
	return err
}

// Unsubscribe stops routing to the attachment and, when it was the last
// attachment with its filter, sends UNSUBSCRIBE and waits for UNSUBACK
// (bounded by ctx and Config.AckTimeout).
func (a *Attachment) Unsubscribe(ctx context.Context) error {
	l := a.l
	l.wireMu.Lock()
	reply := make(chan unsubReply, 1)
	r, err := askConn(ctx, a, cUnsubscribe{a: a, reply: reply}, reply)
	if err != nil || !r.last {
		l.wireMu.Unlock()
		if errors.Is(err, errGone) || errors.Is(err, ErrClosed) {
			return nil // the connection is gone: nothing to unsubscribe
		}
		return err
	}
	tok := l.client.Unsubscribe(r.filter)
	l.wireMu.Unlock()
	t := time.NewTimer(a.m.cfg.AckTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: UNSUBACK for %q on %s", ErrTimeout, r.filter, l.e.id)
	}
}

func (a *Attachment) wait(ctx context.Context, tok paho.Token, what string) error {
	t := time.NewTimer(a.m.cfg.AckTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: %s on %s", ErrTimeout, what, a.l.e.id)
	case <-a.done:
		return a.Err()
	}
}

// Publish sends one PUBLISH. It blocks while the connection's writer is busy
// (transmit backpressure), at most Config.AckTimeout.
func (a *Attachment) Publish(topic string, qos byte, retain bool, payload []byte) Token {
	return a.l.client.Publish(topic, qos, retain, payload)
}

// Birth publishes the birth message unless one was already sent on this
// broker connection, waiting for its acknowledgement at QoS ≥ 1 (or for it to
// be written at QoS 0), bounded by ctx and Config.AckTimeout.
func (a *Attachment) Birth(ctx context.Context, b Will) error {
	l := a.l
	l.birthMu.Lock()
	defer l.birthMu.Unlock()
	if l.birthSent {
		return nil
	}
	if err := a.wait(ctx, l.client.Publish(b.Topic, b.QoS, b.Retain, []byte(b.Message)), "birth acknowledgement"); err != nil {
		return fmt.Errorf("ss: mqtt birth message on %q: %w", b.Topic, err)
	}
	l.birthSent = true
	return nil
}

// Detach leaves the broker connection (without UNSUBSCRIBE; call
// Unsubscribe first when wanted). It waits only for the connection actor to
// take note (never for the network): the last attachment to leave makes the
// connection close with DISCONNECT, which Manager.Close waits for.
// Idempotent.
func (a *Attachment) Detach() {
	if !a.detached.Swap(true) {
		reply := make(chan struct{}, 1)
		_, _ = askConn(context.Background(), a, cDetach{a: a, reply: reply}, reply)
	}
}

// Sibling returns another attachment to the same broker connection (for
// extra subscriptions of the same stream, e.g. AWS IoT Shadow responses). It
// fails when the connection is no longer usable. Detach it like any other.
func (a *Attachment) Sibling() (*Attachment, error) {
	reply := make(chan attachReply, 1)
	r, err := askConn(context.Background(), a, cSibling{a: a, reply: reply}, reply)
	if err != nil {
		if errors.Is(err, errGone) {
			return nil, a.Err()
		}
		return nil, err
	}
	return r.a, r.err
}

var pingreq = []byte{0xc0, 0x00}

// Ping sends an MQTT PINGREQ on the broker connection without blocking;
// confirmed is called (on the connection's reader goroutine; it must not
// block) when the broker next sends anything, which proves the connection
// alive (docs/streams.md §7).
func (a *Attachment) Ping(confirmed func()) {
	l := a.l
	l.mu.Lock()
	nc, dead := l.nc, l.dropped
	l.mu.Unlock()
	if nc == nil || dead || a.Err() != nil {
		return
	}
	l.pingMu.Lock()
	l.pingWait = append(l.pingWait, confirmed)
	first := l.pings.Add(1) == 1
	l.pingMu.Unlock()
	if first {
		// A write error surfaces through paho's own reads and writes.
		go func() { _, _ = nc.Write(pingreq) }()
	}
}
