package connmgr

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/securestreams/ss/actor"
)

// connActor is one broker connection's actor, a child of the manager
// actor. It alone owns the connection's lifecycle (connect, loss, restart,
// shutdown), its attachments and the routing table. paho's callbacks and
// the attachments' methods reach it by message; it never blocks (paho calls
// that may wait run on the caller's goroutine or a goroutine of their own).
//
// The same connActor value serves every incarnation: after a panic the
// supervisor restarts it (Restarting, then Started), it drops the broker
// connection it held and keeps only the bookkeeping of the attachments
// still to Detach, so that the next Attach connects afresh.
type connActor struct {
	m    *Manager
	e    *entry
	dial func(ctx context.Context) (net.Conn, error) // of the latest attach request
	// settings of the latest attach request: they agree with the opener's
	// (the manager compared them) except for a token password, which a
	// new connection takes fresh.
	settings Settings

	self, parent *actor.PID
	started      bool
	gone         chan struct{} // closed when the actor has stopped

	gen      uint64 // attach requests received
	refs     int    // attachments not yet detached + waiters
	counted  bool   // counted in Manager.Connections (refs > 0)
	link     *link  // the broker connection, nil when there is none
	up       bool   // link has completed CONNECT
	waiters  []*waiter
	atts     map[*Attachment]struct{}
	subs     []*Attachment  // attachments with a filter
	filters  map[string]int // filter → attachments subscribed to it
	routeBuf []*Attachment

	// unrouted holds messages no attachment's filter matched, on a
	// persistent session only: a broker resuming a session sends what it
	// queued right after CONNACK, before the streams have subscribed again.
	// Subscribe hands them over. Bounded by maxUnrouted (oldest dropped, logged).
	unrouted []Message
	dropped  int
}

const maxUnrouted = 1024

// Messages to a connection actor.
type (
	cAttach struct {
		w        *waiter
		dial     func(ctx context.Context) (net.Conn, error)
		settings Settings
	}
	cCancel   mCancel
	cShutdown struct{}
	cPanic    struct{}
	// cConnected: the CONNECT of l finished.
	cConnected struct {
		l   *link
		err error
	}
	cLost struct {
		l   *link
		err error
	}
	cInbound struct {
		l   *link
		msg paho.Message
	}
	cDetach struct {
		a     *Attachment
		reply chan struct{}
	}
	cSubscribe struct {
		a      *Attachment
		filter string
		qos    byte
		reply  chan error
	}
	// cUnroute: the SUBSCRIBE for filter failed.
	cUnroute struct {
		a      *Attachment
		filter string
	}
	cUnsubscribe struct {
		a     *Attachment
		reply chan unsubReply
	}
	cSibling struct {
		a     *Attachment
		reply chan attachReply
	}
	cSpace struct{ a *Attachment }
	cStall struct {
		a   *Attachment
		seq uint32
	}
)

type unsubReply struct {
	filter string
	last   bool // a was the filter's last subscriber and the link is up
}

// Receive is the connection actor's behaviour.
func (c *connActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if c.started {
			c.m.log.Warn("ss: mqtt connection actor restarted after a panic", "broker", c.e.id.String())
			c.maybeIdle(ctx)
			return
		}
		c.started = true
		c.self, c.parent = ctx.Self(), ctx.Parent()
	case *actor.Restarting:
		// State after a panic is not trusted: drop the broker connection;
		// the streams attach again through their retry policy.
		c.dropLink(fmt.Errorf("%w: %s: %w", ErrConnectionLost, c.e.id, ErrRestarted), false)
	case *actor.Stopping:
		c.dropLink(ErrClosed, true)
		for a := range c.atts {
			c.endAttachment(a, ErrClosed)
		}
	case *actor.Stopped:
		if c.counted {
			c.counted = false
			c.m.conns.Add(-1)
		}
		close(c.gone)
	case cAttach:
		c.gen++
		c.refs++
		if !c.counted {
			c.counted = true
			c.m.conns.Add(1)
		}
		c.dial, c.settings = msg.dial, msg.settings
		switch {
		case c.up:
			msg.w.att = c.newAttachment()
			msg.w.reply <- attachReply{a: msg.w.att}
		case c.link != nil:
			c.waiters = append(c.waiters, msg.w)
		default:
			c.waiters = append(c.waiters, msg.w)
			c.connect()
		}
	case cCancel:
		if i := slices.Index(c.waiters, msg.w); i >= 0 {
			c.waiters = slices.Delete(c.waiters, i, i+1)
			msg.w.reply <- attachReply{err: context.Canceled}
			c.refs--
			if len(c.waiters) == 0 && !c.up {
				c.dropLink(ErrClosed, true) // nobody waits for this CONNECT any more
			}
			c.maybeIdle(ctx)
		} else if a := msg.w.att; a != nil && !a.detached.Swap(true) {
			c.detach(ctx, a)
		}
	case cShutdown:
		if c.refs == 0 {
			ctx.Stop(c.self)
		}
	case cPanic:
		panic("connmgr: injected panic (Manager.PanicConnection)")
	case cConnected:
		c.connected(ctx, msg)
	case cLost:
		if msg.l == c.link {
			c.m.log.Debug("ss: mqtt broker connection lost", "broker", c.e.id.String(), "err", msg.err)
			c.dropLink(fmt.Errorf("%w: %s: %v", ErrConnectionLost, c.e.id, msg.err), false)
			c.maybeIdle(ctx)
		}
	case cInbound:
		msg.l.gate.routed()
		if msg.l == c.link {
			c.route(msg.msg)
		}
	case cDetach:
		c.detach(ctx, msg.a)
		msg.reply <- struct{}{}
	case cSubscribe:
		msg.reply <- c.subscribe(msg)
	case cUnroute:
		if msg.a.filter == msg.filter {
			c.unroute(msg.a)
		}
	case cUnsubscribe:
		f, last := c.unroute(msg.a)
		msg.reply <- unsubReply{filter: f, last: last && c.up && msg.a.l == c.link}
	case cSibling:
		if _, ok := c.atts[msg.a]; !ok || !c.up || msg.a.l != c.link || msg.a.Err() != nil {
			err := msg.a.Err()
			if err == nil {
				err = ErrClosed
			}
			msg.reply <- attachReply{err: err}
			return
		}
		c.refs++
		msg.reply <- attachReply{a: c.newAttachment()}
	case cSpace:
		c.space(msg.a)
	case cStall:
		if msg.a.stalled && msg.a.stallSeq == msg.seq {
			c.m.log.Warn("ss: mqtt stream not receiving; detaching it", "broker", c.e.id.String(), "filter", msg.a.filter)
			c.endAttachment(msg.a, ErrSlowConsumer)
		}
	}
}

func (c *connActor) detach(ctx actor.Context, a *Attachment) {
	if _, ok := c.atts[a]; ok {
		c.endAttachment(a, ErrClosed)
		delete(c.atts, a)
		c.refs--
		c.maybeIdle(ctx)
	}
}

// maybeIdle tells the manager when the last attachment has left.
func (c *connActor) maybeIdle(ctx actor.Context) {
	if c.refs == 0 && c.counted {
		c.counted = false
		c.m.conns.Add(-1)
	}
	if c.refs == 0 && c.parent != nil {
		ctx.Send(c.parent, mIdle{e: c.e, gen: c.gen})
	}
}

// connect starts a broker connection on its own goroutine.
func (c *connActor) connect() {
	l := newLink(c.m, c.self, c.e, c.settings, c.dial)
	c.link, c.up = l, false
	c.m.opened.Add(1)
	c.m.wg.Add(1)
	go func() {
		defer c.m.wg.Done()
		err := l.connect()
		c.m.sys.Tell(c.self, cConnected{l: l, err: err})
	}()
}

func (c *connActor) connected(ctx actor.Context, msg cConnected) {
	if msg.l != c.link {
		return // dropped meanwhile; the link closed itself
	}
	if msg.err != nil {
		c.m.log.Debug("ss: mqtt connect failed", "broker", c.e.id.String(), "err", msg.err)
		c.link = nil
		for _, w := range c.waiters {
			w.reply <- attachReply{err: msg.err}
			c.refs--
		}
		c.waiters = nil
		c.maybeIdle(ctx)
		return
	}
	c.m.log.Debug("ss: mqtt broker connection up", "broker", c.e.id.String(), "session_present", msg.l.sessionPresent)
	c.up = true
	for _, w := range c.waiters {
		w.att = c.newAttachment()
		w.reply <- attachReply{a: w.att}
	}
	c.waiters = nil
}

// dropLink ends the broker connection (DISCONNECT when graceful), fails
// the attachments and waiters with err and clears the routing state.
func (c *connActor) dropLink(err error, graceful bool) {
	l := c.link
	c.link, c.up = nil, false
	for _, w := range c.waiters {
		w.reply <- attachReply{err: err}
		c.refs--
	}
	c.waiters = nil
	for a := range c.atts {
		c.endAttachment(a, err)
	}
	c.subs, c.unrouted, c.dropped = nil, nil, 0
	clear(c.filters)
	if l != nil {
		l.drop(graceful)
	}
}

func (c *connActor) newAttachment() *Attachment {
	a := &Attachment{m: c.m, pid: c.self, gone: c.gone, l: c.link, opener: c.e.settings.Streamtype,
		done: make(chan struct{}), notify: make(chan struct{}, 1)}
	c.atts[a] = struct{}{}
	return a
}

// endAttachment unroutes a and ends it with err (the first error sticks).
func (c *connActor) endAttachment(a *Attachment, err error) {
	c.unroute(a)
	if a.stalled {
		a.stalled = false
		a.stallSeq++
		a.l.gate.unstall()
	}
	a.qmu.Lock()
	a.q = nil
	a.qmu.Unlock()
	a.fail(err)
}

// route delivers a PUBLISH to every attachment whose filter matches.
func (c *connActor) route(msg paho.Message) {
	topic := msg.Topic()
	buf := c.routeBuf[:0]
	for _, a := range c.subs {
		if Match(a.filter, topic) {
			buf = append(buf, a)
		}
	}
	if len(buf) == 0 && !c.e.settings.CleanStart && c.e.id.ClientID != "" {
		c.keepUnrouted(Message{Topic: topic, Payload: msg.Payload(), QoS: msg.Qos(), Retained: msg.Retained()})
		return
	}
	payload := msg.Payload()
	for i, a := range buf {
		p := payload
		if i > 0 {
			p = bytes.Clone(payload) // a payload handed to a user belongs to that user
		}
		c.push(a, Message{Topic: topic, Payload: p, QoS: msg.Qos(), Retained: msg.Retained()})
	}
	clear(buf)
	c.routeBuf = buf[:0]
}

// push queues m for a without blocking. When a's queue reaches RxQueue the
// connection stops reading from the broker until a makes room (TCP
// backpressure for the whole connection), for at most RxStall; then a is
// evicted with ErrSlowConsumer (see the package doc).
func (c *connActor) push(a *Attachment, m ...Message) {
	a.qmu.Lock()
	a.q = append(a.q, m...)
	full := len(a.q) >= c.m.cfg.RxQueue && !a.over
	if full {
		a.over = true
	}
	a.qmu.Unlock()
	select {
	case a.notify <- struct{}{}:
	default:
	}
	if full && !a.stalled {
		a.stalled = true
		a.l.gate.stall()
		c.armStall(a)
	}
}

func (c *connActor) armStall(a *Attachment) {
	a.stallSeq++
	seq, self, sys := a.stallSeq, c.self, c.m.sys
	time.AfterFunc(c.m.cfg.RxStall, func() { sys.Tell(self, cStall{a: a, seq: seq}) })
}

// space: a's receiver took its queue while it was full.
func (c *connActor) space(a *Attachment) {
	if !a.stalled {
		return
	}
	a.qmu.Lock()
	over := a.over
	a.qmu.Unlock()
	if over { // full again already: give it another RxStall
		c.armStall(a)
		return
	}
	a.stalled = false
	a.stallSeq++
	a.l.gate.unstall()
}

func (c *connActor) keepUnrouted(m Message) {
	if len(c.unrouted) >= maxUnrouted {
		c.unrouted = slices.Delete(c.unrouted, 0, 1)
		c.dropped++
		c.m.log.Warn("ss: mqtt message for no subscribed stream dropped", "broker", c.e.id.String(), "dropped", c.dropped)
	}
	c.unrouted = append(c.unrouted, m)
}

// takeUnrouted removes and returns the kept messages matching filter.
func (c *connActor) takeUnrouted(filter string) []Message {
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

// unroute removes a from the routing table. It returns the filter and
// whether a was its last subscriber.
func (c *connActor) unroute(a *Attachment) (string, bool) {
	f := a.filter
	if f == "" {
		return "", false
	}
	a.filter = ""
	c.subs = slices.DeleteFunc(c.subs, func(x *Attachment) bool { return x == a })
	c.filters[f]--
	last := c.filters[f] <= 0
	if last {
		delete(c.filters, f)
	}
	return f, last
}

func (c *connActor) subscribe(msg cSubscribe) error {
	a := msg.a
	if err := a.Err(); err != nil {
		return err
	}
	if a.l != c.link {
		return ErrClosed
	}
	c.unroute(a)
	a.filter, a.qos = msg.filter, msg.qos
	c.subs = append(c.subs, a)
	c.filters[msg.filter]++
	if held := c.takeUnrouted(msg.filter); len(held) > 0 {
		// At most maxUnrouted: past the queue bound, but bounded.
		c.push(a, held...)
	}
	return nil
}
