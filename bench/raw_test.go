package bench

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// The raw pairs: /ss is a stream of the ss runtime over the raw transport,
// /raw a plain net.Conn, both against the same loopback server in the same
// run. Raw64BEcho/chan is the floor of any API that delivers received data
// over a channel (one goroutine hand-off per read); measured here ss is
// within ~10% of it and ~1.5x raw.
//
//	go test -run '^$' -bench 'Raw|Idle' -count 5 ./bench/

func rawRuntime(b *testing.B, port int) *ss.Runtime {
	b.Helper()
	st := &policy.Streamtype{Name: "raw", Protocol: policy.Raw, Endpoint: "127.0.0.1", Port: uint16(port), ClientCert: -1, NailedUp: true}
	rt, err := ss.New(context.Background(), ss.Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{st}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Close(ctx)
	})
	return rt
}

// rawConnected creates the nailed-up stream and waits for CONNECTED.
func rawConnected(b *testing.B, rt *ss.Runtime) *ss.Stream {
	b.Helper()
	s, err := rt.Create(context.Background(), "raw")
	if err != nil {
		b.Fatal(err)
	}
	for ev := range s.Events() {
		if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
			return s
		}
		if ev.Kind == ss.StateEvent && ev.State == ss.AllRetriesFailed {
			b.Fatal("not connected")
		}
	}
	b.Fatal("stream ended")
	return nil
}

// BenchmarkRaw64BEcho: 64 B round trips through a loopback echo server.
func BenchmarkRaw64BEcho(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, testutil.Echo)
	msg := make([]byte, 64)
	b.Run("ss", func(b *testing.B) {
		rt := rawRuntime(b, srv.Port())
		s := rawConnected(b, rt)
		ctx := context.Background()
		ev := s.Events()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := s.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
			for got := 0; got < len(msg); {
				e := <-ev
				got += len(e.Payload)
			}
		}
		b.StopTimer()
		s.Destroy(ctx)
	})
	// ss-recv: the same stream read with Stream.Recv (pull mode: the echo
	// is read on this goroutine).
	b.Run("ss-recv", func(b *testing.B) {
		rt := rawRuntime(b, srv.Port())
		s := rawConnected(b, rt)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		if err := recvEcho(ctx, s, msg, b.N); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Destroy(ctx)
	})
	// chan: the floor of any channel-delivery API, without ss: a reader
	// goroutine hands each read (copied) to the caller over a channel.
	b.Run("chan", func(b *testing.B) {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		ch := make(chan []byte)
		go func() {
			defer close(ch)
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				ch <- append([]byte(nil), buf[:n]...)
			}
		}()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			for got := 0; got < len(msg); {
				got += len(<-ch)
			}
		}
		b.StopTimer()
		c.Close()
		for range ch {
		}
	})
	b.Run("raw", func(b *testing.B) {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 64)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// countingServer counts the bytes it receives.
type countingServer struct {
	*testutil.Server
	n atomic.Int64
}

func newCountingServer(b *testing.B) *countingServer {
	cs := &countingServer{}
	cs.Server = testutil.Listen(b, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			cs.n.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	return cs
}

func (cs *countingServer) waitFor(b *testing.B, n int64) {
	deadline := time.Now().Add(30 * time.Second)
	for cs.n.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("server received %d of %d bytes", cs.n.Load(), n)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// BenchmarkRaw16KiBOneWay: tx throughput, 16 KiB messages to a counting
// server (the time includes the server having received everything).
func BenchmarkRaw16KiBOneWay(b *testing.B) {
	msg := make([]byte, 16<<10)
	b.Run("ss", func(b *testing.B) {
		cs := newCountingServer(b)
		rt := rawRuntime(b, cs.Port())
		s := rawConnected(b, rt)
		ctx := context.Background()
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := s.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		cs.waitFor(b, int64(b.N)*int64(len(msg)))
		b.StopTimer()
		s.Destroy(ctx)
	})
	b.Run("raw", func(b *testing.B) {
		cs := newCountingServer(b)
		c, err := net.Dial("tcp", cs.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		cs.waitFor(b, int64(b.N)*int64(len(msg)))
	})
}

// BenchmarkRaw16KiBReceive: rx throughput, a server writing 16 KiB writes
// as fast as the client reads.
func BenchmarkRaw16KiBReceive(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, func(c net.Conn) {
		msg := make([]byte, 16<<10)
		for {
			if _, err := c.Write(msg); err != nil {
				return
			}
		}
	})
	const size = 16 << 10
	// ss hands each payload back (Event.Release) as the raw side reuses its
	// read buffer; ss-keep keeps them (each read is a new buffer for the
	// garbage collector).
	for _, release := range []bool{true, false} {
		name := "ss"
		if !release {
			name = "ss-keep"
		}
		b.Run(name, func(b *testing.B) {
			rt := rawRuntime(b, srv.Port())
			s := rawConnected(b, rt)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			total := int64(b.N) * size
			ev := s.Events()
			for got := int64(0); got < total; {
				e := <-ev
				got += int64(len(e.Payload))
				if release {
					e.Release()
				}
			}
			b.StopTimer()
			s.Destroy(context.Background())
			for range s.Events() {
			}
		})
	}
	b.Run("raw", func(b *testing.B) {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		b.SetBytes(size)
		b.ReportAllocs()
		b.ResetTimer()
		total := int64(b.N) * size
		for got := int64(0); got < total; {
			n, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			got += int64(n)
		}
	})
}

const idleStreams = 100_000

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIdleStreamHeap: heap per idle stream with 100k streams (/ss: a
// created, not-connected stream whose CREATING was read; /actor: an idle
// protoactor actor). Reports bytes/stream and goroutines/stream.
func BenchmarkIdleStreamHeap(b *testing.B) {
	b.Run("ss", func(b *testing.B) {
		st := &policy.Streamtype{Name: "idle", Protocol: policy.Raw, Endpoint: "127.0.0.1", Port: 9, ClientCert: -1}
		pol := &policy.Policy{Streamtypes: []*policy.Streamtype{st}}
		for range b.N {
			rt, err := ss.New(context.Background(), ss.Config{Policy: pol})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			streams := make([]*ss.Stream, idleStreams)
			g0 := runtime.NumGoroutine()
			before := heapAlloc()
			for i := range streams {
				s, err := rt.Create(ctx, "idle")
				if err != nil {
					b.Fatal(err)
				}
				<-s.Events() // CREATING
				streams[i] = s
			}
			time.Sleep(100 * time.Millisecond) // let the actors go idle
			after := heapAlloc()
			b.ReportMetric(float64(after-before)/idleStreams, "bytes/stream")
			b.ReportMetric(float64(runtime.NumGoroutine()-g0)/idleStreams, "goroutines/stream")
			runtime.KeepAlive(streams)
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			go func() {
				for _, s := range streams {
					for range s.Events() {
					}
				}
			}()
			rt.Close(cctx)
			cancel()
		}
	})
	b.Run("actor", func(b *testing.B) {
		for range b.N {
			sys := actor.NewSystem(nil)
			props := actor.PropsFromFunc(func(c actor.Context) {
				if _, ok := c.Message().(*actor.Stopped); ok {
					sys.Forget(c.Self())
				}
			})
			g0 := runtime.NumGoroutine()
			before := heapAlloc()
			pids := make([]*actor.PID, idleStreams)
			for i := range pids {
				pid, err := sys.Spawn(props, "a-")
				if err != nil {
					b.Fatal(err)
				}
				pids[i] = pid
			}
			time.Sleep(100 * time.Millisecond)
			after := heapAlloc()
			b.ReportMetric(float64(after-before)/idleStreams, "bytes/stream")
			b.ReportMetric(float64(runtime.NumGoroutine()-g0)/idleStreams, "goroutines/stream")
			runtime.KeepAlive(pids)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			sys.Shutdown(ctx)
			cancel()
		}
	})
}
