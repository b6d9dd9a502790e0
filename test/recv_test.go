package test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// recvBoth runs scenario once reading with Events and once with Recv
// and checks that both saw want, so the same events in the same order.
func recvBoth(t *testing.T, scenario func(t *testing.T, rec func(*testing.T, *ss.Stream) *recorder) *recorder, want ...string) {
	t.Helper()
	for _, rec := range []func(*testing.T, *ss.Stream) *recorder{record, recordRecv} {
		scenario(t, rec).expect(want...)
	}
}

// TestRecvOrderRaw: plain raw (Recv reads the socket itself), raw over
// TLS and plain raw parked in the runtime's event loop (Recv drains the
// queue) give the states and payload Events gives.
func TestRecvOrderRaw(t *testing.T) {
	for _, mode := range []string{"plain", "tls", "loop"} {
		t.Run(mode, func(t *testing.T) {
			tlsOn := mode == "tls"
			var srv *testutil.Server
			var ca *testutil.CA
			if tlsOn {
				ca = testutil.NewCA(t)
				srv = tlsEcho(t, ca)
			} else {
				srv = testutil.Listen(t, "tcp", "", nil, testutil.Echo)
			}
			st := rawType("echo", "127.0.0.1", srv.Port())
			if tlsOn {
				st.TLS = true
				st.TrustStore = ca.TrustStore("ts")
				st.TrustStoreName = "ts"
			}
			rt := newRuntime(t, ss.Config{Policy: newPolicy(st), EventLoop: mode == "loop"})
			recvBoth(t, func(t *testing.T, rec func(*testing.T, *ss.Stream) *recorder) *recorder {
				ctx := context.Background()
				s, err := rt.Create(ctx, "echo")
				if err != nil {
					t.Fatal(err)
				}
				r := rec(t, s)
				n := 0
				for _, m := range []string{"one", "two", "three"} {
					if err := s.Send(ctx, []byte(m)); err != nil {
						t.Fatal(err)
					}
					n += len(m)
					r.untilBytes(wait, n)
				}
				if err := s.Destroy(ctx); err != nil {
					t.Fatal(err)
				}
				r.closed(wait)
				return r
			}, "CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"onetwothree")`, "DISCONNECTED", "DESTROYING")
		})
	}
}

// recvStream creates a raw stream of st's policy and reads up to
// CONNECTED with Recv.
func recvStream(t *testing.T, rt *ss.Runtime, name string) (*ss.Stream, *recorder) {
	t.Helper()
	s, err := rt.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	r := recordRecv(t, s)
	r.untilState(wait, ss.Connected)
	return s, r
}

// TestRecvDestroyWhileReading: Destroy from another goroutine ends a Recv
// parked in the socket read: it returns DISCONNECTED, then DESTROYING,
// then io.EOF.
func TestRecvDestroyWhileReading(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	s, r := recvStream(t, rt, "echo")
	go func() {
		time.Sleep(50 * time.Millisecond) // Recv is in the read by then, most likely
		s.Destroy(context.Background())
	}()
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
}

// TestRecvContextMidRead: a ctx that ends while Recv is in the read
// returns ctx's error; the data that arrives afterwards is returned by the
// next Recv, and nothing is lost.
func TestRecvContextMidRead(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	s, r := recvStream(t, rt, "echo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if ev, err := s.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv with a ctx that ends: %v, %v, want context.DeadlineExceeded", ev, err)
	}
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if ev, err := s.Recv(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a done ctx: %v, %v, want context.Canceled", ev, err)
	}
	if err := s.Send(context.Background(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	r.untilBytes(wait, 5)
	s.Destroy(context.Background())
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"after")`, "DISCONNECTED", "DESTROYING")
}

// TestRecvPeerClose: the peer's data and its close are seen at Recv; the
// stream retries (nailed up) and the next connection is read by Recv too.
func TestRecvPeerClose(t *testing.T) {
	var n atomic.Int32
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		if n.Add(1) == 1 {
			c.Write([]byte("bye"))
			c.Close()
			return
		}
		testutil.Echo(c)
	})
	st := rawType("peer", "127.0.0.1", srv.Port())
	st.NailedUp = true
	st.Retry = retry(3, 0, 20)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	s, err := rt.Create(context.Background(), "peer")
	if err != nil {
		t.Fatal(err)
	}
	r := recordRecv(t, s)
	r.untilBytes(wait, 3)
	r.untilState(wait, ss.Connected)
	if err := s.Send(context.Background(), []byte("again")); err != nil {
		t.Fatal(err)
	}
	r.untilBytes(wait, 8)
	s.Destroy(context.Background())
	r.closed(wait)
	r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(0,"bye")`, "DISCONNECTED", "POLL", "CONNECTING",
		"CONNECTED", `rx(0,"again")`, "DISCONNECTED", "DESTROYING")
}

// TestRecvConcurrent: a second Recv while one is under way is refused
// with ErrRecvBusy; the first still returns the next event.
func TestRecvConcurrent(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	s, _ := recvStream(t, rt, "echo")
	got := make(chan error, 1)
	go func() {
		ev, err := s.Recv(context.Background())
		for errors.Is(err, ss.ErrRecvBusy) { // the test's own probe held it
			time.Sleep(time.Millisecond)
			ev, err = s.Recv(context.Background())
		}
		if err == nil && string(ev.Payload) != "x" {
			err = errors.New("first Recv got " + ev.String())
		}
		got <- err
	}()
	deadline := time.Now().Add(wait)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		_, err := s.Recv(done)
		if errors.Is(err, ss.ErrRecvBusy) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second Recv: %v, want ErrRecvBusy", err)
		}
	}
	if err := s.Send(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("first Recv did not return")
	}
	s.Destroy(context.Background())
	r := recordRecv(t, s)
	r.closed(wait)
}

// TestRecvAfterEvents: a stream read with Events first (a pump may hold
// an event) and then with Recv sees every event once, in order.
func TestRecvAfterEvents(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	ctx := context.Background()
	s, err := rt.Create(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	if err := s.Send(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	r.untilState(wait, ss.Connecting)
	if err := s.Send(ctx, []byte("b")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // CONNECTED and the echo queue behind the pump
	r.pull = true
	r.untilBytes(wait, 2)
	if err := s.Send(ctx, []byte("c")); err != nil {
		t.Fatal(err)
	}
	r.untilBytes(wait, 3)
	s.Destroy(ctx)
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"abc")`, "DISCONNECTED", "DESTROYING")
}

// TestRecvOrderWS: a ws echo read with Recv gives what Events gives.
func TestRecvOrderWS(t *testing.T) {
	port := wsServer(t, nil, wsEcho)
	st := &policy.Streamtype{Name: "w", Protocol: policy.WS, Endpoint: "127.0.0.1", Port: uint16(port), HTTPURL: "/", ClientCert: -1, WSBinary: true}
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	recvBoth(t, func(t *testing.T, rec func(*testing.T, *ss.Stream) *recorder) *recorder {
		ctx := context.Background()
		s, err := rt.Create(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		r := rec(t, s)
		n := 0
		for _, m := range []string{"one", "two"} {
			if err := s.Send(ctx, []byte(m)); err != nil {
				t.Fatal(err)
			}
			n += len(m)
			r.untilBytes(wait, n)
		}
		s.Destroy(ctx)
		r.closed(wait)
		return r
	}, "CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"one")`, `rx(SOM|EOM,"two")`, "DISCONNECTED", "DESTROYING")
}

// TestRecvOrderH1: an h1 transaction read with Recv gives what Events
// gives.
func TestRecvOrderH1(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("body"))
	}))
	defer srv.Close()
	rt := newRuntime(t, ss.Config{Policy: newPolicy(sysH1("get", srv.Listener.Addr().String(), "/"))})
	recvBoth(t, func(t *testing.T, rec func(*testing.T, *ss.Stream) *recorder) *recorder {
		s, err := rt.Create(context.Background(), "get")
		if err != nil {
			t.Fatal(err)
		}
		r := rec(t, s)
		s.RequestTx()
		r.untilState(wait, ss.Disconnected)
		s.Destroy(context.Background())
		r.closed(wait)
		return r
	}, "CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM,"body")`, `rx(EOM,"")`, "QOS_ACK_REMOTE", "DISCONNECTED", "DESTROYING")
}

// TestRecvOrderMQTT: QoS 1 publishes read with Recv give what Events
// gives.
func TestRecvOrderMQTT(t *testing.T) {
	b := mqttBroker(t, "127.0.0.1:0")
	st := mqttType("pub", b.Addr, func(st *policy.Streamtype) { st.NailedUp, st.MQTTTopic, st.MQTTQoS = true, "up", 1 })
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	recvBoth(t, func(t *testing.T, rec func(*testing.T, *ss.Stream) *recorder) *recorder {
		ctx := context.Background()
		s, err := rt.Create(ctx, "pub")
		if err != nil {
			t.Fatal(err)
		}
		r := rec(t, s)
		r.untilState(wait, ss.Connected)
		for _, m := range []string{"one", "two"} {
			if err := s.Send(ctx, []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		r.until(wait, func(ev ss.Event) bool { return ev.Kind == ss.StateEvent && ev.Ack == 2 })
		s.Destroy(ctx)
		r.closed(wait)
		return r
	}, "CREATING", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE(ack=1)", "QOS_ACK_REMOTE(ack=2)", "DISCONNECTED", "DESTROYING")
}

// TestRecvStateInterruptsRead: a state the actor emits while Recv is in
// the socket read (the stream timeout's TIMEOUT) is returned at once, and
// the socket is read again by the next Recv.
func TestRecvStateInterruptsRead(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	s, r := recvStream(t, rt, "echo")
	for i := range 3 {
		if err := s.StartTimeout(20 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		r.untilState(wait, ss.Timeout)
		if err := s.Send(context.Background(), []byte{'a' + byte(i)}); err != nil {
			t.Fatal(err)
		}
		r.untilBytes(wait, i+1)
	}
	s.Destroy(context.Background())
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", "TIMEOUT", `rx(0,"a")`, "TIMEOUT", `rx(0,"b")`,
		"TIMEOUT", `rx(0,"c")`, "DISCONNECTED", "DESTROYING")
}

// TestRecvEchoUnderInterrupts: 300 echoes read with Recv while another
// goroutine keeps queueing states (stream timeouts of 0-1 ms) that
// interrupt the reads: every byte arrives once, in order.
func TestRecvEchoUnderInterrupts(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	s, _ := recvStream(t, rt, "echo")
	stopInterrupting := keepInterrupting(s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []byte
	timeouts := 0
	want := make([]byte, 0, 300)
	for i := range 300 {
		b := byte('0' + i%64)
		want = append(want, b)
		if err := s.Send(ctx, []byte{b}); err != nil {
			t.Fatal(err)
		}
		for len(got) < len(want) {
			ev, err := s.Recv(ctx)
			if err != nil {
				t.Fatalf("Recv after %d bytes: %v", len(got), err)
			}
			if ev.Kind == ss.PayloadEvent {
				got = append(got, ev.Payload...)
			} else if ev.State == ss.Timeout {
				timeouts++
			}
		}
	}
	stopInterrupting()
	if string(got) != string(want) {
		t.Fatalf("echoed %q, want %q", got, want)
	}
	if timeouts == 0 {
		t.Fatal("no TIMEOUT came between the echoes: nothing interrupted a read")
	}
	s.Destroy(context.Background())
	recordRecv(t, s).closed(wait)
}
