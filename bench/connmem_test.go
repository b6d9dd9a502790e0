package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// BenchmarkConnectedRawStreamMem: memory per connected, idle raw stream,
// at 1000 and 10,000 streams of one runtime, each CONNECTED to a loopback
// listener in a child process (TestHoldServer) that accepts and holds the
// connections: the server side is not in the figures, and 10,000 streams
// plus their accepted sockets would not fit one process's 20,000
// descriptors. As bench/lws/ssclient's "connected" test: all n streams are
// created (nailed_up: they connect at once), then each is waited for until
// CONNECTED; connect-s is the time from the first Create to the last
// CONNECTED. Reports heap, goroutine stack and RSS growth per stream and
// goroutines per stream (issue 13: ≤ 8 KB RSS, lws 3 KB): RSS-B/stream
// right after the streams connected, RSS-held-B/stream once the memory
// the burst of setup left free (idle-heap-B/stream) went back to the OS.
// /conn is the floor: n plain net.Conn with one reader goroutine each,
// parked in Read. RSS figures are for a fresh process: run one
// sub-benchmark per process, as below.
//
//	go test -c -o bench.test ./bench/
//	for t in ss/1000 ss/10000 ss-loop/1000 ss-loop/10000 conn/1000 conn/10000; do
//		./bench.test -test.run '^$' -test.bench "ConnectedRawStreamMem/$t\$" -test.benchtime 1x
//	done
func BenchmarkConnectedRawStreamMem(b *testing.B) {
	addr := holdServer(b)
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	for _, n := range []int{1000, 10000} {
		for _, side := range []string{"ss", "ss-loop"} {
			b.Run(fmt.Sprintf("%s/%d", side, n), func(b *testing.B) {
				st := &policy.Streamtype{Name: "raw", Protocol: policy.Raw, Endpoint: host, Port: uint16(port), ClientCert: -1, NailedUp: true}
				// ss-loop: Config.EventLoop, the connections parked in the
				// runtime's event loop (no reader goroutine each).
				rt, err := ss.New(context.Background(), ss.Config{Policy: &policy.Policy{Streamtypes: []*policy.Streamtype{st}}, EventLoop: side == "ss-loop"})
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
					t0 := time.Now()
					for i := range streams {
						s, err := rt.Create(ctx, "raw")
						if err != nil {
							b.Fatal(err)
						}
						streams[i] = s
					}
					for _, s := range streams {
						for ev := range s.Events() {
							if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
								break
							}
							if ev.Kind == ss.StateEvent && ev.State == ss.Unreachable {
								b.Fatal(ev)
							}
						}
					}
					b.ReportMetric(time.Since(t0).Seconds(), "connect-s")
					time.Sleep(100 * time.Millisecond)
					m1 := sample(false)
					m1.report(b, m0, n)
					runtime.KeepAlive(streams)
					for _, s := range streams {
						go s.Destroy(ctx)
					}
					for _, s := range streams {
						for range s.Events() {
						}
					}
				}
			})
		}
		b.Run(fmt.Sprintf("conn/%d", n), func(b *testing.B) {
			for range b.N {
				conns := make([]net.Conn, n)
				var wg sync.WaitGroup
				m0 := memNow()
				t0 := time.Now()
				for i := range conns {
					c, err := net.Dial("tcp", addr)
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
				b.ReportMetric(time.Since(t0).Seconds(), "connect-s")
				time.Sleep(100 * time.Millisecond)
				m1 := sample(false)
				m1.report(b, m0, n)
				for _, c := range conns {
					c.Close()
				}
				wg.Wait()
			}
		})
	}
}

// holdServerEnv makes the test binary run TestHoldServer as
// BenchmarkConnectedRawStreamMem's child process.
const holdServerEnv = "SS_BENCH_HOLD_SERVER"

// holdServer starts this test binary again as a loopback listener that
// accepts and holds connections (TestHoldServer) and returns its address;
// the child ends when the benchmark does.
func holdServer(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldServer$", "-test.bench=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("hold server: %v", err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	if _, _, err := net.SplitHostPort(addr); err != nil {
		b.Fatalf("hold server said %q", line)
	}
	return addr
}

// TestHoldServer is BenchmarkConnectedRawStreamMem's child process (run
// with SS_BENCH_HOLD_SERVER set; skipped otherwise): it listens on
// loopback, prints "listening ADDR", holds every connection it accepts
// until the peer closes it (its memory is not measured), and ends when its
// stdin closes.
func TestHoldServer(t *testing.T) {
	if os.Getenv(holdServerEnv) == "" {
		t.Skip("the child process of BenchmarkConnectedRawStreamMem")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	var mu sync.Mutex
	held := map[net.Conn]struct{}{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, c)
				c.Close()
				mu.Lock()
				delete(held, c)
				mu.Unlock()
			}()
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	ln.Close()
	mu.Lock()
	for c := range held {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
}

type memSample struct {
	heap, stack, rss int64
	// idle is the heap the runtime keeps mapped but unused (HeapIdle -
	// HeapReleased): what a burst of setup left behind; held is the RSS
	// once that is returned to the OS (debug.FreeOSMemory).
	idle, held int64
	goroutines int
}

// memNow measures after a collection. The baseline (first) sample returns
// free memory to the OS first, so that deltas start from what is held;
// later samples measure RSS as it is (after the burst of setup), then
// return free memory and measure again (held).
func memNow() memSample {
	return sample(true)
}

func sample(baseline bool) memSample {
	if baseline {
		debug.FreeOSMemory()
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memSample{heap: int64(ms.HeapAlloc), stack: int64(ms.StackInuse), rss: selfRSS(), goroutines: runtime.NumGoroutine(),
		idle: int64(ms.HeapIdle - ms.HeapReleased)}
	if !baseline {
		debug.FreeOSMemory()
	}
	m.held = selfRSS()
	return m
}

func (m memSample) report(b *testing.B, m0 memSample, n int) {
	b.ReportMetric(float64(m.heap-m0.heap)/float64(n), "heap-B/stream")
	b.ReportMetric(float64(m.stack-m0.stack)/float64(n), "stack-B/stream")
	b.ReportMetric(float64(m.rss-m0.rss)/float64(n), "RSS-B/stream")
	b.ReportMetric(float64(m.idle-m0.idle)/float64(n), "idle-heap-B/stream")
	b.ReportMetric(float64(m.held-m0.held)/float64(n), "RSS-held-B/stream")
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
