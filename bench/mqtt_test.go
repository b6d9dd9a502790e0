package bench

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/internal/transport/mqtt"
	"github.com/securestreams/ss/mqtttest"
	"github.com/securestreams/ss/policy"
)

// The MQTT pairs measure the publish→receive rate through the same embedded
// mochi broker in the same run: /ss is a publishing stream and a subscribed
// stream of one ss runtime (they share one broker connection), /transport the
// same two streams driven through the mqtt Protocol directly (no stream
// actor), /raw one plain paho client that publishes and is subscribed. All
// keep at most mqttWindow messages published but not yet received. ss reads
// the broker connection through a buffer (connmgr), which plain paho does
// not: paho reads fixed headers a byte at a time.
//
//	go test -run XXX -bench 'MQTT' -count 5 ./bench/

const mqttWindow = 64

func mqttBenchBroker(b *testing.B) *mqtttest.Broker {
	br, err := mqtttest.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		br.Close(ctx)
	})
	return br
}

func mqttRuntime(b *testing.B, sts ...*policy.Streamtype) *ss.Runtime {
	rt, err := ss.New(context.Background(), ss.Config{Policy: &policy.Policy{SchemaVersion: 1, Streamtypes: sts}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rt.Close(ctx)
	})
	return rt
}

// connected creates a stream and reads its events until CONNECTED.
func connected(b *testing.B, rt *ss.Runtime, name string) *ss.Stream {
	s, err := rt.Create(context.Background(), name)
	if err != nil {
		b.Fatal(err)
	}
	for ev := range s.Events() {
		if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
			return s
		}
		if ev.Kind == ss.StateEvent && (ev.State == ss.Unreachable || ev.State == ss.Disconnected) {
			b.Fatalf("stream %s: %v", name, ev)
		}
	}
	b.Fatal("stream ended before CONNECTED")
	return nil
}

func benchMQTTss(b *testing.B, qos uint8) {
	br := mqttBenchBroker(b)
	pub := &policy.Streamtype{Name: "pub", Protocol: policy.MQTT, Endpoint: br.Addr, ClientCert: -1, NailedUp: true,
		MQTTTopic: "bench/x", MQTTQoS: qos}
	sub := &policy.Streamtype{Name: "sub", Protocol: policy.MQTT, Endpoint: br.Addr, ClientCert: -1, NailedUp: true,
		MQTTSubscribe: "bench/x", MQTTQoS: qos}
	rt := mqttRuntime(b, pub, sub)
	ps := connected(b, rt, "pub")
	ss2 := connected(b, rt, "sub")
	window := make(chan struct{}, mqttWindow)
	var received, nacks atomic.Int64
	var firstNack atomic.Pointer[ss.Event]
	free := func() { // a window slot; never blocks (a NACKed message may still arrive)
		select {
		case <-window:
		default:
		}
	}
	done, pubDone := make(chan struct{}), make(chan struct{})
	go func() { // the publisher's QoS events: NACKs are counted and judged below
		defer close(pubDone)
		for ev := range ps.Events() {
			if ev.Kind == ss.StateEvent && ev.Ack != 0 && ev.State != ss.QoSAckRemote && ev.State != ss.QoSAckLocal {
				first := ev // a copy: &ev would move every event to the heap
				firstNack.CompareAndSwap(nil, &first)
				nacks.Add(1)
				free()
			}
		}
	}()
	go func() {
		defer close(done)
		for ev := range ss2.Events() {
			if ev.Kind == ss.PayloadEvent {
				received.Add(1)
				free()
			}
		}
	}()
	msg := make([]byte, 64)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	start := time.Now()
	n := 0
	for b.Loop() {
		window <- struct{}{}
		if err := ps.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for received.Load()+nacks.Load() < int64(n) {
		if time.Since(start) > time.Minute {
			b.Fatalf("received %d of %d (%d not acknowledged)", received.Load(), n, nacks.Load())
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msg/s")
	b.StopTimer()
	ps.Destroy(ctx)
	ss2.Destroy(ctx)
	<-done
	<-pubDone
	// Every publish is acknowledged on a healthy loopback broker; a NACK
	// (its cause in Event.Err) is counted, and more than 1 in 10,000 fails.
	b.ReportMetric(float64(nacks.Load()), "nacks")
	if k := nacks.Load(); k*10000 > int64(n) {
		ev := firstNack.Load()
		b.Fatalf("%d of %d publishes not acknowledged; first: %v (err %v)", k, n, ev, ev.Err)
	}
}

func benchMQTTraw(b *testing.B, qos byte) {
	br := mqttBenchBroker(b)
	var received atomic.Int64
	window := make(chan struct{}, mqttWindow)
	o := paho.NewClientOptions().AddBroker("tcp://" + br.Addr).SetClientID("raw-bench").SetAutoReconnect(false).
		SetCleanSession(true).SetProtocolVersion(4).SetKeepAlive(0).SetOrderMatters(true)
	c := paho.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
		b.Fatal("connect", t.Error())
	}
	defer c.Disconnect(100)
	if t := c.Subscribe("bench/x", qos, func(_ paho.Client, m paho.Message) {
		_ = m.Payload()
		received.Add(1)
		<-window
	}); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
		b.Fatal("subscribe", t.Error())
	}
	msg := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	start := time.Now()
	n := 0
	for b.Loop() {
		window <- struct{}{}
		c.Publish("bench/x", qos, false, msg)
		n++
	}
	for received.Load() < int64(n) {
		if time.Since(start) > time.Minute {
			b.Fatalf("received %d of %d", received.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msg/s")
}

func BenchmarkMQTTQoS0(b *testing.B) {
	b.Run("ss", func(b *testing.B) { benchMQTTss(b, 0) })
	b.Run("transport", func(b *testing.B) { benchMQTTtransport(b, 0) })
	b.Run("raw", func(b *testing.B) { benchMQTTraw(b, 0) })
}

func BenchmarkMQTTQoS1Windowed(b *testing.B) {
	b.Run("ss", func(b *testing.B) { benchMQTTss(b, 1) })
	b.Run("transport", func(b *testing.B) { benchMQTTtransport(b, 1) })
	b.Run("raw", func(b *testing.B) { benchMQTTraw(b, 1) })
}

// BenchmarkMQTT1000Streams creates 1,000 subscribed streams of one runtime on
// one broker, waits until all are CONNECTED and reports the heap per stream
// and the number of broker connections (1: they share it).
func BenchmarkMQTT1000Streams(b *testing.B) {
	const n = 1000
	br := mqttBenchBroker(b)
	st := &policy.Streamtype{Name: "many", Protocol: policy.MQTT, Endpoint: br.Addr, ClientCert: -1, NailedUp: true,
		MQTTSubscribe: "many/${i}", MQTTQoS: 1, Metadata: []*policy.MetadataItem{{Name: "i"}}}
	st.MQTTSubscribeTmpl = &policy.Template{Raw: st.MQTTSubscribe, Parts: []policy.TemplatePart{{Lit: "many/", Meta: -1}, {Lit: "i", Meta: 0}}}
	rt := mqttRuntime(b, st)
	ctx := context.Background()
	var perStream float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		streams := make([]*ss.Stream, n)
		for i := range streams {
			s, err := rt.Create(ctx, "many", ss.WithMetadata("i", fmt.Sprint(i)))
			if err != nil {
				b.Fatal(err)
			}
			streams[i] = s
		}
		for i, s := range streams {
			for ev := range s.Events() {
				if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
					break
				}
				if ev.Kind == ss.StateEvent && ev.State == ss.Unreachable {
					b.Fatalf("stream %d: %v", i, ev)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perStream = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		if err := br.Publish("many/7", []byte("x"), false, 1); err != nil {
			b.Fatal(err)
		}
		for ev := range streams[7].Events() {
			if ev.Kind == ss.PayloadEvent {
				break
			}
		}
		for _, s := range streams {
			s.Destroy(ctx)
		}
		for _, s := range streams {
			for range s.Events() {
			}
		}
	}
	b.ReportMetric(perStream, "B/stream")
	b.ReportMetric(float64(len(br.Connects()))/float64(b.N), "conns")
}

// mqttSink counts rx and QoS events of a transport run (no stream actor).
type mqttSink struct {
	benchSink
	onRx  func()
	onAck func()
}

func (s *mqttSink) State(st event.State, ack uint32) {
	switch {
	case st == event.Connected:
		close(s.connected)
	case ack != 0 && s.onAck != nil:
		s.onAck()
	}
}

func (s *mqttSink) Rx(ctx context.Context, data []byte, _ event.Flags) error {
	s.onRx()
	return nil
}

// benchMQTTtransport drives the mqtt Protocol directly: the transport's own
// cost, without the stream runtime.
func benchMQTTtransport(b *testing.B, qos uint8) {
	br := mqttBenchBroker(b)
	env := transport.Env{}.Defaults()
	p := mqtt.New(env)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	window := make(chan struct{}, mqttWindow)
	var received atomic.Int64
	run := func(st *policy.Streamtype, sink *mqttSink) *benchTx {
		tx := &benchTx{ch: make(chan transport.Chunk, 256)}
		sink.benchSink = benchSink{connected: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
		a := &transport.Attempt{Policy: &policy.Policy{}, Type: st, Tx: tx, Env: env}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.Run(ctx, a, sink)
		}()
		b.Cleanup(func() { cancel(); <-done })
		select {
		case <-sink.connected:
		case <-done:
			b.Fatal("mqtt attempt failed")
		}
		return tx
	}
	run(&policy.Streamtype{Name: "sub", Protocol: policy.MQTT, Endpoint: br.Addr, ClientCert: -1, MQTTSubscribe: "bench/x", MQTTQoS: qos},
		&mqttSink{onRx: func() { received.Add(1); <-window }})
	tx := run(&policy.Streamtype{Name: "pub", Protocol: policy.MQTT, Endpoint: br.Addr, ClientCert: -1, MQTTTopic: "bench/x", MQTTQoS: qos},
		&mqttSink{onRx: func() {}})
	msg := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	start := time.Now()
	n := 0
	for b.Loop() {
		window <- struct{}{}
		tx.ch <- transport.Chunk{Data: msg, Flags: event.SOM | event.EOM, Len: -1}
		n++
	}
	for received.Load() < int64(n) {
		if time.Since(start) > time.Minute {
			b.Fatalf("received %d of %d", received.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msg/s")
}
