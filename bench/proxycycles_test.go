package bench

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil"
)

// BenchmarkProxyStreamCycles: memory per proxied stream across three
// create/destroy cycles of 1000 streams (PERFORMANCE.md: ≤ 4 KB per
// proxied stream, flat across cycles). Run with -benchtime 1x.
//   - /inproc: hand-written SSSv1 links to an in-process proxy; heap and
//     stacks of the process per stream while the 1000 links are open
//     (heap-B/stream-cN: links, their onward raw streams and the echo
//     server's connections) and what remains after each cycle's destroy
//     (left-B/stream-cN, relative to the start).
//   - /ssproxy: this library's proxied client streams through the
//     ssproxy binary (-release-idle 200ms), eight cycles; the binary's
//     resident set per stream while the 1000 streams are open
//     (RSS-B/stream-cN, relative to its start), its resident set after the
//     first and the last cycle's streams are destroyed (RSS-MB-after-c1,
//     -c8) and their ratio (RSS-after-c8/c1; the goal is ≤ 1.1).
func BenchmarkProxyStreamCycles(b *testing.B) {
	const n, cycles = 1000, 3
	srv := testutil.Listen(b, "tcp", "", nil, smallEcho)
	pol := pxPolicy(srv.Port())
	b.Run("inproc", func(b *testing.B) {
		prt := pxNew(b, ss.Config{Policy: pol})
		name, ps := pxServeRuntime(b, prt, proxy.LoopAuto)
		runtime.GC()
		h0 := pxHeap()
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		s0, g0 := ms0.StackInuse, runtime.NumGoroutine()
		for c := 1; c <= cycles; c++ {
			links := make([]net.Conn, n)
			for i := range links {
				links[i] = pxLink(b, name)
				pxLinkRoundTrips(b, links[i], 1)
			}
			runtime.GC()
			b.ReportMetric(float64(int64(pxHeap())-int64(h0))/n, fmt.Sprintf("heap-B/stream-c%d", c))
			if c == 1 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(int64(ms.StackInuse)-int64(s0))/n, "stack-B/stream-c1")
				b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/stream")
			}
			for _, l := range links {
				l.Close()
			}
			for start := time.Now(); ps.Links() > 0 || prt.Stats().Streams > 0; time.Sleep(5 * time.Millisecond) {
				if time.Since(start) > 20*time.Second {
					b.Fatalf("%d links, %d streams left", ps.Links(), prt.Stats().Streams)
				}
			}
			runtime.GC()
			b.ReportMetric(float64(int64(pxHeap())-int64(h0))/n, fmt.Sprintf("left-B/stream-c%d", c))
		}
	})
	b.Run("ssproxy", func(b *testing.B) {
		const cycles = 8
		addr, pid := pxBinary(b, pol, "-release-idle", "200ms")
		rt := pxNew(b, ss.Config{Proxy: addr})
		time.Sleep(100 * time.Millisecond)
		rss0 := pxRSS(b, pid)
		var after1 int64
		for c := 1; c <= cycles; c++ {
			streams := make([]*ss.Stream, n)
			for i := range streams {
				streams[i] = pxConnected(b, rt)
			}
			if c == 1 || c == cycles {
				b.ReportMetric(float64(pxRSS(b, pid)-rss0)/n, fmt.Sprintf("RSS-B/stream-c%d", c))
			}
			for _, s := range streams {
				pxDestroy(s)
			}
			time.Sleep(time.Second) // ssproxy sees the drop and releases
			after := pxRSS(b, pid)
			switch c {
			case 1:
				after1 = after
				b.ReportMetric(float64(after)/1e6, "RSS-MB-after-c1")
			case cycles:
				b.ReportMetric(float64(after)/1e6, "RSS-MB-after-c8")
				b.ReportMetric(float64(after)/float64(after1), "RSS-after-c8/c1")
			}
		}
	})
}
