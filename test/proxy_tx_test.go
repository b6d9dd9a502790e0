package test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// TestProxiedTxSlowPeer: 16 KiB sends from a proxied client (each split
// into 4061-byte TX_PAYLOAD frames, joined again by the proxy) to an onward
// peer that does not read at first and then reads in small pieces: every
// byte arrives, in order (back-pressure from the onward socket through the
// proxy's transmit queue to the client, no loss).
func TestProxiedTxSlowPeer(t *testing.T) {
	const msgs, size = 96, 16 << 10
	const total = msgs * size
	got := make(chan []byte, 1)
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		time.Sleep(300 * time.Millisecond) // the queues fill
		var b bytes.Buffer
		buf := make([]byte, 3000)
		for b.Len() < total {
			n, err := c.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
			if b.Len()%(64<<10) < n {
				time.Sleep(2 * time.Millisecond)
			}
		}
		got <- b.Bytes()
		io.Copy(io.Discard, c)
	})
	st := rawType("bulk", "127.0.0.1", srv.Port())
	addr, _ := inProcessProxy(t, newPolicy(st))
	rt := newRuntime(t, ss.Config{Proxy: addr})
	ctx := context.Background()
	s := connectDiscarding(t, ctx, rt, "bulk")
	defer s.Destroy(ctx)
	want := make([]byte, 0, total)
	for i := range msgs {
		off := i * size % patternLen
		want = append(want, pattern[off:off+size]...)
	}
	sent := make(chan error, 1)
	go func() {
		for i := range msgs {
			if err := s.Send(ctx, want[i*size:(i+1)*size]); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			n := 0
			for n < min(len(b), len(want)) && b[n] == want[n] {
				n++
			}
			t.Fatalf("peer received %d bytes, the first %d as sent; want %d", len(b), n, len(want))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the peer did not receive everything within 30 s")
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}
