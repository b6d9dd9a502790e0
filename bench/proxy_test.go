package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// The proxy pairs: /ss is a stream of a local runtime over the raw
// transport, /proxied the same streamtype through an SS proxy (an
// in-process proxy runtime served on an abstract unix socket; the client is
// a runtime with Config.Proxy), /ssproxy through the ssproxy binary (built
// for the run, its own process), all against the same kind of loopback
// server in the same run.
//
//	go test -run '^$' -bench 'Proxy' -count 5 ./bench/

var pxSeq atomic.Int64

func pxPolicy(port int) *policy.Policy {
	st := &policy.Streamtype{Name: "raw", Protocol: policy.Raw, Endpoint: "127.0.0.1", Port: uint16(port), ClientCert: -1, NailedUp: true}
	return &policy.Policy{SchemaVersion: 1, Streamtypes: []*policy.Streamtype{st}}
}

func pxNew(b *testing.B, cfg ss.Config) *ss.Runtime {
	b.Helper()
	rt, err := ss.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rt.Close(ctx)
	})
	return rt
}

// pxServe runs an in-process proxy for pol and returns its address.
func pxServe(b *testing.B, pol *policy.Policy) string {
	b.Helper()
	name, _ := pxServeRuntime(b, pxNew(b, ss.Config{Policy: pol}), proxy.LoopAuto)
	return "unix:" + name
}

// pxRuntime returns a runtime for mode "ss" (local), "proxied" (through an
// in-process proxy) or "ssproxy" (through the ssproxy binary).
func pxRuntime(b *testing.B, mode string, port int) *ss.Runtime {
	pol := pxPolicy(port)
	switch mode {
	case "ss":
		return pxNew(b, ss.Config{Policy: pol})
	case "ssproxy":
		addr, _ := pxBinary(b, pol)
		return pxNew(b, ss.Config{Proxy: addr})
	}
	return pxNew(b, ss.Config{Proxy: pxServe(b, pol)})
}

func pxConnected(b *testing.B, rt *ss.Runtime) *ss.Stream {
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

// pxCounter counts the bytes a loopback server receives.
type pxCounter struct {
	*testutil.Server
	n atomic.Int64
}

func newPxCounter(b *testing.B) *pxCounter {
	cs := &pxCounter{}
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

func (cs *pxCounter) waitFor(b *testing.B, n int64) {
	deadline := time.Now().Add(60 * time.Second)
	for cs.n.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("server received %d of %d bytes", cs.n.Load(), n)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// BenchmarkProxyRaw16KiB: tx throughput of 16 KiB messages to a counting
// server, directly (/ss) and through the proxy (/proxied); the time
// includes the server having received everything.
//
// /proxied uses the default TX frame size (4061 bytes, the lws client's);
// /proxied-16KiBframes sets Config.ProxyTxFrame so that each message
// travels in one frame.
func BenchmarkProxyRaw16KiB(b *testing.B) {
	msg := make([]byte, 16<<10)
	for _, mode := range []string{"ss", "proxied", "ssproxy", "proxied-16KiBframes"} {
		b.Run(mode, func(b *testing.B) {
			cs := newPxCounter(b)
			var rt *ss.Runtime
			if mode == "proxied-16KiBframes" {
				rt = pxNew(b, ss.Config{Proxy: pxServe(b, pxPolicy(cs.Port())), ProxyTxFrame: 16 << 10})
			} else {
				rt = pxRuntime(b, mode, cs.Port())
			}
			s := pxConnected(b, rt)
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
			pxDestroy(s)
		})
	}
}

// BenchmarkProxyRaw16KiBReceive: rx throughput: the server writes 16 KiB
// chunks as fast as it can; the application reads them.
func BenchmarkProxyRaw16KiBReceive(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 16<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	for _, mode := range []string{"ss", "proxied", "ssproxy"} {
		b.Run(mode, func(b *testing.B) {
			rt := pxRuntime(b, mode, srv.Port())
			s := pxConnected(b, rt)
			b.SetBytes(16 << 10)
			b.ReportAllocs()
			b.ResetTimer()
			total := int64(b.N) * (16 << 10)
			for got := int64(0); got < total; {
				ev := <-s.Events()
				got += int64(len(ev.Payload))
			}
			b.StopTimer()
			pxDestroy(s)
		})
	}
}

// BenchmarkProxyRaw64BRoundTrip: 64 B round trips through a loopback echo
// server.
func BenchmarkProxyRaw64BRoundTrip(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, testutil.Echo)
	msg := make([]byte, 64)
	for _, mode := range []string{"ss", "proxied", "ssproxy"} {
		b.Run(mode, func(b *testing.B) {
			rt := pxRuntime(b, mode, srv.Port())
			s := pxConnected(b, rt)
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
			pxDestroy(s)
		})
	}
}

// pxDestroy destroys s and reads its remaining events.
func pxDestroy(s *ss.Stream) {
	go s.Destroy(context.Background())
	for range s.Events() {
	}
}

// smallEcho echoes with a small buffer, so that the server's own memory per
// connection stays small next to what is measured.
func smallEcho(c net.Conn) {
	buf := make([]byte, 256)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// BenchmarkProxy1000Streams: 1000 concurrent streams doing 64 B round
// trips to a loopback echo server, spread over the streams, with memory per
// stream.
//
//   - /ss: 1000 streams of a local runtime (the direct baseline);
//     direct-heap-B/stream is their heap and stack growth.
//   - /proxied: 1000 proxied streams through the ssproxy binary (built for
//     the run); proxy-RSS-B/stream is the growth of the ssproxy process's
//     resident set.
//   - /inproc: 1000 hand-written SSSv1 links to an in-process proxy, so
//     that the process's heap and stack growth is the proxy's alone
//     (proxy-heap-B/stream: links plus their onward streams).
//
// The onward raw streams no longer hold a read buffer while idle
// (internal/transport/raw reads sockets into pooled buffers once readable); what
// remains is mostly goroutine stacks. BenchmarkProxyStreamCycles measures
// the same across create/destroy cycles.
func BenchmarkProxy1000Streams(b *testing.B) {
	const n = 1000
	srv := testutil.Listen(b, "tcp", "", nil, smallEcho)
	pol := pxPolicy(srv.Port())
	b.Run("ss", func(b *testing.B) {
		rt := pxNew(b, ss.Config{Policy: pol})
		runtime.GC()
		h0 := pxHeap()
		streams := make([]*ss.Stream, n)
		for i := range streams {
			streams[i] = pxConnected(b, rt)
		}
		runtime.GC()
		heap := float64(int64(pxHeap())-int64(h0)) / n
		pxRoundTrips(b, streams)
		b.ReportMetric(heap, "direct-heap-B/stream")
		for _, s := range streams {
			pxDestroy(s)
		}
	})
	b.Run("proxied", func(b *testing.B) {
		addr, pid := pxBinary(b, pol)
		rt := pxNew(b, ss.Config{Proxy: addr})
		rss0 := pxRSS(b, pid)
		streams := make([]*ss.Stream, n)
		for i := range streams {
			streams[i] = pxConnected(b, rt)
		}
		rss1 := pxRSS(b, pid)
		pxRoundTrips(b, streams)
		rss2 := pxRSS(b, pid)
		// Reported after the timed part: ResetTimer drops user metrics.
		b.ReportMetric(float64(rss1-rss0)/n, "proxy-RSS-B/stream")
		b.ReportMetric(float64(rss2-rss0)/n, "proxy-RSS-after-B/stream")
		for _, s := range streams {
			pxDestroy(s)
		}
	})
	b.Run("inproc", func(b *testing.B) {
		addr := pxServe(b, pol)
		name := strings.TrimPrefix(addr, "unix:")
		runtime.GC()
		h0 := pxHeap()
		links := make([]net.Conn, n)
		for i := range links {
			links[i] = pxLink(b, name)
		}
		runtime.GC()
		heap := float64(int64(pxHeap())-int64(h0)) / n
		var wg sync.WaitGroup
		per := (b.N + n - 1) / n
		b.ResetTimer()
		for _, c := range links {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pxLinkRoundTrips(b, c, per)
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(per*n)/b.Elapsed().Seconds(), "roundtrips/s")
		b.ReportMetric(heap, "proxy-heap-B/stream")
		for _, c := range links {
			c.Close()
		}
	})
}

// pxRoundTrips runs b.N round trips spread over streams, concurrently.
func pxRoundTrips(b *testing.B, streams []*ss.Stream) {
	msg := make([]byte, 64)
	per := (b.N + len(streams) - 1) / len(streams)
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for range per {
				if err := s.Send(ctx, msg); err != nil {
					return
				}
				for got := 0; got < len(msg); {
					e, ok := <-s.Events()
					if !ok {
						return
					}
					got += len(e.Payload)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*len(streams))/b.Elapsed().Seconds(), "roundtrips/s")
}

func pxHeap() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// pxRSS returns the resident set of process pid in bytes.
func pxRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Skip("no /proc:", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// pxBinary builds and starts ssproxy for pol, with extra flags; it is
// stopped with SIGTERM at cleanup. SSPROXY_GOMAXPROCS in the environment
// becomes its GOMAXPROCS.
func pxBinary(b *testing.B, pol *policy.Policy, flags ...string) (addr string, pid int) {
	b.Helper()
	dir := b.TempDir()
	bin := os.Getenv("SSPROXY_BIN") // another build to compare (A/B runs)
	if bin == "" {
		bin = filepath.Join(dir, "ssproxy")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ssproxy").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	js, err := pol.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "policy.json")
	os.WriteFile(file, js, 0o600)
	name := fmt.Sprintf("@ss-bench-ssproxy-%d-%d", os.Getpid(), pxSeq.Add(1))
	cmd := exec.Command(bin, append([]string{"-policy", file, "-listen", "unix:" + name}, flags...)...)
	if v := os.Getenv("SSPROXY_GOMAXPROCS"); v != "" {
		// The proxy's own GOMAXPROCS, the benchmark's left alone.
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+v)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for i := 0; ; i++ {
		c, err := net.Dial("unix", name)
		if err == nil {
			c.Close()
			break
		}
		if i > 500 {
			b.Fatal("ssproxy not listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "unix:" + name, cmd.Process.Pid
}

// pxLink opens a hand-written SSSv1 link for streamtype "raw" and waits for
// CONNECTED.
func pxLink(b *testing.B, name string) net.Conn {
	c, err := net.Dial("unix", name)
	if err != nil {
		b.Fatal(err)
	}
	c.Write([]byte{0xAA, 0, 12, 1, 0, 0, 0, 1, 0x1D, 0xCD, 0x65, 0, 'r', 'a', 'w'})
	// CREATE_RESULT (12 bytes: L=9 ",raw"), then CONNSTATEs until CONNECTED.
	hdr := make([]byte, 3)
	body := make([]byte, 64)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			b.Fatal(err)
		}
		l := int(hdr[1])<<8 | int(hdr[2])
		if _, err := io.ReadFull(c, body[:l]); err != nil {
			b.Fatal(err)
		}
		if hdr[0] == 0x57 && l == 5 && body[0] == 5 {
			return c
		}
	}
}

// pxLinkRoundTrips does n 64 B round trips on a hand-written link.
func pxLinkRoundTrips(b *testing.B, c net.Conn, n int) {
	frame := make([]byte, 3+16+64)
	frame[0], frame[1], frame[2] = 0xAD, 0, 16+64
	frame[6] = 3
	hdr := make([]byte, 3)
	body := make([]byte, 16+64)
	for range n {
		if _, err := c.Write(frame); err != nil {
			return
		}
		for got := 0; got < 64; {
			if _, err := io.ReadFull(c, hdr); err != nil {
				return
			}
			l := int(hdr[1])<<8 | int(hdr[2])
			if l > len(body) {
				body = make([]byte, l)
			}
			if _, err := io.ReadFull(c, body[:l]); err != nil {
				return
			}
			if hdr[0] == 0x55 {
				got += l - 16
			}
		}
	}
}
