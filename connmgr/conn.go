package connmgr

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/securestreams/ss/transport"
)

// conn is one broker connection shared by its attachments.
type conn struct {
	m        *Manager
	id       Identity
	settings Settings // of the stream that opened it

	client paho.Client

	ready          chan struct{} // closed when CONNECT has finished, either way
	connErr        error         // set before ready is closed
	sessionPresent bool          // set before ready is closed

	finished   chan struct{} // closed when the connection is over for good
	finishOnce sync.Once

	// guarded by m.mu
	refs    int
	closing bool

	mu      sync.RWMutex
	atts    map[*Attachment]struct{}
	subs    []*Attachment  // attachments with a filter; replaced, never modified in place
	filters map[string]int // filter → attachments subscribed to it
	dead    bool
	err     error

	nc *bufferedConn // guarded by mu; set when paho opens the connection

	// Pings requested by streams (Attachment.Ping): confirmed by the next
	// bytes received.
	pings    atomic.Int32
	pingMu   sync.Mutex
	pingWait []func()

	subMu     sync.Mutex // orders SUBSCRIBE/UNSUBSCRIBE bookkeeping with the wire
	birthMu   sync.Mutex
	birthSent bool

	routeBuf []*Attachment // used only by the (ordered, single) paho handler

	// unrouted holds messages no attachment's filter matched, on a
	// persistent session only (guarded by mu): a broker resuming a session sends what it
	// queued right after CONNACK, before the streams have subscribed again.
	// Subscribe hands them over. Bounded by maxUnrouted (oldest dropped, logged).
	unrouted []Message
	dropped  int
}

const maxUnrouted = 1024

func (c *conn) connect(dial func(ctx context.Context) (net.Conn, error)) {
	c.client = paho.NewClient(c.pahoOptions(dial))
	tok := c.client.Connect()
	// The token completes within ConnectTimeout (dial and CONNACK are both
	// bounded); the timer only guards against a paho bug.
	t := time.NewTimer(2*c.m.cfg.ConnectTimeout + time.Second)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			ct, _ := tok.(*paho.ConnectToken)
			if ct != nil && ct.ReturnCode() != 0 && ct.ReturnCode() < 0x80 {
				c.connErr = fmt.Errorf("%w: CONNECT to %s: %w", ErrRefused, c.id, &transport.ConnackError{Code: ct.ReturnCode()})
			} else {
				c.connErr = fmt.Errorf("ss: mqtt connect to %s: %w", c.id, err)
			}
		} else if ct, ok := tok.(*paho.ConnectToken); ok {
			c.sessionPresent = ct.SessionPresent()
		}
	case <-t.C:
		c.connErr = fmt.Errorf("%w: CONNECT to %s", ErrTimeout, c.id)
		c.client.Disconnect(0)
	}
	if c.connErr != nil {
		c.m.log.Debug("ss: mqtt connect failed", "broker", c.id.String(), "err", c.connErr)
		c.mu.Lock()
		c.dead, c.err = true, c.connErr
		c.mu.Unlock()
		c.m.forget(c)
		close(c.ready)
		c.finish()
		return
	}
	c.m.log.Debug("ss: mqtt broker connection up", "broker", c.id.String(), "session_present", c.sessionPresent)
	close(c.ready)
}

func (c *conn) finish() {
	c.finishOnce.Do(func() {
		c.m.forget(c)
		close(c.finished)
	})
}

// die marks the connection unusable and ends every attachment.
func (c *conn) die(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	c.dead, c.err = true, err
	for a := range c.atts {
		a.fail(err)
	}
	c.subs = nil
}

func (c *conn) deathErr() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// lost is paho's connection-lost handler (run on its own goroutine, after
// paho's workers have stopped).
func (c *conn) lost(err error) {
	c.m.log.Debug("ss: mqtt broker connection lost", "broker", c.id.String(), "err", err)
	c.m.mu.Lock()
	if c.m.conns[c.id] == c {
		delete(c.m.conns, c.id)
	}
	c.m.mu.Unlock()
	c.die(fmt.Errorf("%w: %s: %v", ErrConnectionLost, c.id, err))
	c.finish()
}

// shutdown sends DISCONNECT (bounded by Config.Quiesce) and closes the connection.
func (c *conn) shutdown() {
	<-c.ready
	c.die(ErrClosed)
	if c.connErr == nil {
		c.client.Disconnect(uint(c.m.cfg.Quiesce / time.Millisecond))
		c.m.log.Debug("ss: mqtt broker connection closed", "broker", c.id.String())
	}
	c.finish()
}

// route is paho's default publish handler. paho calls it on one goroutine in
// order; it must not block for long (see the package doc).
func (c *conn) route(_ paho.Client, msg paho.Message) {
	topic := msg.Topic()
	c.mu.RLock()
	buf := c.routeBuf[:0]
	for _, a := range c.subs {
		if Match(a.filter, topic) {
			buf = append(buf, a)
		}
	}
	c.mu.RUnlock()
	if len(buf) == 0 && !c.settings.CleanStart && c.id.ClientID != "" {
		c.keepUnrouted(Message{Topic: topic, Payload: msg.Payload(), QoS: msg.Qos(), Retained: msg.Retained()})
		return
	}
	payload := msg.Payload()
	for i, a := range buf {
		p := payload
		if i > 0 {
			p = bytes.Clone(payload) // a payload handed to a user belongs to that user
		}
		a.push(Message{Topic: topic, Payload: p, QoS: msg.Qos(), Retained: msg.Retained()})
	}
	clear(buf)
	c.routeBuf = buf[:0]
}

func (c *conn) keepUnrouted(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	if len(c.unrouted) >= maxUnrouted {
		c.unrouted = slices.Delete(c.unrouted, 0, 1)
		c.dropped++
		c.m.log.Warn("ss: mqtt message for no subscribed stream dropped", "broker", c.id.String(), "dropped", c.dropped)
	}
	c.unrouted = append(c.unrouted, m)
}

// takeUnrouted removes and returns the kept messages matching filter; c.mu must be held.
func (c *conn) takeUnroutedLocked(filter string) []Message {
	var out []Message
	keep := c.unrouted[:0]
	for _, m := range c.unrouted {
		if Match(filter, m.Topic) {
			out = append(out, m)
		} else {
			keep = append(keep, m)
		}
	}
	clear(c.unrouted[len(keep):])
	c.unrouted = keep
	return out
}

func (c *conn) wait(ctx context.Context, a *Attachment, tok paho.Token, what string) error {
	t := time.NewTimer(c.m.cfg.AckTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: %s on %s", ErrTimeout, what, c.id)
	case <-a.done:
		return a.Err()
	}
}

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

// Attachment is one stream's share of a broker connection.
type Attachment struct {
	c *conn

	// guarded by c.mu
	filter   string
	qos      byte
	err      error
	detached bool

	done   chan struct{} // closed with err set: connection lost, evicted or closed
	notify chan struct{} // cap 1: messages are queued
	space  chan struct{} // cap 1: the receiver made room

	qmu sync.Mutex
	q   []Message
}

// Done is closed when the attachment can no longer be used: the broker
// connection was lost or closed, or the attachment was evicted as a slow
// consumer. Err says why.
func (a *Attachment) Done() <-chan struct{} { return a.done }

// Err returns why Done was closed (nil while it is open).
func (a *Attachment) Err() error {
	a.c.mu.RLock()
	defer a.c.mu.RUnlock()
	return a.err
}

// SessionPresent reports whether the broker resumed a session at CONNECT.
func (a *Attachment) SessionPresent() bool { return a.c.sessionPresent }

// Opener returns the streamtype whose settings opened the broker connection.
func (a *Attachment) Opener() string { return a.c.settings.Streamtype }

// fail ends the attachment; c.mu must be held.
func (a *Attachment) fail(err error) {
	if a.err == nil {
		a.err = err
		close(a.done)
	}
}

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
	a.qmu.Unlock()
	if len(msgs) > 0 {
		select {
		case a.space <- struct{}{}:
		default:
		}
	}
	return msgs
}

// push queues m for the attachment, waiting at most RxStall for room.
func (a *Attachment) push(m Message) {
	max := a.c.m.cfg.RxQueue
	var timer *time.Timer
	a.qmu.Lock()
	for len(a.q) >= max {
		a.qmu.Unlock()
		if timer == nil {
			timer = time.NewTimer(a.c.m.cfg.RxStall)
			defer timer.Stop()
		}
		select {
		case <-a.space:
		case <-a.done:
			return
		case <-timer.C:
			a.c.m.log.Warn("ss: mqtt stream not receiving; detaching it", "broker", a.c.id.String(), "filter", a.filter)
			a.c.evict(a, ErrSlowConsumer)
			return
		}
		a.qmu.Lock()
	}
	a.q = append(a.q, m)
	a.qmu.Unlock()
	select {
	case a.notify <- struct{}{}:
	default:
	}
}

func (c *conn) evict(a *Attachment, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unrouteLocked(a)
	a.fail(err)
}

// unrouteLocked removes a from the routing table; c.mu must be held. It
// returns the filter and whether a was its last subscriber.
func (c *conn) unrouteLocked(a *Attachment) (string, bool) {
	f := a.filter
	if f == "" {
		return "", false
	}
	a.filter = ""
	c.subs = slices.DeleteFunc(slices.Clone(c.subs), func(x *Attachment) bool { return x == a })
	c.filters[f]--
	last := c.filters[f] <= 0
	if last {
		delete(c.filters, f)
	}
	return f, last
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
	c := a.c
	c.subMu.Lock()
	c.mu.Lock()
	if a.err != nil {
		c.mu.Unlock()
		c.subMu.Unlock()
		return a.err
	}
	c.unrouteLocked(a)
	a.filter, a.qos = filter, qos
	c.subs = append(slices.Clone(c.subs), a)
	c.filters[filter]++
	held := c.takeUnroutedLocked(filter)
	c.mu.Unlock()
	if len(held) > 0 { // at most maxUnrouted: past the queue bound, but bounded
		a.qmu.Lock()
		a.q = append(a.q, held...)
		a.qmu.Unlock()
		select {
		case a.notify <- struct{}{}:
		default:
		}
	}
	if !wire {
		c.subMu.Unlock()
		return nil
	}
	tok := c.client.Subscribe(filter, qos, nil)
	c.subMu.Unlock()
	err := c.wait(ctx, a, tok, "SUBACK")
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
		c.mu.Lock()
		c.unrouteLocked(a)
		c.mu.Unlock()
	}
	return err
}

// Unsubscribe stops routing to the attachment and, when it was the last
// attachment with its filter, sends UNSUBSCRIBE and waits for UNSUBACK
// (bounded by ctx and Config.AckTimeout).
func (a *Attachment) Unsubscribe(ctx context.Context) error {
	c := a.c
	c.subMu.Lock()
	c.mu.Lock()
	f, last := c.unrouteLocked(a)
	dead := c.dead
	c.mu.Unlock()
	if !last || dead {
		c.subMu.Unlock()
		return nil
	}
	tok := c.client.Unsubscribe(f)
	c.subMu.Unlock()
	t := time.NewTimer(c.m.cfg.AckTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: UNSUBACK for %q on %s", ErrTimeout, f, c.id)
	}
}

// Publish sends one PUBLISH. It blocks while the connection's writer is busy
// (transmit backpressure), at most Config.AckTimeout.
func (a *Attachment) Publish(topic string, qos byte, retain bool, payload []byte) Token {
	return a.c.client.Publish(topic, qos, retain, payload)
}

// Birth publishes the birth message unless one was already sent on this
// broker connection, waiting for its acknowledgement at QoS ≥ 1 (or for it to
// be written at QoS 0), bounded by ctx and Config.AckTimeout.
func (a *Attachment) Birth(ctx context.Context, b Will) error {
	c := a.c
	c.birthMu.Lock()
	defer c.birthMu.Unlock()
	if c.birthSent {
		return nil
	}
	if err := c.wait(ctx, a, c.client.Publish(b.Topic, b.QoS, b.Retain, []byte(b.Message)), "birth acknowledgement"); err != nil {
		return fmt.Errorf("ss: mqtt birth message on %q: %w", b.Topic, err)
	}
	c.birthSent = true
	return nil
}

// Detach leaves the broker connection (without UNSUBSCRIBE; call
// Unsubscribe first when wanted). The last attachment to leave closes the
// connection with DISCONNECT before Detach returns. Idempotent.
func (a *Attachment) Detach() {
	c := a.c
	c.mu.Lock()
	if a.detached {
		c.mu.Unlock()
		return
	}
	a.detached = true
	c.unrouteLocked(a)
	delete(c.atts, a)
	a.fail(ErrClosed)
	c.mu.Unlock()
	c.m.release(c)
}

// Sibling returns another attachment to the same broker connection (for
// extra subscriptions of the same stream, e.g. AWS IoT Shadow responses). It
// fails when the connection is no longer usable. Detach it like any other.
func (a *Attachment) Sibling() (*Attachment, error) {
	c := a.c
	m := c.m
	m.mu.Lock()
	if c.closing || m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	c.refs++
	m.mu.Unlock()
	n := &Attachment{c: c, done: make(chan struct{}), notify: make(chan struct{}, 1), space: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		m.release(c)
		return nil, c.deathErr()
	}
	c.atts[n] = struct{}{}
	c.mu.Unlock()
	return n, nil
}

// pinged runs the confirmations waiting for bytes from the broker.
func (c *conn) pinged() {
	c.pingMu.Lock()
	w := c.pingWait
	c.pingWait = nil
	c.pings.Store(0)
	c.pingMu.Unlock()
	for _, f := range w {
		f()
	}
}

var pingreq = []byte{0xc0, 0x00}

// Ping sends an MQTT PINGREQ on the broker connection without blocking;
// confirmed is called (on the connection's reader goroutine; it must not
// block) when the broker next sends anything, which proves the connection
// alive (streams.md §7).
func (a *Attachment) Ping(confirmed func()) {
	c := a.c
	c.mu.RLock()
	nc, dead := c.nc, c.dead
	c.mu.RUnlock()
	if nc == nil || dead {
		return
	}
	c.pingMu.Lock()
	c.pingWait = append(c.pingWait, confirmed)
	first := c.pings.Add(1) == 1
	c.pingMu.Unlock()
	if first {
		// A write error surfaces through paho's own reads and writes.
		go func() { _, _ = nc.Write(pingreq) }()
	}
}
