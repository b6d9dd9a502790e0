// Command ssproxy-bench is a load client for Secure Streams proxies: it
// speaks SSSv1 (docs/wire.md) to any proxy (ssproxy, libwebsockets'
// lws-minimal-secure-streams-proxy, ...) for one raw streamtype whose onward
// peer is its own echo/sink/source server, and measures round-trip latency,
// rx and tx throughput, many concurrent streams, and the proxy process's
// memory. "-direct" measures the same against the peer without a proxy.
// See docs/ssproxy-bench.md.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usageText = `usage: ssproxy-bench [flags] -proxy ADDRESS | -direct HOST:PORT
       ssproxy-bench -peer HOST:PORT
       ssproxy-bench -print-policy HOST:PORT [-streamtype NAME] [-proxy-buflen N]
       ssproxy-bench -compare LABEL=FILE.json,LABEL=FILE.json,...

A load client for Secure Streams proxies (SSSv1). The streamtype given by
-streamtype must be a raw streamtype whose endpoint is an ssproxy-bench peer
(-peer, or -serve-peer in the same process); -print-policy writes such a
policy, readable by ssproxy and by libwebsockets' proxy. The peer's first
byte selects echo, sink or source, so one streamtype serves every test.

Measures: 64 B round trip p50/p99 on one stream; rx and tx MiB/s (16 KiB
frames; tx is paced by the peer's acknowledgements to -window bytes in
flight, so that a proxy that drops a link whose buffer overflows, as
libwebsockets' does, keeps it); N concurrent streams (setup time, round
trips/s); with -pid, the proxy process's RSS at start, connected, peak and
after closing, per stream, and after -cycles create/destroy cycles.
Output: a table, or JSON with -json. Exit status 1 when a test fails.

flags:
`

type config struct {
	proxy, direct, streamtype string
	peer, servePeer           string
	printPolicy               string
	compare                   string
	proxyBuflen               int
	pid                       int
	tests                     string
	label                     string
	size, rttCount            int
	bytes                     int64
	frame, window             int
	streams                   string
	duration, settle, timeout time.Duration
	testLimit                 time.Duration
	par                       int
	cycles, cycleStreams      int
	jsonOut                   bool
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("ssproxy-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.proxy, "proxy", "", "SSSv1 proxy `address` to measure: unix:@name (abstract), unix:/path, tcp:host:port (also the lws spellings +@name, +/path)")
	fs.StringVar(&c.direct, "direct", "", "measure the peer at `host:port` directly over TCP, without a proxy (the baseline)")
	fs.StringVar(&c.streamtype, "streamtype", "bench", "raw streamtype `name` whose onward peer is an ssproxy-bench peer")
	fs.StringVar(&c.peer, "peer", "", "run only the onward peer (echo/sink/source) on `host:port` until SIGINT or SIGTERM")
	fs.StringVar(&c.servePeer, "serve-peer", "", "also run the onward peer in this process on `host:port` for the duration of the run")
	fs.StringVar(&c.printPolicy, "print-policy", "", "print a policy whose -streamtype reaches a peer at `host:port`, and exit")
	fs.IntVar(&c.proxyBuflen, "proxy-buflen", 65536, "proxy_buflen `bytes` written by -print-policy")
	fs.StringVar(&c.compare, "compare", "", "print side by side the -json outputs `label=file,...` (label=a.json+b.json+...: several rounds, shown as medians); the last column is the ratio of the last two (the median of the per-round ratios)")
	fs.IntVar(&c.pid, "pid", 0, "proxy process `id` whose RSS (/proc/PID/status VmRSS) is reported; enables the cycles test")
	fs.StringVar(&c.tests, "tests", "latency,rx,tx,streams,cycles", "comma-separated `list` of tests to run: latency, rx, tx, streams, cycles (cycles needs -pid)")
	fs.StringVar(&c.label, "label", "", "`name` of this run in the output (default: proxy, or direct)")
	fs.IntVar(&c.size, "size", 64, "round-trip message size in `bytes`")
	fs.IntVar(&c.rttCount, "rtt-count", 5000, "`number` of timed round trips for the latency test")
	fs.Int64Var(&c.bytes, "bytes", 64<<20, "`bytes` transferred by each of the rx and tx tests")
	fs.IntVar(&c.frame, "frame", 16<<10, "tx frame (write) size in `bytes`")
	fs.IntVar(&c.window, "window", 32<<10, "tx pacing: at most this many `bytes` sent and not yet acknowledged by the peer (0: unpaced)")
	fs.StringVar(&c.streams, "streams", "100,1000", "comma-separated stream `counts` for the streams test (e.g. 100,1000,10000)")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "how long the streams test runs round trips at each count")
	fs.IntVar(&c.par, "dial-parallel", 32, "streams set up concurrently")
	fs.IntVar(&c.cycles, "cycles", 8, "create/destroy `cycles` for the cycles test")
	fs.IntVar(&c.cycleStreams, "cycle-streams", 1000, "streams per cycle in the cycles test")
	fs.DurationVar(&c.settle, "settle", 500*time.Millisecond, "wait after closing streams before reading the RSS")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound for one stream's setup")
	fs.DurationVar(&c.testLimit, "test-timeout", 5*time.Minute, "bound for one test on one stream: a proxy that stops answering fails the test instead of hanging the run (0: none)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the results as JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ssproxy-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := c.run(stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "ssproxy-bench:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

func (c *config) run(stdout, stderr io.Writer) error {
	switch {
	case c.printPolicy != "":
		return printPolicy(stdout, c.printPolicy, c.streamtype, c.proxyBuflen)
	case c.compare != "":
		return compare(stdout, c.compare)
	case c.peer != "":
		p, err := startPeer(c.peer)
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "ssproxy-bench: peer listening on", p.Addr())
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		signal.Stop(sig)
		return p.Close()
	}
	if (c.proxy == "") == (c.direct == "") {
		return usageError{errors.New("give exactly one of -proxy and -direct (or -peer, -print-policy, -compare)")}
	}
	tests, err := c.parseTests()
	if err != nil {
		return usageError{err}
	}
	counts, err := parseCounts(c.streams)
	if err != nil {
		return usageError{err}
	}
	if c.size < 1 || c.rttCount < 1 || c.bytes < 1 || c.frame < 1 || c.frame > 65519 || c.window < 0 || c.testLimit < 0 || c.par < 1 || c.cycles < 1 || c.cycleStreams < 1 {
		return usageError{errors.New("-size, -rtt-count, -bytes, -dial-parallel, -cycles and -cycle-streams must be ≥ 1, -frame 1..65519, -window and -test-timeout ≥ 0")}
	}
	if c.servePeer != "" {
		p, err := startPeer(c.servePeer)
		if err != nil {
			return err
		}
		defer p.Close()
	}
	t := target{proxy: c.proxy, direct: c.direct, streamtype: c.streamtype, timeout: c.timeout, testLimit: c.testLimit}
	res := &Result{Label: c.label, Proxy: c.proxy, Direct: c.direct, Streamtype: c.streamtype, PID: c.pid,
		Frame: c.frame, Window: c.window, Time: time.Now().UTC().Format(time.RFC3339)}
	if res.Label == "" {
		res.Label = "proxy"
		if c.direct != "" {
			res.Label = "direct"
		}
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = strings.Join(strings.Fields(string(la))[:3], " ")
	}
	var rss *rssWatch
	if c.pid != 0 {
		if rss, err = watchRSS(c.pid, 20*time.Millisecond); err != nil {
			return err
		}
		defer rss.Close()
		res.RSSStart = rss.now()
	}
	var errs []error
	note := func(what string, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
		res.Errors = append(res.Errors, what+": "+err.Error())
	}
	// The memory tests run first, so that their RSS deltas start from the
	// proxy as it was started, not from buffers the throughput tests grew.
	if tests["streams"] {
		for _, n := range counts {
			s, err := measureStreams(t, n, c.par, c.duration, c.settle, rss)
			if err != nil {
				note(fmt.Sprintf("streams %d", n), err)
				break
			}
			res.Streams = append(res.Streams, s)
		}
	}
	if tests["cycles"] && rss != nil {
		if cy, err := measureCycles(t, c.cycleStreams, c.cycles, c.par, c.settle, rss); err != nil {
			note("cycles", err)
		} else {
			res.Cycles = &cy
		}
	}
	if tests["latency"] {
		if l, err := measureLatency(t, c.size, c.rttCount); err != nil {
			note("latency", err)
		} else {
			res.Latency = &l
		}
	}
	if tests["rx"] {
		if r, err := measureRx(t, c.bytes); err != nil {
			note("rx", err)
		} else {
			res.Rx = &r
		}
	}
	if tests["tx"] {
		if r, err := measureTx(t, c.bytes, c.frame, c.window); err != nil {
			note("tx", err)
		} else {
			res.Tx = &r
		}
	}
	if rss != nil {
		res.RSSEnd = rss.now()
	}
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printTable(stdout, []*Result{res})
	}
	return errors.Join(errs...)
}

func (c *config) parseTests() (map[string]bool, error) {
	m := map[string]bool{}
	for _, s := range strings.Split(c.tests, ",") {
		switch s = strings.TrimSpace(s); s {
		case "latency", "rx", "tx", "streams", "cycles":
			m[s] = true
		case "":
		default:
			return nil, fmt.Errorf("-tests: unknown test %q (latency, rx, tx, streams, cycles)", s)
		}
	}
	return m, nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-streams: %q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}
