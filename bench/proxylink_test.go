package bench

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/testutil"
)

// The proxy alone, without this library's client runtime in the way: an
// SSSv1 client written by hand (pxLink, as the lws load client does) against
// an in-process proxy (/inproc) and against the ssproxy binary (/ssproxy,
// its event loop; /ssproxy-net, -event-loop off), and the same 64 B round trips straight over TCP to the same echo server
// (/direct), in the same run:
//
//	go test -run '^$' -bench 'ProxyLink' -count 6 ./bench/ | benchstat -col /mode -
//
// PERFORMANCE.md ("ssproxy") reads these.

// pxLinkDial returns a dial function for mode: a hand-written SSSv1 link
// ("inproc", "ssproxy") or a plain TCP connection ("direct") to srv.
func pxLinkDial(b *testing.B, mode string, srv *testutil.Server) func() net.Conn {
	dial, _ := pxLinkDialPID(b, mode, srv)
	return dial
}

// pxLinkDialPID is pxLinkDial that also returns the ssproxy process id
// (0 for the other modes).
func pxLinkDialPID(b *testing.B, mode string, srv *testutil.Server) (func() net.Conn, int) {
	switch mode {
	case "direct":
		return func() net.Conn {
			c, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			return c
		}, 0
	case "ssproxy", "ssproxy-net":
		var flags []string
		if mode == "ssproxy-net" {
			flags = []string{"-event-loop", "off"} // one goroutine per link
		}
		addr, pid := pxBinary(b, pxPolicy(srv.Port()), flags...)
		name := strings.TrimPrefix(addr, "unix:")
		return func() net.Conn { return pxLink(b, name) }, pid
	}
	name := strings.TrimPrefix(pxServe(b, pxPolicy(srv.Port())), "unix:")
	return func() net.Conn { return pxLink(b, name) }, 0
}

// pxRoundTrip does one 64 B round trip on c: raw bytes for "direct", a
// TX_PAYLOAD answered by RX_PAYLOADs otherwise.
func pxRoundTrip(b *testing.B, mode string, c net.Conn) {
	if mode != "direct" {
		pxLinkRoundTrips(b, c, 1)
		return
	}
	var buf [64]byte
	if _, err := c.Write(buf[:]); err != nil {
		b.Error(err)
		return
	}
	for got := 0; got < len(buf); {
		n, err := c.Read(buf[got:])
		if err != nil {
			b.Error(err)
			return
		}
		got += n
	}
}

var pxLinkModes = []string{"direct", "inproc", "ssproxy", "ssproxy-net"}

// BenchmarkProxyLink64BRoundTrip: one link, 64 B round trips; reports the
// median and 99th percentile round trip in µs beside ns/op.
func BenchmarkProxyLink64BRoundTrip(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, smallEcho)
	for _, mode := range pxLinkModes {
		b.Run("mode="+mode, func(b *testing.B) {
			dial, pid := pxLinkDialPID(b, mode, srv)
			c := dial()
			defer c.Close()
			for range 200 { // warm up
				pxRoundTrip(b, mode, c)
			}
			d := make([]time.Duration, 0, b.N)
			var p0 pxProc
			if pid != 0 {
				p0 = pxSample(b, pid)
			}
			b.ResetTimer()
			for range b.N {
				t := time.Now()
				pxRoundTrip(b, mode, c)
				d = append(d, time.Since(t))
			}
			b.StopTimer()
			if pid != 0 {
				p0.report(b, pid, b.N)
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2])/1e3, "p50-µs")
			b.ReportMetric(float64(d[len(d)*99/100])/1e3, "p99-µs")
		})
	}
}

// BenchmarkProxyLinkStreams: 100 and 1000 concurrent links, each doing 64 B
// round trips one at a time; reports round trips/s over all of them.
func BenchmarkProxyLinkStreams(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, smallEcho)
	for _, n := range []int{100, 1000} {
		for _, mode := range pxLinkModes {
			b.Run("n="+strconv.Itoa(n)+"/mode="+mode, func(b *testing.B) {
				dial, pid := pxLinkDialPID(b, mode, srv)
				conns := make([]net.Conn, n)
				for i := range conns {
					conns[i] = dial()
				}
				defer func() {
					for _, c := range conns {
						c.Close()
					}
				}()
				per := (b.N + n - 1) / n
				var wg sync.WaitGroup
				var p0 pxProc
				if pid != 0 {
					p0 = pxSample(b, pid)
				}
				b.ResetTimer()
				for _, c := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range per {
							pxRoundTrip(b, mode, c)
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				if pid != 0 {
					p0.report(b, pid, per*n)
				}
				b.ReportMetric(float64(per*n)/b.Elapsed().Seconds(), "roundtrips/s")
			})
		}
	}
}

// pxProc samples a process's CPU time (user + system, from /proc) and its
// threads' context switches: per operation, they say how much work and how
// many thread wake-ups (goroutine hand-offs that reached the kernel) a
// proxied round trip costs, figures the machine's load does not move much.
type pxProc struct {
	cpu  time.Duration
	ctxs int64
}

func pxSample(b *testing.B, pid int) pxProc {
	var p pxProc
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Skip("no /proc:", err)
	}
	// Fields after the command (which may hold spaces): utime and stime
	// are the 14th and 15th of the line, in clock ticks (100 Hz).
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	p.cpu = time.Duration(ut+st) * 10 * time.Millisecond
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				p.ctxs += n
			}
		}
	}
	return p
}

// report adds the proxy's CPU µs and context switches per operation since
// p0.
func (p0 pxProc) report(b *testing.B, pid, ops int) {
	p1 := pxSample(b, pid)
	b.ReportMetric(float64((p1.cpu-p0.cpu).Microseconds())/float64(ops), "proxy-cpu-µs/op")
	b.ReportMetric(float64(p1.ctxs-p0.ctxs)/float64(ops), "proxy-ctxsw/op")
}
