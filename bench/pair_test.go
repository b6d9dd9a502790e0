package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// Interleaved pairs: the sides of a pair measured in alternating batches
// inside one benchmark, so that load from other processes hits both alike.
// Each reports, besides the framework's ns/op (all sides together, not a
// figure to read), <side>-ns/op for every side (the median over rounds of
// its batch's time per op) and <later>/<earlier> for every two sides (the
// median of the per-round time ratios): list the reference first and ss
// last. scripts/bench.sh reads the ratios.
//
//	go test -run '^$' -bench 'Pair' -count 6 ./bench/

// pairSide is one side of a pair, set up already: ops does n operations.
type pairSide struct {
	name string
	ops  func(n int) error
}

// pairRounds is how many alternating batches each side runs per b.N.
const pairRounds = 8

// runPair runs every side for b.N operations in pairRounds batches, the
// order of the sides rotating from round to round, and reports the medians.
func runPair(b *testing.B, sides ...pairSide) {
	b.Helper()
	batch := max(1, b.N/pairRounds)
	perOp := make([][]float64, len(sides)) // [side][round]
	ratios := map[[2]int][]float64{}       // [later, earlier] → per round
	b.ResetTimer()
	for r := range pairRounds {
		t := make([]float64, len(sides))
		for k := range sides {
			i := (r + k) % len(sides)
			t0 := time.Now()
			if err := sides[i].ops(batch); err != nil {
				b.Fatalf("%s: %v", sides[i].name, err)
			}
			t[i] = float64(time.Since(t0).Nanoseconds()) / float64(batch)
		}
		for i := range sides {
			perOp[i] = append(perOp[i], t[i])
			for j := range i {
				ratios[[2]int{i, j}] = append(ratios[[2]int{i, j}], t[i]/t[j])
			}
		}
	}
	b.StopTimer()
	for i, s := range sides {
		b.ReportMetric(pairMedian(perOp[i]), s.name+"-ns/op")
		for j := range i {
			b.ReportMetric(pairMedian(ratios[[2]int{i, j}]), s.name+"/"+sides[j].name)
		}
	}
}

func pairMedian(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// BenchmarkPairRaw64BEcho: BenchmarkRaw64BEcho's three sides interleaved:
// ss (a stream over the raw transport), chan (a reader goroutine handing
// each read over a channel: the floor of any channel-delivery API) and raw
// (net.Conn), one connection each to the same loopback echo server.
// Metrics: ss/raw, ss/chan and chan/raw are time ratios (ss/raw = 1.25:
// ss takes 1.25× raw's time per round trip; goal ≤ 1.2, or ss/chan ≤ 1.05).
// A fourth side, ss-recv, reads its stream with Stream.Recv (the socket
// read on the caller's goroutine): ss-recv/raw against the same goal.
func BenchmarkPairRaw64BEcho(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, testutil.Echo)
	msg := make([]byte, 64)
	ctx := context.Background()

	rt := rawRuntime(b, srv.Port())
	s := rawConnected(b, rt)
	defer s.Destroy(ctx)
	ev := s.Events()
	ssSide := pairSide{"ss", func(n int) error {
		for range n {
			if err := s.Send(ctx, msg); err != nil {
				return err
			}
			for got := 0; got < len(msg); {
				got += len((<-ev).Payload)
			}
		}
		return nil
	}}

	cc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	ch := make(chan []byte)
	go func() {
		defer close(ch)
		buf := make([]byte, 64<<10)
		for {
			n, err := cc.Read(buf)
			if err != nil {
				return
			}
			ch <- append([]byte(nil), buf[:n]...)
		}
	}()
	defer func() {
		cc.Close()
		for range ch {
		}
	}()
	chanSide := pairSide{"chan", func(n int) error {
		for range n {
			if _, err := cc.Write(msg); err != nil {
				return err
			}
			for got := 0; got < len(msg); {
				got += len(<-ch)
			}
		}
		return nil
	}}

	ps := rawConnected(b, rt)
	defer ps.Destroy(ctx)
	recvSide := pairSide{"ss-recv", func(n int) error { return recvEcho(ctx, ps, msg, n) }}

	rc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 64)
	rawSide := pairSide{"raw", func(n int) error {
		for range n {
			if _, err := rc.Write(msg); err != nil {
				return err
			}
			if _, err := io.ReadFull(rc, buf); err != nil {
				return err
			}
		}
		return nil
	}}
	runPair(b, rawSide, chanSide, ssSide, recvSide)
}

// recvEcho does n round trips of msg on s, reading the echo with
// Stream.Recv.
func recvEcho(ctx context.Context, s *ss.Stream, msg []byte, n int) error {
	for range n {
		if err := s.Send(ctx, msg); err != nil {
			return err
		}
		for got := 0; got < len(msg); {
			ev, err := s.Recv(ctx)
			if err != nil {
				return err
			}
			got += len(ev.Payload)
		}
	}
	return nil
}

// TestRunPairReportsRatios: a side that does twice the work per op is
// reported at about twice the time, as <side>/<first>.
func TestRunPairReportsRatios(t *testing.T) {
	spin := func(k int) func(n int) error {
		return func(n int) error {
			x := 0
			for i := range n * k * 20000 {
				x += i ^ (x >> 3)
			}
			sink = strconv.Itoa(x)
			return nil
		}
	}
	r := testing.Benchmark(func(b *testing.B) {
		runPair(b, pairSide{"one", spin(1)}, pairSide{"two", spin(2)})
	})
	got := r.Extra["two/one"]
	if got < 1.5 || got > 2.7 {
		t.Fatalf("two/one = %.2f, want about 2 (extra %v)", got, r.Extra)
	}
	if r.Extra["one-ns/op"] <= 0 || r.Extra["two-ns/op"] <= r.Extra["one-ns/op"] {
		t.Errorf("per-side times %v", r.Extra)
	}
}

var sink string

// BenchmarkPairProxyRaw64BRoundTrip: BenchmarkProxyRaw64BRoundTrip's sides
// interleaved: ss (a stream of a local runtime, no proxy), proxied (through
// an in-process proxy) and ssproxy (through the ssproxy binary), each a
// stream to the same loopback echo server. Metrics: proxied/ss, ssproxy/ss
// and ssproxy/proxied time ratios.
func BenchmarkPairProxyRaw64BRoundTrip(b *testing.B) {
	srv := testutil.Listen(b, "tcp", "", nil, testutil.Echo)
	msg := make([]byte, 64)
	ctx := context.Background()
	var sides []pairSide
	for _, mode := range []string{"ss", "proxied", "ssproxy"} {
		s := pxConnected(b, pxRuntime(b, mode, srv.Port()))
		defer pxDestroy(s)
		ev := s.Events()
		sides = append(sides, pairSide{mode, func(n int) error {
			for range n {
				if err := s.Send(ctx, msg); err != nil {
					return err
				}
				for got := 0; got < len(msg); {
					e, ok := <-ev
					if !ok {
						return errors.New("stream ended")
					}
					got += len(e.Payload)
				}
			}
			return nil
		}})
	}
	runPair(b, sides...)
}
