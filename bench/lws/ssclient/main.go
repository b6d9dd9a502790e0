// Command ssclient is the ss side of bench/lws: the same measurements as
// bench/lws/lws-ss-bench.c (libwebsockets' Secure Streams client), made with
// the ss runtime in-process, against the same loopback servers and policy.
//
//	ssclient -serve-http 127.0.0.1:7682          a 1 KiB HTTP/1.1 server
//	ssclient -policy P.json -test h1 -n N        N GETs on streamtype "get"
//	ssclient -policy P.json -test echo -n N      N 64 B round trips on "bench"
//	ssclient -policy P.json -test idle -n N      N created, unconnected "get" streams
//	ssclient -policy P.json -test connected -n N N connected "bench" streams
//	ssclient -policy P.json -floor -test echo ... h1 or echo with the Go standard library alone
//	ssclient -table lws=a.jsonl,ss=b.jsonl,...   the side-by-side table
//
// Each test prints one JSON object, in the same shape as lws-ss-bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ssclient", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serve := fs.String("serve-http", "", "serve 1 KiB bodies over HTTP/1.1 on `host:port` until SIGINT or SIGTERM")
	polFile := fs.String("policy", "", "policy `file` with streamtypes \"get\" (h1 GET) and \"bench\" (raw, an ssproxy-bench peer)")
	test := fs.String("test", "", "`test` to run: h1, echo, idle or connected")
	n := fs.Int("n", 1000, "`count`: transactions, round trips or streams")
	table := fs.String("table", "", "print the results `label=file.jsonl,...` side by side (the first is the reference)")
	recv := fs.String("recv", "echo", "`tests` whose stream is read with Stream.Recv (on this goroutine; a raw socket is read inline) instead of the Events channel: echo, all or none (echo: Recv wins there, not on h1; PERFORMANCE.md)")
	loop := fs.Bool("event-loop", false, "run the runtime with ss.Config.EventLoop (a connected raw socket parked in one epoll set, no goroutine of its own; Linux)")
	floor := fs.Bool("floor", false, "run -test h1 or echo with the Go standard library alone (a net.Conn per GET, one for the echo): the Go floor")
	cpuProf := fs.String("cpuprofile", "", "write a CPU profile of the test to `file`")
	traceOut := fs.String("trace", "", "write a runtime/trace of the test to `file` (go tool trace)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var err error
	switch {
	case *serve != "":
		err = serveHTTP(*serve, stderr)
	case *table != "":
		err = printTable(stdout, *table)
	case *polFile != "" && *n >= 1:
		var r *result
		var stop func() error
		if stop, err = profile(*cpuProf, *traceOut); err != nil {
			break
		}
		if *floor {
			r, err = measureFloor(*polFile, *test, *n)
		} else {
			r, err = measure(*polFile, *test, *n, *recv == "all" || *recv == *test, *loop)
		}
		if perr := stop(); err == nil {
			err = perr
		}
		if err == nil {
			err = r.write(stdout)
		}
	default:
		fmt.Fprintln(stderr, "ssclient: give -serve-http, -table, or -policy with -test and -n ≥ 1")
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "ssclient:", err)
		return 1
	}
	return 0
}

// profile starts a CPU profile and/or an execution trace (empty names: not
// wanted); stop ends both and closes the files.
func profile(cpuFile, traceFile string) (stop func() error, err error) {
	var files []*os.File
	var stops []func()
	stop = func() error {
		for _, f := range stops {
			f()
		}
		var err error
		for _, f := range files {
			err = errors.Join(err, f.Close())
		}
		return err
	}
	open := func(name string, start func(io.Writer) error, end func()) error {
		if name == "" {
			return nil
		}
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		files = append(files, f)
		if err := start(f); err != nil {
			return err
		}
		stops = append(stops, end)
		return nil
	}
	if err := open(cpuFile, pprof.StartCPUProfile, pprof.StopCPUProfile); err != nil {
		return nil, errors.Join(err, stop())
	}
	if err := open(traceFile, trace.Start, trace.Stop); err != nil {
		return nil, errors.Join(err, stop())
	}
	return stop, nil
}

func serveHTTP(addr string, stderr io.Writer) error {
	body := make([]byte, 1024)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		w.Write(body)
	})}
	fmt.Fprintln(stderr, "ssclient: serving HTTP on", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func measure(file, test string, n int, recv, loop bool) (*result, error) {
	pol, _, err := policy.ParseFile(file, policy.Options{})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	rt, err := ss.New(ctx, ss.Config{Policy: pol, EventLoop: loop})
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		rt.Close(cctx)
	}()
	r := &result{Client: "ss", Test: test, N: n, GOMAXPROCS: gomaxprocs()}
	switch test {
	case "h1":
		err = measureH1(ctx, rt, r, recv)
	case "echo":
		err = measureEcho(ctx, rt, r, recv)
	case "idle", "connected":
		err = measureStreams(ctx, rt, r)
	default:
		err = fmt.Errorf("-test %q: want h1, echo, idle or connected", test)
	}
	return r, err
}

// eventsOf returns a function that reads s's next event (false: the
// events ended): with Stream.Recv when recv is set, else from Events.
func eventsOf(s *ss.Stream, recv bool) func() (ss.Event, bool) {
	if !recv {
		return func() (ss.Event, bool) {
			ev, ok := <-s.Events()
			return ev, ok
		}
	}
	return func() (ss.Event, bool) {
		ev, err := s.Recv(context.Background())
		return ev, err == nil
	}
}

// waitState reads events until state (payload bytes are added to *got).
func waitState(s *ss.Stream, next func() (ss.Event, bool), want ss.State, got *int) error {
	for ev, ok := next(); ok; ev, ok = next() {
		if ev.Kind == ss.PayloadEvent {
			if got != nil {
				*got += len(ev.Payload)
			}
			continue
		}
		switch ev.State {
		case want:
			return nil
		case ss.AllRetriesFailed, ss.QoSNackRemote:
			return fmt.Errorf("%s: %v %v", s.Streamtype(), ev.State, ev.Err)
		}
	}
	return fmt.Errorf("%s: events ended before %v", s.Streamtype(), want)
}

// measureH1: one stream, a transaction (a new connection, as Secure Streams
// makes for h1) per RequestTx, until DISCONNECTED: lws-ss-bench does the same
// with lws_ss_client_connect.
func measureH1(ctx context.Context, rt *ss.Runtime, r *result, recv bool) error {
	s, err := rt.Create(ctx, "get")
	if err != nil {
		return err
	}
	next := eventsOf(s, recv)
	defer destroy(s, next)
	t0, ru0 := time.Now(), rusage()
	for i := range r.N {
		if err := s.RequestTx(); err != nil {
			return err
		}
		body := 0
		if err := waitState(s, next, ss.QoSAckRemote, &body); err != nil {
			return fmt.Errorf("transaction %d: %w", i+1, err)
		}
		if err := waitState(s, next, ss.Disconnected, &body); err != nil {
			return fmt.Errorf("transaction %d: %w", i+1, err)
		}
		if body != 1024 {
			return fmt.Errorf("transaction %d: body %d bytes, want 1024", i+1, body)
		}
	}
	r.rates(time.Since(t0), rusage()-ru0)
	return nil
}

func measureEcho(ctx context.Context, rt *ss.Runtime, r *result, recv bool) error {
	s, err := rt.Create(ctx, "bench")
	if err != nil {
		return err
	}
	next := eventsOf(s, recv)
	defer destroy(s, next)
	if err := s.Connect(); err != nil {
		return err
	}
	if err := waitState(s, next, ss.Connected, nil); err != nil {
		return err
	}
	msg := make([]byte, 64)
	// The ssproxy-bench peer: the first byte selects echo.
	if err := s.Send(ctx, append([]byte{'E'}, msg...)); err != nil {
		return err
	}
	return timeEcho(r, func(send bool) error {
		if send {
			if err := s.Send(ctx, msg); err != nil {
				return err
			}
		}
		for got := 0; got < len(msg); {
			ev, ok := next()
			if !ok {
				return errors.New("echo: stream ended")
			}
			got += len(ev.Payload)
		}
		return nil
	})
}

// timeEcho times r.N round trips after 100 warm-up ones and fills r's
// rate, CPU and p50/p99. roundTrip sends one message (send false: the
// first, already sent with the peer's mode byte) and waits for its echo.
func timeEcho(r *result, roundTrip func(send bool) error) error {
	rtt := make([]time.Duration, r.N)
	const warm = 100
	var t0 time.Time
	var ru0 time.Duration
	for i := -warm; i < r.N; i++ {
		if i == 0 {
			t0, ru0 = time.Now(), rusage()
		}
		ts := time.Now()
		if err := roundTrip(i > -warm); err != nil {
			return err
		}
		if i >= 0 {
			rtt[i] = time.Since(ts)
		}
	}
	r.rates(time.Since(t0), rusage()-ru0)
	slices.Sort(rtt)
	r.P50 = float64(rtt[r.N/2].Microseconds())
	r.P99 = float64(rtt[r.N*99/100].Microseconds())
	return nil
}

// measureStreams: n streams created (idle) or connected to the echo peer;
// heap (live heap and stacks after GC) and RSS per stream, and the time to
// all CONNECTED.
func measureStreams(ctx context.Context, rt *ss.Runtime, r *result) error {
	settle()
	runtime.GC()
	h0, rss0 := heap(), rss()
	t0 := time.Now()
	streams := make([]*ss.Stream, 0, r.N)
	defer func() {
		var wg sync.WaitGroup
		for _, s := range streams {
			wg.Add(1)
			go func() { defer wg.Done(); destroy(s, eventsOf(s, false)) }()
		}
		wg.Wait()
	}()
	name := "get"
	if r.Test == "connected" {
		name = "bench"
	}
	for range r.N {
		s, err := rt.Create(ctx, name)
		if err != nil {
			return err
		}
		streams = append(streams, s)
		if r.Test == "connected" {
			if err := s.Connect(); err != nil {
				return err
			}
		}
	}
	for _, s := range streams {
		want := ss.Creating
		if r.Test == "connected" {
			want = ss.Connected
		}
		if err := waitState(s, eventsOf(s, false), want, nil); err != nil {
			return err
		}
	}
	r.Seconds = time.Since(t0).Seconds()
	runtime.GC()
	r.Heap = float64(int64(heap())-int64(h0)) / float64(r.N)
	r.RSS = float64(rss()-rss0) / float64(r.N)
	return nil
}

// settle waits, at most 3 s, until the goroutine count has held for
// 600 ms, so that goroutines of earlier work (an attempt runner lingers
// 500 ms after its stream) do not end inside the measurement and take
// their stacks out of it.
func settle() {
	n, held := runtime.NumGoroutine(), 0
	for deadline := time.Now().Add(3 * time.Second); held < 6 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			held++
		} else {
			n, held = m, 0
		}
	}
}

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }

// destroy destroys s and reads its events to the end with next.
func destroy(s *ss.Stream, next func() (ss.Event, bool)) {
	go s.Destroy(context.Background())
	for _, ok := next(); ok; _, ok = next() {
	}
}

func heap() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

func rss() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rusage is the process's user + system CPU time so far.
func rusage() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
