package test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// wsRecvType is a binary ws streamtype for the loopback server on port.
func wsRecvType(port int) *policy.Streamtype {
	return &policy.Streamtype{Name: "w", Protocol: policy.WS, Endpoint: "127.0.0.1", Port: uint16(port), HTTPURL: "/", ClientCert: -1, WSBinary: true}
}

// keepInterrupting queues states on s (stream timeouts of 0-1 ms, one
// every 200 µs) from another goroutine until the returned stop is called:
// each interrupts a Recv that is in the read.
func keepInterrupting(s *ss.Stream) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			s.StartTimeout(time.Duration(i%2) * time.Millisecond / 2)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// TestRecvWSPeerClose: on ws, Recv reads the socket itself: the peer's
// message and its close (code 4000) are seen at Recv, the close is
// answered, and the retry's new connection is read by Recv too.
func TestRecvWSPeerClose(t *testing.T) {
	var n atomic.Int32
	answered := make(chan int, 1)
	port := wsServer(t, nil, func(c *websocket.Conn) {
		if n.Add(1) > 1 {
			wsEcho(c)
			return
		}
		c.WriteMessage(websocket.BinaryMessage, []byte("bye"))
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "go away"), time.Now().Add(time.Second))
		_, _, err := c.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			answered <- ce.Code
		}
	})
	st := wsRecvType(port)
	st.NailedUp = true
	st.Retry = retry(3, 0, 20)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	s, err := rt.Create(context.Background(), "w")
	if err != nil {
		t.Fatal(err)
	}
	r := recordRecv(t, s)
	r.untilBytes(wait, 3)
	r.untilState(wait, ss.Connected)
	select {
	case code := <-answered:
		if code != 4000 {
			t.Fatalf("close answered with %d, want 4000", code)
		}
	case <-time.After(wait):
		t.Fatal("the peer's close was not answered")
	}
	if err := s.Send(context.Background(), []byte("again")); err != nil {
		t.Fatal(err)
	}
	r.untilBytes(wait, 8)
	s.Destroy(context.Background())
	r.closed(wait)
	r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"bye")`, "DISCONNECTED", "POLL", "CONNECTING",
		"CONNECTED", `rx(SOM|EOM,"again")`, "DISCONNECTED", "DESTROYING")
}

// TestRecvWSEchoUnderInterrupts: 200 ws echoes of 1 B to 6 KiB read with
// Recv while another goroutine keeps queueing states (stream timeouts of
// 0-1 ms) that interrupt the reads, inside frames too (the frame reader
// resumes): every message arrives once, whole, in order, as one SOM|EOM
// event.
func TestRecvWSEchoUnderInterrupts(t *testing.T) {
	port := wsServer(t, nil, wsEcho)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(wsRecvType(port))})
	s, _ := recvStream(t, rt, "w")
	stopInterrupting := keepInterrupting(s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	timeouts := 0
	for i := range 200 {
		msg := bytes.Repeat([]byte{byte('a' + i%26)}, 1+(i*997)%(6<<10))
		if err := s.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		for got := false; !got; {
			ev, err := s.Recv(ctx)
			if err != nil {
				t.Fatalf("Recv at message %d: %v", i, err)
			}
			switch {
			case ev.Kind == ss.PayloadEvent:
				if !bytes.Equal(ev.Payload, msg) || ev.Flags != ss.SOM|ss.EOM {
					t.Fatalf("message %d: %d bytes %v, want %d bytes SOM|EOM", i, len(ev.Payload), ev.Flags, len(msg))
				}
				got = true
			case ev.State == ss.Timeout:
				timeouts++
			}
		}
	}
	stopInterrupting()
	if timeouts == 0 {
		t.Fatal("no TIMEOUT came between the echoes: nothing interrupted a read")
	}
	s.Destroy(context.Background())
	recordRecv(t, s).closed(wait)
}
