package raw

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// collect is a Sink gathering received bytes.
type collect struct {
	mu  sync.Mutex
	buf bytes.Buffer
	got chan struct{}
}

func (c *collect) State(event.State, uint32)  {}
func (c *collect) SetMetadata(string, string) {}
func (c *collect) ValidityConfirmed()         {}
func (c *collect) Logger() *slog.Logger       { return slog.New(slog.DiscardHandler) }
func (c *collect) Rx(_ context.Context, p []byte, _ event.Flags) error {
	c.mu.Lock()
	c.buf.Write(p)
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
	return nil
}
func (c *collect) len() int { c.mu.Lock(); defer c.mu.Unlock(); return c.buf.Len() }

// idleTx never has data.
type idleTx struct{}

func (idleTx) Next(ctx context.Context) (transport.Chunk, error) {
	<-ctx.Done()
	return transport.Chunk{}, ctx.Err()
}
func (idleTx) Pending() bool  { return false }
func (idleTx) LenHint() int64 { return -1 }

// pattern returns n bytes of a counting pattern starting at off.
func pattern(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + i) * 13 >> 2)
	}
	return b
}

// TestReadLoopIntegrity: small and large reads arrive whole and in order,
// over a socket (pooled buffers, readLoopPolled) and over net.Pipe (no file
// descriptor: readLoopAdaptive).
func TestReadLoopIntegrity(t *testing.T) {
	sizes := []int{1, 100, 70 << 10, 3, 40 << 10, 5000, 200 << 10, 7}
	total := 0
	for _, n := range sizes {
		total += n
	}
	run := func(t *testing.T, a, b net.Conn) {
		c := &collect{got: make(chan struct{}, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- Pipe(ctx, b, idleTx{}, c) }()
		off := 0
		for _, n := range sizes {
			if _, err := a.Write(pattern(off, n)); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		a.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Pipe: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Pipe did not end; %d of %d bytes", c.len(), total)
		}
		if !bytes.Equal(c.buf.Bytes(), pattern(0, total)) {
			t.Fatalf("got %d bytes, want %d in order", c.buf.Len(), total)
		}
	}
	t.Run("socket", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		a, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		run(t, a, b)
	})
	t.Run("pipe", func(t *testing.T) {
		a, b := net.Pipe()
		run(t, a, b)
	})
}

// TestIdleConnectionHoldsNoReadBuffer: connected sockets that received a
// little data and then idle hold no 64 KiB read buffer each.
func TestIdleConnectionHoldsNoReadBuffer(t *testing.T) {
	const n = 200
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	peers := make([]net.Conn, 0, n)
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	h0 := heap()
	for range n {
		a, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, a)
		c := &collect{got: make(chan struct{}, 1)}
		wg.Add(1)
		go func() { defer wg.Done(); Pipe(ctx, b, idleTx{}, c) }()
		a.Write([]byte("hello"))
		<-c.got
	}
	per := (heap() - h0) / n
	t.Logf("heap per idle connection: %d bytes", per)
	if per > 16<<10 {
		t.Fatalf("heap per idle connection %d bytes: a read buffer is held", per)
	}
}
