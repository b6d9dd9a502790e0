package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/internal/transport/ws"
	"github.com/securestreams/ss/policy"
)

// The WebSocket pairs: /ss is a stream of the ss runtime (ss.New, Create,
// Send, Events) over the ws transport, /raw a plain gorilla client; both talk
// to the same kind of loopback gorilla server in the same run. /transport
// drives the ws Protocol directly through its Sink and TxSource (no stream
// actor), to split the runtime's cost from the transport's.
//
//	go test -run XXX -bench 'WS' -count 5 ./bench/

// wsBenchServer is a gorilla server that echoes (echo) or counts received
// messages.
type wsBenchServer struct {
	*httptest.Server
	received atomic.Int64
	got      chan struct{} // signalled after received messages when !echo
}

func newWSBenchServer(b *testing.B, echo bool) *wsBenchServer {
	s := &wsBenchServer{got: make(chan struct{}, 1)}
	up := websocket.Upgrader{ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			mt, rd, err := c.NextReader()
			if err != nil {
				return
			}
			if echo {
				n, _ := io.ReadFull(rd, buf)
				if err := c.WriteMessage(mt, buf[:n]); err != nil {
					return
				}
				continue
			}
			io.CopyBuffer(io.Discard, rd, buf)
			s.received.Add(1)
			select {
			case s.got <- struct{}{}:
			default:
			}
		}
	}))
	b.Cleanup(func() {
		s.CloseClientConnections()
		s.Close()
	})
	return s
}

func (s *wsBenchServer) hostPort() string { return strings.TrimPrefix(s.URL, "http://") }

// waitReceived waits until the server has received n messages in total.
func (s *wsBenchServer) waitReceived(b *testing.B, n int64) {
	deadline := time.Now().Add(10 * time.Second)
	for s.received.Load() < n {
		select {
		case <-s.got:
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("server received %d of %d messages", s.received.Load(), n)
		}
	}
}

// benchSink hands every rx chunk to a channel.
type benchSink struct {
	rx        chan []byte
	connected chan struct{}
	log       *slog.Logger
}

func (s *benchSink) State(st event.State, _ uint32) {
	if st == event.Connected {
		close(s.connected)
	}
}
func (s *benchSink) SetMetadata(string, string) {}
func (s *benchSink) ValidityConfirmed()         {}
func (s *benchSink) Logger() *slog.Logger       { return s.log }
func (s *benchSink) Rx(ctx context.Context, data []byte, _ event.Flags) error {
	select {
	case s.rx <- data:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type benchTx struct{ ch chan transport.Chunk }

func (t *benchTx) Next(ctx context.Context) (transport.Chunk, error) {
	select {
	case c := <-t.ch:
		return c, nil
	case <-ctx.Done():
		return transport.Chunk{}, ctx.Err()
	}
}
func (t *benchTx) Pending() bool  { return len(t.ch) > 0 }
func (t *benchTx) LenHint() int64 { return -1 }

// startSS connects the ws Protocol to hostPort and returns its tx and rx.
func startSS(b *testing.B, hostPort string) (chan<- transport.Chunk, <-chan []byte) {
	st := &policy.Streamtype{Name: "wsbench", Protocol: policy.WS, Endpoint: hostPort, ClientCert: -1, WSBinary: true}
	tx := &benchTx{ch: make(chan transport.Chunk, 256)}
	sink := &benchSink{rx: make(chan []byte, 256), connected: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	env := transport.Env{}.Defaults()
	a := &transport.Attempt{Policy: &policy.Policy{}, Type: st, Tx: tx, Env: env}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ws.New(env).Run(ctx, a, sink)
	}()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case <-sink.connected:
	case <-done:
		b.Fatal("ws attempt failed")
	}
	return tx.ch, sink.rx
}

func dialRaw(b *testing.B, hostPort string) *websocket.Conn {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+hostPort+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// startStream creates a ws stream of a new runtime and waits for CONNECTED.
func startStream(b *testing.B, hostPort string) *ss.Stream {
	st := &policy.Streamtype{Name: "wsbench", Protocol: policy.WS, Endpoint: hostPort, ClientCert: -1, WSBinary: true, NailedUp: true}
	rt, err := ss.New(context.Background(), ss.Config{Policy: &policy.Policy{SchemaVersion: 1, Streamtypes: []*policy.Streamtype{st}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Close(ctx)
	})
	s, err := rt.Create(context.Background(), "wsbench")
	if err != nil {
		b.Fatal(err)
	}
	for ev := range s.Events() {
		if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
			return s
		}
	}
	b.Fatal("stream ended before CONNECTED")
	return nil
}

func BenchmarkWS64BEcho(b *testing.B) {
	msg := make([]byte, 64)
	b.Run("ss", func(b *testing.B) {
		srv := newWSBenchServer(b, true)
		s := startStream(b, srv.hostPort())
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
			if ev := <-s.Events(); ev.Kind != ss.PayloadEvent || len(ev.Payload) != len(msg) {
				b.Fatalf("unexpected %v", ev)
			}
		}
	})
	// ss-recv: a stream read with Stream.Recv (pull mode: on a plain socket
	// the echo is read on this goroutine, by the ws frame reader).
	b.Run("ss-recv", func(b *testing.B) {
		srv := newWSBenchServer(b, true)
		s := startStream(b, srv.hostPort())
		b.ReportAllocs()
		b.ResetTimer()
		if err := recvEcho(context.Background(), s, msg, b.N); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("transport", func(b *testing.B) {
		srv := newWSBenchServer(b, true)
		tx, rx := startSS(b, srv.hostPort())
		b.ReportAllocs()
		for b.Loop() {
			tx <- transport.Chunk{Data: msg, Flags: event.SOM | event.EOM, Len: -1}
			if p := <-rx; len(p) != len(msg) {
				b.Fatalf("echo of %d bytes", len(p))
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		srv := newWSBenchServer(b, true)
		c := dialRaw(b, srv.hostPort())
		b.ReportAllocs()
		for b.Loop() {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				b.Fatal(err)
			}
			if _, p, err := c.ReadMessage(); err != nil || len(p) != len(msg) {
				b.Fatalf("echo: %v", err)
			}
		}
	})
}

func BenchmarkWS16KiBOneWay(b *testing.B) {
	msg := make([]byte, 16<<10)
	b.Run("ss", func(b *testing.B) {
		srv := newWSBenchServer(b, false)
		s := startStream(b, srv.hostPort())
		ctx := context.Background()
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		n := int64(0)
		for b.Loop() {
			if err := s.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
			n++
		}
		srv.waitReceived(b, n)
	})
	b.Run("transport", func(b *testing.B) {
		srv := newWSBenchServer(b, false)
		tx, _ := startSS(b, srv.hostPort())
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		n := int64(0)
		for b.Loop() {
			tx <- transport.Chunk{Data: msg, Flags: event.SOM | event.EOM, Len: -1}
			n++
		}
		srv.waitReceived(b, n)
	})
	b.Run("raw", func(b *testing.B) {
		srv := newWSBenchServer(b, false)
		c := dialRaw(b, srv.hostPort())
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		n := int64(0)
		for b.Loop() {
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				b.Fatal(err)
			}
			n++
		}
		srv.waitReceived(b, n)
	})
}

// BenchmarkPairWS64BEcho: BenchmarkWS64BEcho's sides interleaved (runPair):
// raw (a gorilla client reading on the caller's goroutine), chan (the same
// client with a reader goroutine handing each message over a channel: the
// floor of any API that delivers received data over a channel) and ss (a
// stream over the ws transport), each its own connection to the same kind
// of loopback gorilla echo server. Metrics: ss/raw, ss/chan and chan/raw
// are time ratios (goal ss/raw ≤ 1.2).
func BenchmarkPairWS64BEcho(b *testing.B) {
	msg := make([]byte, 64)
	ctx := context.Background()

	rawSrv := newWSBenchServer(b, true)
	rc := dialRaw(b, rawSrv.hostPort())
	rawSide := pairSide{"raw", func(n int) error {
		for range n {
			if err := rc.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				return err
			}
			if _, p, err := rc.ReadMessage(); err != nil || len(p) != len(msg) {
				return fmt.Errorf("echo of %d bytes: %v", len(p), err)
			}
		}
		return nil
	}}

	chanSrv := newWSBenchServer(b, true)
	cc := dialRaw(b, chanSrv.hostPort())
	ch := make(chan []byte)
	go func() {
		defer close(ch)
		for {
			_, p, err := cc.ReadMessage()
			if err != nil {
				return
			}
			ch <- p
		}
	}()
	b.Cleanup(func() {
		cc.Close()
		for range ch {
		}
	})
	chanSide := pairSide{"chan", func(n int) error {
		for range n {
			if err := cc.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				return err
			}
			if p := <-ch; len(p) != len(msg) {
				return fmt.Errorf("echo of %d bytes", len(p))
			}
		}
		return nil
	}}

	ssSrv := newWSBenchServer(b, true)
	s := startStream(b, ssSrv.hostPort())
	ev := s.Events()
	ssSide := pairSide{"ss", func(n int) error {
		for range n {
			if err := s.Send(ctx, msg); err != nil {
				return err
			}
			if e := <-ev; e.Kind != ss.PayloadEvent || len(e.Payload) != len(msg) {
				return fmt.Errorf("unexpected %v", e)
			}
		}
		return nil
	}}
	// ss-recv: a stream of its own read with Stream.Recv.
	ps := startStream(b, ssSrv.hostPort())
	recvSide := pairSide{"ss-recv", func(n int) error { return recvEcho(ctx, ps, msg, n) }}
	runPair(b, rawSide, chanSide, ssSide, recvSide)
}
