package bench

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil"
)

// BenchmarkProxyLinkMemory: the ssproxy binary's resident set per proxied
// stream, for n hand-written SSSv1 links (pxLink, as the lws load client
// does) to a loopback echo server: idle-RSS-B/stream once all are
// CONNECTED, busy-RSS-B/stream after a 64 B round trip on each,
// setup-s the time to open all n to CONNECTED, and closed-RSS-B/stream
// once they are closed and ssproxy has returned memory to the OS
// (-release-idle 200ms). Run with -benchtime 1x. 9000 is the most that
// fits a 20,000-descriptor limit: ssproxy holds two per stream (the link
// and the onward socket), this process two (the link's client end and the
// echo server's end); 10,000 would need 20,000 in ssproxy alone.
//
//	go test -run '^$' -bench 'ProxyLinkMemory/n=1000$/' -benchtime 1x ./bench/
func BenchmarkProxyLinkMemory(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, smallEcho)
	for _, n := range []int{1000, 9000} {
		for _, mode := range []string{"ssproxy", "ssproxy-net"} {
			b.Run(fmt.Sprintf("n=%d/mode=%s", n, mode), func(b *testing.B) {
				pxLinkMemory(b, srv, n, mode == "ssproxy-net")
			})
		}
	}
}

// pxLinkMemory is one BenchmarkProxyLinkMemory run of n links; net: with
// -event-loop off.
func pxLinkMemory(b *testing.B, srv *testutil.Server, n int, netPath bool) {
	flags := []string{"-release-idle", "200ms", "-max-links", "20000",
		"-max-links-per-uid", "20000", "-max-links-per-process", "20000", "-max-queued-bytes", "-1"}
	if netPath {
		flags = append(flags, "-event-loop", "off")
	}
	addr, pid := pxBinary(b, pxPolicy(srv.Port()), flags...)
	name := strings.TrimPrefix(addr, "unix:")
	time.Sleep(300 * time.Millisecond)
	rss0 := pxRSS(b, pid)
	links := make([]net.Conn, n)
	start := time.Now()
	for i := range links {
		links[i] = pxLink(b, name)
	}
	setup := time.Since(start)
	idle := pxRSS(b, pid)
	for _, c := range links {
		pxLinkRoundTrips(b, c, 1)
	}
	busy := pxRSS(b, pid)
	for _, c := range links {
		c.Close()
	}
	time.Sleep(time.Second)
	closed := pxRSS(b, pid)
	b.ReportMetric(setup.Seconds(), "setup-s")
	b.ReportMetric(float64(idle-rss0)/float64(n), "idle-RSS-B/stream")
	b.ReportMetric(float64(busy-rss0)/float64(n), "busy-RSS-B/stream")
	b.ReportMetric(float64(closed-rss0)/float64(n), "closed-RSS-B/stream")
}

// BenchmarkProxyLinkHeap: the in-process proxy's heap and stacks per idle
// proxied raw stream (event loop on), for 1000 hand-written SSSv1 links
// whose onward peer is a child process (TestHoldServer), so that the
// peer's side is not counted: heap-B/stream (HeapAlloc after two
// collections, relative to before the links; the links' client ends, a
// net.Conn each in this process, included), stack-B/stream,
// goroutines/stream; left-heap-B/stream and left-stack-B/stream once
// they are all closed and collected. With SS_BENCH_HEAPPROFILE=FILE it
// writes a heap profile while the links are open, and FILE.closed after
// (run with -test.memprofilerate 1 for every allocation; PERFORMANCE.md,
// "Memory per proxied stream"):
//
//	go test -c -o bench.test ./bench/
//	SS_BENCH_HEAPPROFILE=heap.out ./bench.test -test.run '^$' -test.bench 'ProxyLinkHeap' -test.benchtime 1x -test.memprofilerate 1
//	go tool pprof -sample_index inuse_space -top bench.test heap.out
func BenchmarkProxyLinkHeap(b *testing.B) {
	const n = 1000
	addr := holdServer(b)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	prt := pxNew(b, ss.Config{Policy: pxPolicy(port)})
	name, ps := pxServeRuntime(b, prt, proxy.LoopAuto)
	for range b.N {
		m0 := memNow()
		links := make([]net.Conn, n)
		for i := range links {
			links[i] = pxLink(b, name)
		}
		time.Sleep(100 * time.Millisecond)
		m1 := sample(false)
		writeHeapProfile(b, "")
		b.ReportMetric(float64(m1.heap-m0.heap)/n, "heap-B/stream")
		b.ReportMetric(float64(m1.stack-m0.stack)/n, "stack-B/stream")
		b.ReportMetric(float64(m1.goroutines-m0.goroutines)/n, "goroutines/stream")
		for _, c := range links {
			c.Close()
		}
		for start := time.Now(); ps.Links() > 0 || prt.Stats().Streams > 0; time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 20*time.Second {
				b.Fatalf("%d links, %d streams left", ps.Links(), prt.Stats().Streams)
			}
		}
		// What the closed links left: heap and stacks after the pools'
		// victim caches are gone too (two collections in sample).
		runtime.GC()
		m2 := sample(false)
		writeHeapProfile(b, ".closed")
		b.ReportMetric(float64(m2.heap-m0.heap)/n, "left-heap-B/stream")
		b.ReportMetric(float64(m2.stack-m0.stack)/n, "left-stack-B/stream")
	}
}

// writeHeapProfile writes a heap profile to $SS_BENCH_HEAPPROFILE followed
// by suffix, when that is set.
func writeHeapProfile(b *testing.B, suffix string) {
	f := os.Getenv("SS_BENCH_HEAPPROFILE")
	if f == "" {
		return
	}
	out, err := os.Create(f + suffix)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	if err := pprof.Lookup("heap").WriteTo(out, 0); err != nil {
		b.Fatal(err)
	}
}
