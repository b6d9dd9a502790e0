package raw

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/transport"
)

// pullSink is the test sink with the stream's side of the read role.
type pullSink struct {
	sink
	offers chan transport.PullReader
}

func (s *pullSink) OfferPull(r transport.PullReader) { s.offers <- r }

// TestPullHandOver: once the read role is taken, the reader goroutine
// stops reading and waits; Read on the test's goroutine gets the bytes
// (the sink's Rx none), Interrupt stops a Read and Resume lets the next
// one wait again, and the peer's close is Read's io.EOF, which ends the
// reader goroutine with nil (a peer close, as readLoopPolled).
func TestPullHandOver(t *testing.T) {
	peer := make(chan net.Conn, 1)
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		peer <- c
		io.Copy(io.Discard, c) // until the test closes c
	})
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	k := &pullSink{offers: make(chan transport.PullReader, 2)}
	pr := &directWriter{conn: conn, rc: rc}
	offerPull(pr, k)
	if got := <-k.offers; got != pr {
		t.Fatalf("offered %v, want the connection's writer", got)
	}
	ctx := context.Background()
	end := make(chan error, 1)
	go func() { end <- pr.handOver(ctx, k, readLoopPolled(ctx, rc, k)) }()
	pc := <-peer

	pr.Take()
	select {
	case <-pr.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the reader goroutine did not hand the role over")
	}
	pc.Write([]byte("x"))
	if data, err := pr.Read(); err != nil || string(data) != "x" {
		t.Fatalf("Read: %q, %v, want x", data, err)
	}
	pr.Interrupt()
	if data, err := pr.Read(); !errors.Is(err, transport.ErrInterrupted) {
		t.Fatalf("Read after Interrupt: %q, %v, want ErrInterrupted", data, err)
	}
	pr.Resume()
	pc.Write([]byte("yz"))
	if data, err := pr.Read(); err != nil || string(data) != "yz" {
		t.Fatalf("Read after Resume: %q, %v, want yz", data, err)
	}
	pc.Close()
	if data, err := pr.Read(); err != io.EOF {
		t.Fatalf("Read after the peer closed: %q, %v, want io.EOF", data, err)
	}
	select {
	case err := <-end:
		if err != nil {
			t.Fatalf("reader ended with %v, want nil (peer closed)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader goroutine did not end")
	}
	if got := <-k.offers; got != nil {
		t.Fatalf("withdrawn with %v, want nil", got)
	}
	if k.rx != nil {
		t.Fatalf("the reader goroutine queued %q after handing the role over", k.rx)
	}
}
