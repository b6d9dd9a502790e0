package mqtt

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// session is one stream's connected phase: the Run goroutine owns every Sink
// call (so states and rx stay in order); a tx goroutine turns chunks into
// PUBLISHes and queues them on the in-flight FIFO.
type session struct {
	p      *Protocol
	a      *transport.Attempt
	env    *transport.Env
	sink   transport.Sink
	att    *connmgr.Attachment
	qos    byte
	retain bool
	max    int // topic length limit

	mu   sync.Mutex
	fifo []entry // publish order; acknowledgements are reported in this order
	head int

	wake  chan struct{} // cap 1: an entry was queued
	slots chan struct{} // in-flight window

	// owned by the tx goroutine until it has exited
	seq     uint32
	partial uint32 // message being assembled when tx stopped (0: none)

	// guarded by mu
	publishing uint32 // message inside Publish (0: none)
	abandoned  bool   // the tx goroutine outlives the session: drop what it pushes
	shadow     *shadowReq
}

// txGrace is how long the end of a lost connection waits for the tx
// goroutine. paho's Publish can block up to its write timeout when the
// connection drops under it; after txGrace that message is reported as not
// acknowledged and the goroutine finishes on its own.
const txGrace = 200 * time.Millisecond

type entryKind uint8

const (
	sent     entryKind = iota // tok is set
	local                     // refused locally: QOS_NACK_LOCAL
	unsent                    // the connection ended before it could be sent
	timedOut                  // no acknowledgement in time
)

type entry struct {
	seq      uint32
	kind     entryKind
	tok      connmgr.Token
	deadline time.Time
	err      error // local: why it was refused
}

// errUnsent is the cause of a NACK for a message the end of the stream's
// connection kept from being sent.
var errUnsent = errors.New("ss: mqtt message not sent: the connection ended first")

func newSession(p *Protocol, a *transport.Attempt, env *transport.Env, sink transport.Sink, att *connmgr.Attachment) *session {
	max := topicMax(a.Type)
	return &session{
		p: p, a: a, env: env, sink: sink, att: att, seq: p.seqs.take(a.StreamID),
		qos: a.Type.MQTTQoS, retain: a.Type.MQTTRetain, max: max,
		wake: make(chan struct{}, 1), slots: make(chan struct{}, p.maxInFlight),
	}
}

func (s *session) push(e entry) {
	s.mu.Lock()
	if e.seq == s.publishing {
		s.publishing = 0
	}
	if s.abandoned {
		s.mu.Unlock()
		return
	}
	s.fifo = append(s.fifo, e)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) peek() (entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head >= len(s.fifo) {
		return entry{}, false
	}
	return s.fifo[s.head], true
}

func (s *session) pop() {
	s.mu.Lock()
	s.fifo[s.head] = entry{}
	s.head++
	if s.head == len(s.fifo) {
		s.fifo, s.head = s.fifo[:0], 0
	} else if s.head > 1024 && s.head*2 > len(s.fifo) {
		n := copy(s.fifo, s.fifo[s.head:])
		clear(s.fifo[n:])
		s.fifo, s.head = s.fifo[:n], 0
	}
	s.mu.Unlock()
}

// report emits the QoS state of a finished entry and frees its window slot.
// A NACK carries its cause (Event.Err, docs/errors.md).
func (s *session) report(e entry) {
	var st event.State
	var err error
	switch e.kind {
	case local:
		st, err = event.QoSNackLocal, e.err
	case sent:
		<-s.slots
		if terr := e.tok.Error(); terr == nil {
			st = event.QoSAckRemote
			if s.qos == 0 {
				st = event.QoSAckLocal
			}
			s.sink.ValidityConfirmed()
		} else {
			st, err = s.nack(), fmt.Errorf("ss: mqtt publish: %w", terr)
		}
	case timedOut:
		<-s.slots
		st, err = s.nack(), s.lostOr(fmt.Errorf("%w: message %d: none within %v", connmgr.ErrTimeout, e.seq, s.env.MQTTAckTimeout))
	default: // unsent
		st, err = s.nack(), s.lostOr(errUnsent)
	}
	s.state(st, e.seq, err)
	if st == event.QoSNackRemote || st == event.QoSNackLocal {
		s.mu.Lock()
		if s.shadow != nil && s.shadow.seq == e.seq {
			s.shadow.finish()
		}
		s.mu.Unlock()
	}
}

// state reports st with its cause in Event.Err when the sink takes one (the
// stream runtime's does).
func (s *session) state(st event.State, seq uint32, err error) {
	if se, ok := s.sink.(interface {
		StateErr(st event.State, ack uint32, err error)
	}); ok && err != nil {
		se.StateErr(st, seq, err)
		return
	}
	s.sink.State(st, seq)
}

// lostOr is the broker connection's loss when it was lost, else err.
func (s *session) lostOr(err error) error {
	if lost := s.att.Err(); lost != nil {
		return lost
	}
	return err
}

func (s *session) nack() event.State {
	if s.qos == 0 {
		return event.QoSNackLocal
	}
	return event.QoSNackRemote
}

func (s *session) run(ctx context.Context) transport.Result {
	txctx, stopTx := context.WithCancel(ctx)
	txDone := make(chan struct{})
	s.p.txs.Add(1)
	go func() {
		defer s.p.txs.Done()
		defer close(txDone)
		s.tx(txctx)
	}()
	defer stopTx()
	// stop ends the tx goroutine; false when it is stuck in Publish and was
	// abandoned (its message is then reported by drainFIFO).
	stop := func(grace time.Duration) bool {
		stopTx()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-txDone:
			return true
		case <-t.C:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-txDone:
			return true
		default:
		}
		s.abandoned = true
		if seq := s.publishing; seq != 0 {
			s.fifo = append(s.fifo, entry{seq: seq, kind: unsent})
		}
		return false
	}

	var timer *time.Timer // the head's ack deadline; made on first use
	var timerC <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var spare []connmgr.Message
	for {
		var headDone <-chan struct{}
		if e, ok := s.peek(); ok {
			if e.kind != sent {
				s.pop()
				s.report(e)
				continue
			}
			select {
			case <-e.tok.Done():
				s.pop()
				s.report(e)
				continue
			default:
			}
			d := time.Until(e.deadline)
			if d <= 0 {
				s.pop()
				e.kind = timedOut
				s.report(e)
				continue
			}
			headDone = e.tok.Done()
			if timer == nil {
				timer = time.NewTimer(d)
				timerC = timer.C
			} else {
				timer.Reset(d)
			}
		}
		var sh *shadowReq
		var sh0, sh1 <-chan struct{}
		s.mu.Lock()
		if sh = s.shadow; sh != nil {
			sh0, sh1 = sh.subs[0].Ready(), sh.subs[1].Ready()
		}
		s.mu.Unlock()
		select {
		case <-sh0:
			s.deliverShadow(ctx, sh, sh.subs[0])
		case <-sh1:
			s.deliverShadow(ctx, sh, sh.subs[1])
		case <-ctx.Done():
			joined := stop(txGrace)
			s.p.unsubscribe(s.att, s.env)
			s.drainFIFO(joined, true)
			return transport.Result{Err: context.Cause(ctx)}
		case <-s.att.Done():
			joined := stop(txGrace)
			spare = s.deliver(ctx, spare) // data received before the loss comes first
			s.drainFIFO(joined, false)
			err := s.att.Err()
			if err == nil {
				err = connmgr.ErrConnectionLost
			}
			return transport.Result{Err: err}
		case <-s.att.Ready():
			spare = s.deliver(ctx, spare)
			if ctx.Err() != nil {
				continue // reported by the ctx case
			}
		case <-s.wake:
		case <-headDone:
		case <-timerC:
		}
	}
}

// deliver hands every queued message to the stream, one message per PUBLISH.
func (s *session) deliver(ctx context.Context, spare []connmgr.Message) []connmgr.Message {
	msgs := s.att.Receive(spare)
	if len(msgs) == 0 {
		return msgs
	}
	s.sink.ValidityConfirmed()
	for i := range msgs {
		if err := s.sink.Rx(ctx, msgs[i].Payload, event.SOM|event.EOM); err != nil {
			break // the stream is going away
		}
		msgs[i] = connmgr.Message{}
	}
	return msgs
}

// drainFIFO reports every entry still queued once the tx goroutine has
// stopped: acknowledged ones as such, the rest as not acknowledged, then a
// message left half-assembled. With live (the stream ends while its broker
// connection is up), a message already handed to paho is reported as it
// would be while connected: when its token completes, or NACKed when its ack
// deadline passes or the connection is lost first. (A QoS 0 PUBLISH may be
// on the wire, even delivered, a moment before paho's writer completes its
// token: reporting it unacknowledged at once would be false.)
func (s *session) drainFIFO(joined, live bool) {
	for {
		e, ok := s.peek()
		if !ok {
			break
		}
		s.pop()
		if e.kind == sent {
			if live {
				live = s.await(e)
			}
			select {
			case <-e.tok.Done():
			default:
				e.kind = timedOut // never acknowledged
			}
		}
		s.report(e)
	}
	if joined && s.partial != 0 { // else still owned by the tx goroutine
		s.state(s.nack(), s.partial, s.lostOr(errUnsent))
		s.partial = 0
	}
}

// await waits for e's token until its ack deadline; false when the broker
// connection ended first.
func (s *session) await(e entry) bool {
	select {
	case <-e.tok.Done():
		return true
	default:
	}
	d := time.Until(e.deadline)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-e.tok.Done():
	case <-t.C:
	case <-s.att.Done():
		return false
	}
	return true
}

var errNoEOM = errors.New("ss: mqtt message not sent: a new message began before its EOM")

// tx assembles chunks SOM..EOM into messages and publishes them.
func (s *session) tx(ctx context.Context) {
	defer func() { s.p.seqs.put(s.a.StreamID, s.seq) }()
	var (
		buf   []byte
		cur   uint32 // message being assembled, 0 when none
		want  int64  // announced length, -1 when none
		chunk int    // chunks in the current message
		bad   bool
	)
	for {
		ch, err := s.a.Tx.Next(ctx)
		if err != nil {
			s.partial = cur
			return
		}
		if cur != 0 && ch.Flags&event.SOM != 0 {
			// A new message starts before the previous one ended.
			s.push(entry{seq: cur, kind: local, err: errNoEOM})
			cur = 0
		}
		if cur == 0 {
			s.seq++
			cur, want, chunk, bad, buf = s.seq, -1, 0, false, nil
			if ch.Flags&event.SOM != 0 && ch.Len >= 0 {
				want = ch.Len
			}
		}
		chunk++
		var payload []byte
		if chunk == 1 && ch.Flags&event.EOM != 0 {
			payload = ch.Data // whole message in one chunk: no copy
		} else {
			buf = append(buf, ch.Data...)
			payload = buf
		}
		if want >= 0 && int64(len(payload)) > want {
			bad = true
		}
		if ch.Flags&event.EOM == 0 {
			continue
		}
		seq := cur
		cur, buf = 0, nil
		if bad || (want >= 0 && int64(len(payload)) != want) {
			s.push(entry{seq: seq, kind: local, err: fmt.Errorf("ss: mqtt message not sent: %d bytes, announced %d", len(payload), want)})
			continue
		}
		if !s.publish(ctx, seq, payload) {
			return
		}
	}
}

// publish sends one message; false when ctx ended while waiting for room.
func (s *session) publish(ctx context.Context, seq uint32, payload []byte) bool {
	topic := expand(s.a.Type.MQTTTopicTmpl, s.a.Type.MQTTTopic, s.a)
	if err := connmgr.ValidTopic(topic, s.max); err != nil {
		s.env.Logger.Debug("ss: mqtt message not sent", "stream", s.a.StreamID, "err", err)
		s.push(entry{seq: seq, kind: local, err: fmt.Errorf("ss: mqtt message not sent: %w", err)})
		return true
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		s.push(entry{seq: seq, kind: unsent})
		return false
	}
	var sh *shadowReq
	if s.a.Type.AWSIoT && isRequestTopic(topic) { // Shadow or Jobs
		var err error
		if sh, err = s.shadowStart(ctx, topic, seq); err != nil {
			s.env.Logger.Debug("ss: mqtt shadow subscriptions failed", "stream", s.a.StreamID, "err", err)
			<-s.slots
			s.push(entry{seq: seq, kind: unsent})
			return ctx.Err() == nil
		}
	}
	s.mu.Lock()
	s.publishing = seq
	s.mu.Unlock()
	tok := s.att.Publish(topic, s.qos, s.retain, payload)
	s.push(entry{seq: seq, kind: sent, tok: tok, deadline: time.Now().Add(s.env.MQTTAckTimeout)})
	if sh != nil {
		s.shadowWait(ctx, sh)
	}
	return true
}
