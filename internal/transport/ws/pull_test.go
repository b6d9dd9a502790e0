package ws

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// pullSink is the test sink with the stream's side of the read role.
type pullSink struct {
	*recSink
	offers chan transport.PullReader
}

func (s *pullSink) OfferPull(r transport.PullReader) { s.offers <- r }

// TestPullHandOver: a plain connection offers its read role; once taken,
// the reader goroutine stops, inside a frame here, and ReadFramed on the
// test's goroutine goes on from where it stopped (the sink's Rx gets
// nothing). A PING read there is answered and a PONG confirms validity;
// Interrupt stops a read, Resume lets the next wait again; the peer's
// close is ReadFramed's *websocket.CloseError, RunConn's Result (nil for
// 1000), and the offer is withdrawn.
func TestPullHandOver(t *testing.T) {
	conns := make(chan net.Conn, 1)
	hold := make(chan struct{})
	srv := newWSServer(t, func(c *websocket.Conn) {
		conns <- c.NetConn()
		<-hold
	})
	defer close(hold)
	sink := &pullSink{recSink: newSink(), offers: make(chan transport.PullReader, 2)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan transport.Result, 1)
	go func() { res <- New(nil).Run(ctx, attempt(wsType(srv.hostPort()), newTx()), sink) }()
	var pr transport.PullReader
	select {
	case pr = <-sink.offers:
	case <-time.After(5 * time.Second):
		t.Fatal("no read role offered")
	}
	fpr, ok := pr.(transport.FramedPullReader)
	if !ok {
		t.Fatalf("offered %T, not a FramedPullReader", pr)
	}
	pc := <-conns

	// Half a frame, read by the reader goroutine; the rest after the
	// hand-over, read by ReadFramed.
	msg := wireFrame(0x81, []byte("across the hand-over"), false, 0)
	pc.Write(msg[:7])
	time.Sleep(5 * time.Millisecond) // the reader goroutine takes the 7 bytes (either way the result is the same)
	pr.Take()
	select {
	case <-pr.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the reader goroutine did not hand the role over")
	}
	pc.Write(msg[7:])
	if data, flags, err := fpr.ReadFramed(); err != nil || string(data) != "across the hand-over" || flags != event.SOM|event.EOM {
		t.Fatalf("ReadFramed: %q %v %v, want the whole message SOM|EOM", data, flags, err)
	}

	pc.Write(wireFrame(0x89, []byte("p"), false, 0))
	pc.Write(wireFrame(0x8a, nil, false, 0))
	pc.Write(wireFrame(0x82, []byte("after"), false, 0))
	if data, _, err := fpr.ReadFramed(); err != nil || string(data) != "after" {
		t.Fatalf("ReadFramed: %q %v, want after", data, err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if f, err := readFrame(pc); err != nil || f.op != opPong || string(f.payload) != "p" || !f.masked {
		t.Fatalf("peer got %+v, %v; want a masked PONG p", f, err)
	}
	if n := sink.count("valid"); n != 1 {
		t.Errorf("validity confirmed %d times, want 1", n)
	}

	pr.Interrupt()
	if _, _, err := fpr.ReadFramed(); !errors.Is(err, transport.ErrInterrupted) {
		t.Fatalf("ReadFramed after Interrupt: %v, want ErrInterrupted", err)
	}
	pr.Resume()
	pc.Write(wireFrame(0x82, []byte("resumed"), false, 0))
	if data, _, err := fpr.ReadFramed(); err != nil || string(data) != "resumed" {
		t.Fatalf("ReadFramed after Resume: %q %v, want resumed", data, err)
	}

	pc.Write(wireFrame(0x88, []byte{0x03, 0xe8}, false, 0))
	var ce *websocket.CloseError
	if _, _, err := fpr.ReadFramed(); !errors.As(err, &ce) || ce.Code != 1000 {
		t.Fatalf("ReadFramed at the close: %v, want close 1000", err)
	}
	if f, err := readFrame(pc); err != nil || f.op != opClose || binary.BigEndian.Uint16(f.payload) != 1000 {
		t.Fatalf("close reply %+v, %v; want close 1000", f, err)
	}
	select {
	case r := <-res:
		if r.Err != nil {
			t.Fatalf("Result %v, want nil (close 1000)", r.Err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the close")
	}
	if r := <-sink.offers; r != nil {
		t.Fatalf("offer not withdrawn: %v", r)
	}
	sink.mu.Lock()
	n := len(sink.data)
	sink.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d chunks went through Rx after the hand-over", n)
	}
}

// TestPullNotOfferedOnTLS: as the raw transport, a TLS connection keeps
// its reader goroutine (no inline read).
func TestPullNotOfferedOnTLS(t *testing.T) {
	ca := newCA(t)
	srv := newWSTLSServer(t, ca, echo)
	st := wsType(srv.Listener.Addr().String())
	st.TLS = true
	st.TrustStore = ca.trustStore()
	sink := &pullSink{recSink: newSink(), offers: make(chan transport.PullReader, 2)}
	a := attempt(st, newTx(msg("x")))
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan transport.Result, 1)
	go func() { res <- New(nil).Run(ctx, a, sink) }()
	sink.waitFor(t, "the echo", func(ev []string) bool { return len(ev) > 0 && ev[len(ev)-1] == "rx SOM|EOM x" })
	cancel()
	<-res
	select {
	case r := <-sink.offers:
		t.Fatalf("TLS connection offered %v", r)
	default:
	}
}
