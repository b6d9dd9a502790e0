package test

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// TestProxiedClientBuflen: a proxied stream's receive queue is sized by
// the streamtype's client_buflen from CREATE_RESULT: with 8 KiB, an unread
// stream takes in far less of a 1 MiB burst than with the default
// (256 KiB).
func TestProxiedClientBuflen(t *testing.T) {
	burst := bytes.Repeat([]byte("x"), 1<<20)
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		c.Write(burst)
		c.Read(make([]byte, 1)) // until the client closes
	})
	small := rawType("small", "127.0.0.1", srv.Port())
	small.ClientBuflen = 8 << 10
	dflt := rawType("default", "127.0.0.1", srv.Port())
	addr, _ := inProcessProxy(t, newPolicy(small, dflt))
	rt := newRuntime(t, ss.Config{Proxy: addr})
	queued := map[string]uint64{}
	for _, name := range []string{"small", "default"} {
		s, err := rt.Create(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		s.Connect()
		// Read nothing while the burst arrives; the queue fills to its bound.
		// Full means no growth for 250 ms (a busy machine can pause the
		// proxy's forwarding for tens of milliseconds; 20 ms was too short).
		var last uint64
		for stable, start := 0, time.Now(); stable < 10 && time.Since(start) < 10*time.Second; {
			time.Sleep(25 * time.Millisecond)
			n := s.Stats().RxBytes
			if n == last && n > 0 {
				stable++
			} else {
				stable = 0
			}
			last = n
		}
		queued[name] = s.Stats().RxBytes
		s.Destroy(context.Background())
		for range s.Events() {
		}
	}
	t.Logf("queued %v", queued)
	// At most the budget plus one frame (a queue always takes one chunk).
	if queued["small"] == 0 || queued["small"] > 8<<10+65519 {
		t.Errorf("client_buflen 8 KiB: %d bytes queued, want 1..8 KiB + one 65519-byte frame", queued["small"])
	}
	// The default budget is 256 KiB; a chunk that would take the queue over
	// it waits, so the queue is full anywhere above the budget less one
	// chunk (a 64 KiB onward read can arrive as one 65519-byte frame).
	if queued["default"] < 256<<10-64<<10 {
		t.Errorf("default: %d bytes queued, want ≥ 192 KiB (the 256 KiB budget less one chunk)", queued["default"])
	}
}
