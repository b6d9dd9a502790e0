// Command benchtable reads the output of several passes of the bench/
// benchmarks (one file per pass, as scripts/bench.sh writes them) and prints
// the ratio table of issue 13's goals: for each pair, the ratio of its two
// sides in every pass (the two sides of a pair run one after the other in
// the same pass, so load that changes between passes cancels out), the
// median of those ratios, the goal, and PASS or MISS.
//
//	go run ./scripts/benchtable pass-1.txt pass-2.txt ...
//
// Naming convention of the pairs in bench/: BenchmarkX/ss is this library,
// BenchmarkX/raw the library underneath (net, net/http, quic-go, gorilla,
// paho), BenchmarkX/chan the bare goroutine+channel floor, and for the
// proxy BenchmarkX/ss (in-process, no proxy), /proxied (in-process proxy)
// and /ssproxy (the binary).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// A goal compares two sides of one benchmark, or bounds one metric.
type goal struct {
	what   string
	bench  string // benchmark name without "Benchmark"
	num    string // sub-benchmark measured; "" for a BenchmarkPair… (its own ratio metrics)
	den    string // sub-benchmark it is compared with; "" for a bound on num's metric
	unit   string // metric compared ("ns/op", "msg/s", "bytes/stream", ...)
	invert bool   // ratio = den/num (a rate from ns/op: time of the reference over time of ours); for a BenchmarkPair… time ratio, its inverse
	atMost bool   // PASS when ratio ≤ target (else ≥)
	target float64
	unit2  string // with den == "": ratio of num's unit over num's unit2 (growth across cycles)
}

// goals are issue 13's, in the order of its list. Ratios are ss over the
// reference, in the direction the goal is written.
var goals = []goal{
	{what: "raw 64 B round trip, ss/raw time (interleaved)", bench: "PairRaw64BEcho", unit: "ss/raw", atMost: true, target: 1.2},
	{what: "raw 64 B round trip, ss/chan floor time (interleaved)", bench: "PairRaw64BEcho", unit: "ss/chan", atMost: true, target: 1.05},
	{what: "raw 64 B round trip, ss-recv/raw time (Stream.Recv, interleaved)", bench: "PairRaw64BEcho", unit: "ss-recv/raw", atMost: true, target: 1.2},
	{what: "raw 64 B round trip, ss/raw time", bench: "Raw64BEcho", num: "ss", den: "raw", unit: "ns/op", atMost: true, target: 1.2},
	{what: "raw 64 B round trip, ss/chan floor time", bench: "Raw64BEcho", num: "ss", den: "chan", unit: "ns/op", atMost: true, target: 1.05},
	{what: "raw 16 KiB receive, ss/raw rate", bench: "Raw16KiBReceive", num: "ss", den: "raw", unit: "ns/op", invert: true, target: 0.9},
	{what: "raw 16 KiB send, ss/raw rate", bench: "Raw16KiBOneWay", num: "ss", den: "raw", unit: "ns/op", invert: true, target: 0.9},
	{what: "h1 GET 1 KiB, ss/net/http rate (interleaved)", bench: "PairH1Get1KiB", unit: "ss/raw", invert: true, target: 0.9},
	{what: "h2 GET 1 KiB, ss/x/net/http2 rate (interleaved)", bench: "PairH2Get1KiB", unit: "ss/raw", invert: true, target: 0.9},
	{what: "h3 GET 1 KiB, ss/quic-go rate (interleaved)", bench: "PairH3Get1KiB", unit: "ss/raw", invert: true, target: 0.9},
	{what: "h1 GET 1 KiB, ss-recv/net/http rate (Stream.Recv, interleaved)", bench: "PairH1Get1KiB", unit: "ss-recv/raw", invert: true, target: 0.9},
	{what: "h2 GET 1 KiB, ss-recv/x/net/http2 rate (Stream.Recv, interleaved)", bench: "PairH2Get1KiB", unit: "ss-recv/raw", invert: true, target: 0.9},
	{what: "h3 GET 1 KiB, ss-recv/quic-go rate (Stream.Recv, interleaved)", bench: "PairH3Get1KiB", unit: "ss-recv/raw", invert: true, target: 0.9},
	{what: "h1 GET 1 KiB, ss/net/http rate", bench: "H1Get1KiB", num: "ss", den: "raw", unit: "ns/op", invert: true, target: 0.9},
	{what: "h2 GET 1 KiB, ss/x/net/http2 rate", bench: "H2Get1KiB", num: "ss", den: "raw", unit: "ns/op", invert: true, target: 0.9},
	{what: "h3 GET 1 KiB, ss/quic-go rate", bench: "H3Get1KiB", num: "ss", den: "raw", unit: "ns/op", invert: true, target: 0.9},
	{what: "ws 64 B echo, ss/gorilla time (interleaved)", bench: "PairWS64BEcho", unit: "ss/raw", atMost: true, target: 1.2},
	{what: "ws 64 B echo, ss/chan floor time (interleaved)", bench: "PairWS64BEcho", unit: "ss/chan", atMost: true, target: 1.05},
	{what: "ws 64 B echo, ss-recv/gorilla time (Stream.Recv, interleaved)", bench: "PairWS64BEcho", unit: "ss-recv/raw", atMost: true, target: 1.2},
	{what: "ws 64 B echo, ss/gorilla time", bench: "WS64BEcho", num: "ss", den: "raw", unit: "ns/op", atMost: true, target: 1.2},
	{what: "ws 16 KiB one-way, ss/gorilla rate", bench: "WS16KiBOneWay", num: "ss", den: "raw", unit: "ns/op", invert: true, target: 0.9},
	{what: "MQTT QoS 1 (windowed), ss/paho rate", bench: "MQTTQoS1Windowed", num: "ss", den: "raw", unit: "msg/s", target: 1.0},
	{what: "MQTT QoS 0, ss/paho rate", bench: "MQTTQoS0", num: "ss", den: "raw", unit: "msg/s", target: 0.9},
	{what: "idle stream heap (B, ≤ 1 KiB)", bench: "IdleStreamHeap", num: "ss", unit: "bytes/stream", atMost: true, target: 1024},
	{what: "proxied 16 KiB tx, in-process proxy/direct rate", bench: "ProxyRaw16KiB", num: "proxied", den: "ss", unit: "ns/op", invert: true, target: 0.6},
	{what: "proxied 16 KiB tx, ssproxy/direct rate", bench: "ProxyRaw16KiB", num: "ssproxy", den: "ss", unit: "ns/op", invert: true, target: 0.6},
	{what: "proxied 16 KiB rx, ssproxy/direct rate", bench: "ProxyRaw16KiBReceive", num: "ssproxy", den: "ss", unit: "ns/op", invert: true, target: 0.5},
	{what: "proxied 64 B round trip, ssproxy/direct time (interleaved)", bench: "PairProxyRaw64BRoundTrip", unit: "ssproxy/ss", atMost: true, target: 3},
	{what: "proxied 64 B round trip, ssproxy/direct time", bench: "ProxyRaw64BRoundTrip", num: "ssproxy", den: "ss", unit: "ns/op", atMost: true, target: 3},
	{what: "ssproxy RSS per idle stream (B, 1000 streams)", bench: "Proxy1000Streams", num: "proxied", unit: "proxy-RSS-B/stream", atMost: true, target: 4096},
	{what: "ssproxy RSS per busy stream (B, 1000 streams)", bench: "Proxy1000Streams", num: "proxied", unit: "proxy-RSS-after-B/stream", atMost: true, target: 8192},
	{what: "ssproxy RSS after 8 cycles / after the first", bench: "ProxyStreamCycles", num: "ssproxy", unit: "RSS-after-c8/c1", atMost: true, target: 1.1},
}

// results: pass → "Bench/sub" → unit → value.
type results []map[string]map[string]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads one pass of `go test -bench` output.
func parse(r io.Reader) (map[string]map[string]float64, error) {
	m := map[string]map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		vals := m[name]
		if vals == nil {
			vals = map[string]float64{}
			m[name] = vals
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: value %q: %v", f[0], f[i], err)
			}
			vals[f[i+1]] = v
		}
	}
	return m, sc.Err()
}

// ratios returns g's ratio in every pass that has both sides.
func (g goal) ratios(rs results) []float64 {
	var out []float64
	key := g.bench + "/" + g.num
	if g.num == "" {
		key = g.bench
	}
	for _, pass := range rs {
		a, ok := pass[key][g.unit]
		if !ok {
			continue
		}
		var v float64
		switch {
		case g.den == "" && g.unit2 == "":
			v = a
			if g.invert {
				if a == 0 {
					continue
				}
				v = 1 / a
			}
		case g.den == "":
			b, ok := pass[key][g.unit2]
			if !ok || b == 0 {
				continue
			}
			v = a / b
		default:
			b, ok := pass[g.bench+"/"+g.den][g.unit]
			if !ok || a == 0 || b == 0 {
				continue
			}
			v = a / b
			if g.invert {
				v = b / a
			}
		}
		out = append(out, v)
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func format(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// table prints the goal table; it returns the number of goals measured and
// of those missed.
func table(w io.Writer, rs results) (measured, missed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "goal\tmedian\tpasses\trange\ttarget\tresult\t")
	for _, g := range goals {
		r := g.ratios(rs)
		cmp := "≥ "
		if g.atMost {
			cmp = "≤ "
		}
		if len(r) == 0 {
			fmt.Fprintf(tw, "%s\t–\t0\t–\t%s%s\tnot run\t\n", g.what, cmp, format(g.target))
			continue
		}
		measured++
		med := median(r)
		ok := med >= g.target
		if g.atMost {
			ok = med <= g.target
		}
		res := "PASS"
		if !ok {
			res = "MISS"
			missed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s–%s\t%s%s\t%s\t\n", g.what, format(med), len(r),
			format(slices.Min(r)), format(slices.Max(r)), cmp, format(g.target), res)
	}
	tw.Flush()
	return measured, missed
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: benchtable PASS.txt... (go test -bench output, one file per pass)")
		os.Exit(2)
	}
	var rs results
	for _, f := range os.Args[1:] {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
		m, err := parse(fh)
		fh.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchtable: %s: %v\n", f, err)
			os.Exit(1)
		}
		rs = append(rs, m)
	}
	measured, missed := table(os.Stdout, rs)
	fmt.Printf("%d goals measured over %d passes, %d missed\n", measured, len(rs), missed)
}
