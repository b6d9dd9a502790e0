package mqtt

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/securestreams/ss/internal/connmgr"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// fakeBroker is a scripted MQTT server for the cases a real broker will not
// produce: a refused CONNECT, a refused SUBSCRIBE, a PUBLISH never acknowledged.
type fakeBroker struct {
	ln          net.Listener
	connackCode byte
	subackCode  byte
	ackPublish  bool
	wg          sync.WaitGroup
	mu          sync.Mutex
	conns       []net.Conn
}

func newFakeBroker(t *testing.T, connack, suback byte, ackPublish bool) *fakeBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBroker{ln: ln, connackCode: connack, subackCode: suback, ackPublish: ackPublish}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Go(func() { f.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	for {
		p, err := packets.ReadPacket(c)
		if err != nil {
			return
		}
		var out packets.ControlPacket
		switch p := p.(type) {
		case *packets.ConnectPacket:
			ca := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
			ca.ReturnCode = f.connackCode
			out = ca
		case *packets.SubscribePacket:
			sa := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			sa.MessageID = p.MessageID
			for range p.Topics {
				sa.ReturnCodes = append(sa.ReturnCodes, f.subackCode)
			}
			out = sa
		case *packets.UnsubscribePacket:
			ua := packets.NewControlPacket(packets.Unsuback).(*packets.UnsubackPacket)
			ua.MessageID = p.MessageID
			out = ua
		case *packets.PublishPacket:
			if f.ackPublish && p.Qos == 1 {
				pa := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				pa.MessageID = p.MessageID
				out = pa
			}
		case *packets.PingreqPacket:
			out = packets.NewControlPacket(packets.Pingresp)
		case *packets.DisconnectPacket:
			return
		}
		if out != nil {
			if err := out.Write(c); err != nil {
				return
			}
		}
	}
}

func fakeEnv() *transport.Env {
	return (&transport.Env{MQTTAckTimeout: 300 * time.Millisecond, ConnectTimeout: 2 * time.Second}).Defaults()
}

func TestAckTimeoutNacks(t *testing.T) {
	fb := newFakeBroker(t, 0, 1, false)
	env := fakeEnv()
	p := NewProtocol(env, Options{})
	defer p.Close(ctx10(t))
	r := start(p, env, streamtype("noack", fb.ln.Addr().String(), func(st *policy.Streamtype) { st.MQTTTopic, st.MQTTQoS = "x", 1 }), nil)
	r.sink.waitN(t, 1)
	r.tx.send("a")
	r.tx.send("b")
	equal(t, r.sink.waitN(t, 3), []string{"CONNECTED", "QOS_NACK_REMOTE(1)", "QOS_NACK_REMOTE(2)"})
	if err := r.sink.err(2); !errors.Is(err, connmgr.ErrTimeout) {
		t.Errorf("NACK cause %v, want ErrTimeout", err)
	}
	r.stop(t)
}

func TestConnectionLossNacksUnacknowledged(t *testing.T) {
	fb := newFakeBroker(t, 0, 1, false)
	env := (&transport.Env{MQTTAckTimeout: 30 * time.Second, ConnectTimeout: 2 * time.Second}).Defaults()
	p := NewProtocol(env, Options{})
	defer p.Close(ctx10(t))
	r := start(p, env, streamtype("lost", fb.ln.Addr().String(), func(st *policy.Streamtype) { st.MQTTTopic, st.MQTTQoS = "x", 1 }), nil)
	r.sink.waitN(t, 1)
	r.tx.send("a")
	r.tx.send("b")
	time.Sleep(50 * time.Millisecond)
	fb.mu.Lock()
	for _, c := range fb.conns {
		c.Close()
	}
	fb.mu.Unlock()
	res := r.wait(t)
	if !errors.Is(res.Err, connmgr.ErrConnectionLost) {
		t.Fatalf("result %v", res.Err)
	}
	equal(t, r.sink.events(), []string{"CONNECTED", "QOS_NACK_REMOTE(1)", "QOS_NACK_REMOTE(2)"})
	// paho's token error or the attachment's loss, whichever came first.
	if err := r.sink.err(1); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("NACK cause %v, want the connection loss", err)
	}
}

func TestConnackRefused(t *testing.T) {
	fb := newFakeBroker(t, 5, 1, true) // not authorised
	env := fakeEnv()
	p := NewProtocol(env, Options{})
	defer p.Close(ctx10(t))
	r := start(p, env, streamtype("refused", fb.ln.Addr().String(), func(st *policy.Streamtype) { st.MQTTTopic = "x" }), nil)
	res := r.wait(t)
	if !errors.Is(res.Err, connmgr.ErrRefused) || len(r.sink.events()) != 0 {
		t.Fatalf("result %v, events %v", res.Err, r.sink.events())
	}
}

func TestSubackFailure(t *testing.T) {
	fb := newFakeBroker(t, 0, 0x80, true)
	env := fakeEnv()
	p := NewProtocol(env, Options{})
	defer p.Close(ctx10(t))
	r := start(p, env, streamtype("subfail", fb.ln.Addr().String(), func(st *policy.Streamtype) { st.MQTTSubscribe = "x/#" }), nil)
	res := r.wait(t)
	if !errors.Is(res.Err, connmgr.ErrRefused) || len(r.sink.events()) != 0 {
		t.Fatalf("result %v, events %v", res.Err, r.sink.events())
	}
	if !mqttWait(func() bool { return p.Manager().Connections() == 0 }) {
		t.Fatal("connection left open")
	}
}

func mqttWait(cond func() bool) bool {
	for range 500 {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
