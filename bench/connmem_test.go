package bench

import (
	"context"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// BenchmarkConnectedRawStreamMem: memory per connected, idle raw stream
// (1000 streams of one runtime, each CONNECTED to a loopback listener that
// accepts and holds the connection without a goroutine). Reports heap,
// goroutine stack and RSS growth per stream and goroutines per stream
// (issue 13: ≤ 8 KB RSS, lws 3 KB). /conn is the floor: 1000 plain
// net.Conn with one reader goroutine each, parked in Read.
//
//	go test -run '^$' -bench ConnectedRawStreamMem -benchtime 1x -count 3 ./bench/
func BenchmarkConnectedRawStreamMem(b *testing.B) {
	const n = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		held = nil
		mu.Unlock()
	})
	port := ln.Addr().(*net.TCPAddr).Port

	b.Run("ss", func(b *testing.B) {
		st := &policy.Streamtype{Name: "raw", Protocol: policy.Raw, Endpoint: "127.0.0.1", Port: uint16(port), ClientCert: -1, NailedUp: true}
		rt, err := ss.New(context.Background(), ss.Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{st}}})
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rt.Close(ctx)
		}()
		ctx := context.Background()
		for range b.N {
			streams := make([]*ss.Stream, n)
			m0 := memNow()
			for i := range streams {
				s, err := rt.Create(ctx, "raw")
				if err != nil {
					b.Fatal(err)
				}
				for ev := range s.Events() {
					if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
						break
					}
					if ev.Kind == ss.StateEvent && ev.State == ss.Unreachable {
						b.Fatal(ev)
					}
				}
				streams[i] = s
			}
			time.Sleep(100 * time.Millisecond)
			m1 := memNow()
			m1.report(b, m0, n)
			runtime.KeepAlive(streams)
			for _, s := range streams {
				s.Destroy(ctx)
				for range s.Events() {
				}
			}
		}
	})
	b.Run("conn", func(b *testing.B) {
		for range b.N {
			conns := make([]net.Conn, n)
			var wg sync.WaitGroup
			m0 := memNow()
			for i := range conns {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = c
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 512)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				}()
			}
			time.Sleep(100 * time.Millisecond)
			m1 := memNow()
			m1.report(b, m0, n)
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		}
	})
}

type memSample struct {
	heap, stack, rss int64
	goroutines       int
}

func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: int64(ms.HeapAlloc), stack: int64(ms.StackInuse), rss: selfRSS(), goroutines: runtime.NumGoroutine()}
}

func (m memSample) report(b *testing.B, m0 memSample, n int) {
	b.ReportMetric(float64(m.heap-m0.heap)/float64(n), "heap-B/stream")
	b.ReportMetric(float64(m.stack-m0.stack)/float64(n), "stack-B/stream")
	b.ReportMetric(float64(m.rss-m0.rss)/float64(n), "RSS-B/stream")
	b.ReportMetric(float64(m.goroutines-m0.goroutines)/float64(n), "goroutines/stream")
}

// selfRSS is this process's resident set in bytes (0 without /proc).
func selfRSS() int64 {
	f, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	for i, c := 0, 0; i < len(f); i++ {
		switch {
		case f[i] == ' ':
			c++
		case f[i] >= '0' && f[i] <= '9' && c == 0:
			size = size*10 + int64(f[i]-'0')
		case f[i] >= '0' && f[i] <= '9' && c == 1:
			res = res*10 + int64(f[i]-'0')
		}
		if c > 1 {
			break
		}
	}
	return res * int64(os.Getpagesize())
}
