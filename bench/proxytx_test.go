package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/ssbridge"
)

// pxServeRuntime serves prt as an in-process proxy whose links are read as
// mode says (proxy.LoopOff: a goroutine per link, as -event-loop off) until
// the benchmark ends; it returns the abstract socket name and the server,
// for its counters.
func pxServeRuntime(b *testing.B, prt *ss.Runtime, mode proxy.LoopMode) (string, *proxy.Server) {
	b.Helper()
	ps := ssbridge.ProxyServer(prt)
	ps.Loop = mode
	name := fmt.Sprintf("@ss-bench-proxy-%d-%d", os.Getpid(), pxSeq.Add(1))
	ln, err := net.Listen("unix", name)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ps.Serve(ctx, ln); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return name, ps
}

// BenchmarkPairProxyRaw16KiB: BenchmarkProxyRaw16KiB's sides interleaved
// (runPair), each a stream sending 16 KiB messages to a counting server of
// its own: ss (direct), proxied-net and proxied (an in-process proxy with
// the event loop off and on, the same build), ssproxy-net and ssproxy (the
// binary with -event-loop off and on). A batch ends when its server has
// received everything. Metrics: the time ratios of every two sides
// (proxied/ss = 2: half the direct rate; proxied/proxied-net is the
// loop's A/B), and loop-handoffs/op, the in-process loop's hand-offs of a
// link to a goroutine per message.
func BenchmarkPairProxyRaw16KiB(b *testing.B) {
	msg := make([]byte, 16<<10)
	ctx := context.Background()
	var sides []pairSide
	var loopSrv *proxy.Server
	for _, mode := range []string{"ss", "proxied-net", "proxied", "ssproxy-net", "ssproxy"} {
		cs := newPxCounter(b)
		pol := pxPolicy(cs.Port())
		var rt *ss.Runtime
		switch mode {
		case "proxied-net":
			name, _ := pxServeRuntime(b, pxNew(b, ss.Config{Policy: pol}), proxy.LoopOff)
			rt = pxNew(b, ss.Config{Proxy: "unix:" + name})
		case "proxied":
			name, srv := pxServeRuntime(b, pxNew(b, ss.Config{Policy: pol}), proxy.LoopAuto)
			loopSrv = srv
			rt = pxNew(b, ss.Config{Proxy: "unix:" + name})
		case "ssproxy-net":
			addr, _ := pxBinary(b, pol, "-event-loop", "off")
			rt = pxNew(b, ss.Config{Proxy: addr})
		default:
			rt = pxRuntime(b, mode, cs.Port())
		}
		s := pxConnected(b, rt)
		defer pxDestroy(s)
		var sent int64
		sides = append(sides, pairSide{mode, func(n int) error {
			for range n {
				if err := s.Send(ctx, msg); err != nil {
					return err
				}
			}
			sent += int64(n) * int64(len(msg))
			cs.waitFor(b, sent)
			return nil
		}})
	}
	h0 := loopSrv.LoopHandoffs()
	runPair(b, sides...)
	b.ReportMetric(float64(loopSrv.LoopHandoffs()-h0)/float64(max(1, b.N/pairRounds)*pairRounds), "loop-handoffs/op")
}
