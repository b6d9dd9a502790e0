package mqtt

import (
	"context"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/internal/event"
)

// AWS IoT Shadow mode (docs/streams.md §11.5.7): with aws_iot, a message for a
// Shadow topic is preceded by subscriptions to <topic>/accepted and
// <topic>/rejected; the response on either is delivered as rx with its topic
// in the metadata item named in mqtt_subscribe, and both are unsubscribed
// after the response or when the publish is not acknowledged.

// shadowReq is one Shadow request in progress.
type shadowReq struct {
	seq  uint32
	subs [2]*connmgr.Attachment // accepted, rejected
	done chan struct{}
	once sync.Once
}

func (r *shadowReq) finish() { r.once.Do(func() { close(r.done) }) }

func isShadowTopic(topic string) bool {
	return connmgr.Match("$aws/things/+/shadow/+", topic) || connmgr.Match("$aws/things/+/shadow/name/+/+", topic)
}

// shadowStart subscribes the response topics of a Shadow request (tx goroutine).
func (s *session) shadowStart(ctx context.Context, topic string, seq uint32) (*shadowReq, error) {
	r := &shadowReq{seq: seq, done: make(chan struct{})}
	actx, cancel := context.WithTimeout(ctx, s.env.MQTTAckTimeout)
	defer cancel()
	for i, suffix := range []string{"/accepted", "/rejected"} {
		sub, err := s.att.Sibling()
		if err == nil {
			r.subs[i] = sub
			err = sub.Subscribe(actx, topic+suffix, s.qos, true)
		}
		if err != nil {
			s.shadowEnd(r)
			return nil, err
		}
	}
	s.mu.Lock()
	s.shadow = r
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return r, nil
}

// shadowWait waits for the response (or a NACK) of r, then ends it.
func (s *session) shadowWait(ctx context.Context, r *shadowReq) {
	t := time.NewTimer(2 * s.env.MQTTAckTimeout)
	defer t.Stop()
	select {
	case <-r.done:
	case <-ctx.Done():
	case <-t.C:
	}
	s.shadowEnd(r)
}

// shadowEnd unsubscribes and detaches the response subscriptions.
func (s *session) shadowEnd(r *shadowReq) {
	s.mu.Lock()
	if s.shadow == r {
		s.shadow = nil
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.env.MQTTAckTimeout)
	defer cancel()
	for _, sub := range r.subs {
		if sub != nil {
			_ = sub.Unsubscribe(ctx)
			sub.Detach()
		}
	}
}

// shadowMetadata returns the metadata item named in mqtt_subscribe ("" when none).
func (s *session) shadowMetadata() (name string, i int) {
	if t := s.a.Type.MQTTSubscribeTmpl; t != nil {
		for _, p := range t.Parts {
			if p.Meta >= 0 && p.Meta < len(s.a.Type.Metadata) {
				return s.a.Type.Metadata[p.Meta].Name, p.Meta
			}
		}
	}
	return "", -1
}

// deliverShadow hands a Shadow response to the stream (Run goroutine).
func (s *session) deliverShadow(ctx context.Context, r *shadowReq, sub *connmgr.Attachment) {
	msgs := sub.Receive(nil)
	if len(msgs) == 0 {
		return
	}
	name, i := s.shadowMetadata()
	for _, m := range msgs {
		if name != "" {
			s.sink.SetMetadata(name, m.Topic)
		}
		err := s.sink.Rx(ctx, m.Payload, event.SOM|event.EOM)
		if name != "" {
			s.restoreMetadata(name, i)
		}
		if err != nil {
			break
		}
	}
	r.finish()
}

// restoreMetadata ends the delivery's hold on the metadata item: the stream
// forgets the received topic (its value is the application's again) when
// the sink can, else the attempt's value is stored back.
func (s *session) restoreMetadata(name string, i int) {
	if c, ok := s.sink.(interface{ ClearMetadata(name string) }); ok {
		c.ClearMetadata(name)
		return
	}
	if i < len(s.a.Metadata) && s.a.Metadata[i].Set {
		s.sink.SetMetadata(name, s.a.Metadata[i].Value)
	}
}
