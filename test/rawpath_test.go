package test

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// seqFill fills b with the byte sequence that starts at offset off of an
// endless stream (a 32-bit counter, little-endian), so any misplaced,
// repeated or lost byte shows.
func seqFill(b []byte, off int64) {
	for i := range b {
		o := off + int64(i)
		b[i] = byte(uint32(o/4) >> (8 * (o % 4)))
	}
}

// TestRawReleasedPayloadsIntact: a raw stream receives 64 MiB from a
// server writing 16 KiB and odd-sized chunks while the application hands
// every payload back with Event.Release at once. The reader reuses released
// buffers for later reads, so any read landing in a buffer still handed to
// the application, or a buffer pooled twice, corrupts the sequence the test
// checks byte by byte.
func TestRawReleasedPayloadsIntact(t *testing.T) {
	t.Parallel()
	const total = 64 << 20
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 70000)
		sizes := []int{16 << 10, 65536, 1, 40000, 5000, 70000}
		for off, i := int64(0), 0; off < total; i++ {
			n := min(int64(sizes[i%len(sizes)]), total-off)
			seqFill(buf[:n], off)
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
			off += n
		}
		_, _ = io.Copy(io.Discard, c) // until the client goes
	})
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("rx", "127.0.0.1", srv.Port()))})
	ctx := context.Background()
	s, err := rt.Create(ctx, "rx")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 70000)
	var got int64
	released := 0
	deadline := time.After(60 * time.Second)
	for got < total {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatalf("channel closed after %d bytes", got)
			}
			if ev.Kind != ss.PayloadEvent {
				if ev.State != ss.Poll && ev.State != ss.Connecting && ev.State != ss.Connected && ev.State != ss.Creating {
					t.Fatalf("%v after %d bytes", ev, got)
				}
				continue
			}
			for p := ev.Payload; len(p) > 0; {
				n := min(len(p), len(want))
				seqFill(want[:n], got)
				if !bytes.Equal(p[:n], want[:n]) {
					t.Fatalf("payload corrupted at offset %d (after %d releases)", got, released)
				}
				got += int64(n)
				p = p[n:]
			}
			ev.Release()
			released++
		case <-deadline:
			t.Fatalf("received %d of %d bytes", got, total)
		}
	}
	ev := ss.Event{Kind: ss.StateEvent, State: ss.Connected}
	ev.Release() // a state event: nothing to release, must not panic
	s.Destroy(ctx)
	for range s.Events() {
	}
}

// TestRawSendOrderUnderBackpressure: one goroutine sends 1200 numbered
// messages of 1 B to 256 KiB to a server that does not read for the first
// 300 ms, so the socket fills, the direct write from Send comes up short
// and the rest waits in the queue for the writer goroutine; later messages
// must neither overtake it nor be lost. Meanwhile a second stream of the
// same runtime echoes small messages through the direct path. The server
// checks the byte sequence.
func TestRawSendOrderUnderBackpressure(t *testing.T) {
	t.Parallel()
	const msgs = 1200
	sizes := []int{1, 64, 1000, 16 << 10, 100_000, 256 << 10, 7}
	var total int64
	for i := range msgs {
		total += int64(sizes[i%len(sizes)])
	}
	result := make(chan error, 1)
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		time.Sleep(300 * time.Millisecond)
		buf := make([]byte, 256<<10)
		want := make([]byte, 256<<10)
		var off int64
		for off < total {
			n, err := c.Read(buf)
			if err != nil {
				result <- err
				return
			}
			seqFill(want[:n], off)
			if !bytes.Equal(buf[:n], want[:n]) {
				result <- &offsetError{off}
				return
			}
			off += int64(n)
		}
		result <- nil
		_, _ = io.Copy(io.Discard, c)
	})
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("bulk", "127.0.0.1", srv.Port()), rawType("echo", "127.0.0.1", echo.Port()))})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := connectDiscarding(t, ctx, rt, "bulk")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the echo stream, alongside
		defer wg.Done()
		e, err := rt.Create(ctx, "echo")
		if err != nil {
			t.Error(err)
			return
		}
		defer e.Destroy(context.Background())
		msg := []byte("0123456789abcdef")
		for range 200 {
			if err := e.Send(ctx, msg); err != nil {
				t.Error(err)
				return
			}
			for got := 0; got < len(msg); {
				ev, ok := <-e.Events()
				if !ok {
					t.Error("echo stream ended")
					return
				}
				if ev.Kind == ss.PayloadEvent {
					if !bytes.Equal(ev.Payload, msg[got:got+len(ev.Payload)]) {
						t.Errorf("echo: %q", ev.Payload)
						return
					}
					got += len(ev.Payload)
				}
			}
		}
	}()
	buf := make([]byte, 256<<10)
	var off int64
	for i := range msgs {
		n := sizes[i%len(sizes)]
		seqFill(buf[:n], off)
		if err := s.Send(ctx, buf[:n]); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		for j := range buf[:n] { // Send copied what it kept: scribbling must not matter
			buf[j] = 0xee
		}
		off += int64(n)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("server did not receive everything")
	}
	wg.Wait()
	if st := s.Stats(); st.TxBytes != uint64(total) {
		t.Fatalf("TxBytes %d, want %d", st.TxBytes, total)
	}
	s.Destroy(context.Background())
}

type offsetError struct{ off int64 }

func (e *offsetError) Error() string {
	return "byte sequence broken near offset " + itoa(int(e.off))
}

// TestRawConnectedStreamGoroutines: a connected raw stream that is not
// sending holds one goroutine (its reader, parked in the poller): no writer
// goroutine waits on an idle connection.
func TestRawConnectedStreamGoroutines(t *testing.T) {
	const n = 100
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("idle", "127.0.0.1", srv.Port()))})
	ctx := context.Background()
	// The runtime's own goroutines, and one echo handler per connection on
	// the server side, are not the stream's: count the server's handlers
	// out by connecting first and measuring after.
	g0 := runtime.NumGoroutine()
	streams := make([]*ss.Stream, n)
	for i := range streams {
		s, err := rt.Create(ctx, "idle")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RequestTx(); err != nil {
			t.Fatal(err)
		}
		record(t, s).untilState(wait, ss.Connected)
		// One round trip: the direct path has written, and its writer
		// role is back.
		if err := s.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
		record(t, s).untilBytes(wait, 1)
		streams[i] = s
	}
	var per float64
	for range 50 { // let pumps and handlers settle
		time.Sleep(20 * time.Millisecond)
		per = float64(runtime.NumGoroutine()-g0)/n - 1 // minus the server's echo handler
		if per <= 1.05 {
			break
		}
	}
	if per > 1.05 {
		t.Fatalf("%.2f goroutines per connected idle raw stream, want 1 (the reader)", per)
	}
	for _, s := range streams {
		s.Destroy(ctx)
	}
}
