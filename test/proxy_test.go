package test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/securestreams/ss/internal/ssbridge"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

var proxySeq atomic.Int64

// abstractName returns a unique abstract unix socket name.
func abstractName() string {
	return fmt.Sprintf("@ss-proxy-test-%d-%d", os.Getpid(), proxySeq.Add(1))
}

// inProcessProxy serves pol as an SS proxy on a fresh abstract socket until
// the test ends, and returns the client address and the proxy's runtime.
func inProcessProxy(t *testing.T, pol *policy.Policy) (string, *ss.Runtime) {
	t.Helper()
	name := abstractName()
	prt := newRuntime(t, ss.Config{Policy: pol})
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	stop := serveProxy(t, prt, ln)
	t.Cleanup(stop)
	return "unix:" + name, prt
}

// serveProxy serves prt on ln; the returned function stops it and waits.
func serveProxy(t *testing.T, prt *ss.Runtime, ln net.Listener) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	serve := prt.ServeProxy
	if proxyLoopOff() { // TestProxyNetPath
		srv := ssbridge.ProxyServer(prt)
		srv.Loop = proxy.LoopOff
		serve = srv.Serve
	}
	go func() { done <- serve(ctx, ln) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeProxy: %v", err)
		}
	}
}

// bothWays runs scenario twice: with a local runtime (/local) and with a
// proxied runtime whose streams an in-process proxy serving pol fulfils
// (/proxied). The scenario asserts the same events in both.
func bothWays(t *testing.T, bin string, pol *policy.Policy, scenario func(t *testing.T, rt *ss.Runtime)) {
	t.Run("local", func(t *testing.T) {
		scenario(t, newRuntime(t, ss.Config{Policy: pol}))
	})
	t.Run("proxied", func(t *testing.T) {
		addr, _ := inProcessProxy(t, pol)
		scenario(t, newRuntime(t, ss.Config{Proxy: addr}))
	})
	if bin == "" {
		return
	}
	t.Run("ssproxy", func(t *testing.T) {
		addr := startSSProxy(t, bin, pol)
		scenario(t, newRuntime(t, ss.Config{Proxy: addr}))
	})
}

// TestProxyScenarios runs the runtime's raw scenarios locally, through an
// in-process proxy and through the ssproxy binary, asserting the same
// events.
func TestProxyScenarios(t *testing.T) {
	t.Parallel()
	bin := buildSSProxy(t)
	for _, sc := range []struct {
		name string
		f    func(*testing.T, string)
	}{
		{"RawEcho", scenarioRawEcho},
		{"RawRefusedThenConnect", scenarioRawRefusedThenConnect},
		{"RawDestroyWhileConnecting", scenarioRawDestroyWhileConnecting},
		{"RawStartTimeout", scenarioRawStartTimeout},
		{"RawMetadata", scenarioRawMetadata},
		{"RawDisconnect", scenarioRawDisconnect},
		{"WSEcho", scenarioWSEcho},
		{"H1Get", scenarioH1Get},
		{"H1Post", scenarioH1Post},
		{"H1NotFound", scenarioH1NotFound},
		{"H1RespMap", scenarioH1RespMap},
		{"LinkLossTxPending", scenarioLinkLossTxPending},
		{"H1MetadataWriters", scenarioH1MetadataWriters},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.f(t, bin) })
	}
}

// buildSSProxy builds cmd/ssproxy once per test run and returns its path;
// under -short it returns "" (callers skip the binary variant).
func buildSSProxy(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		return ""
	}
	ssproxyOnce.Do(func() {
		bin := filepath.Join(binDir, "ssproxy")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/securestreams/ss/cmd/ssproxy").CombinedOutput()
		if err != nil {
			ssproxyErr = fmt.Errorf("go build ./cmd/ssproxy: %v\n%s", err, out)
			return
		}
		ssproxyBin = bin
	})
	if ssproxyErr != nil {
		t.Fatal(ssproxyErr)
	}
	return ssproxyBin
}

var (
	ssproxyOnce sync.Once
	ssproxyBin  string
	ssproxyErr  error
)

// startSSProxy runs the ssproxy binary with pol on a fresh abstract socket;
// at cleanup it sends SIGTERM and checks for a clean exit.
func startSSProxy(t *testing.T, bin string, pol *policy.Policy) string {
	t.Helper()
	addr, _ := startSSProxyPID(t, bin, pol)
	return addr
}

// startSSProxyPID is startSSProxy returning the process id too.
func startSSProxyPID(t *testing.T, bin string, pol *policy.Policy) (string, int) {
	t.Helper()
	return startSSProxyOn(t, bin, pol, abstractName())
}

// startSSProxyOn is startSSProxyPID on a given abstract socket name (to
// restart a proxy where its clients look for it).
func startSSProxyOn(t *testing.T, bin string, pol *policy.Policy, name string) (string, int) {
	t.Helper()
	js, err := pol.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(file, js, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-policy", file, "-listen", "unix:"+name)
	if proxyLoopOff() { // TestProxyNetPath
		cmd.Args = append(cmd.Args, "-event-loop", "off")
	}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("ssproxy exit: %v; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("ssproxy did not exit after SIGTERM; stderr:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(wait)
	for {
		c, err := net.Dial("unix", name)
		if err == nil {
			c.Close() // the proxy sees a link without STREAMTYPE and closes it
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("ssproxy exited: %v; stderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssproxy not listening: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "unix:" + name, cmd.Process.Pid
}

func scenarioRawEcho(t *testing.T, bin string) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	bothWays(t, bin, newPolicy(rawType("echo", "127.0.0.1", srv.Port())), func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "echo")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		if err := s.Send(ctx, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		r.untilBytes(wait, 5)
		if err := s.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"hello")`, "DISCONNECTED", "DESTROYING")
	})
}

func scenarioRawRefusedThenConnect(t *testing.T, bin string) {
	// A unix socket path the test owns, not a TCP port that was free a
	// moment ago.
	path := filepath.Join(t.TempDir(), "later.sock")
	st := rawType("refused", "+"+path, 0)
	st.Retry = retry(2, 0, 50, 100)
	st.RetryName = st.Retry.Name
	pol := newPolicy(st)
	pol.Retry = []*policy.Retry{st.Retry}
	bothWays(t, bin, pol, func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "refused")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		t0 := time.Now()
		if err := s.Send(ctx, []byte("up")); err != nil {
			t.Fatal(err)
		}
		r.untilState(wait, ss.AllRetriesFailed)
		r.expect("CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "UNREACHABLE",
			"POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
		// Arrival times after Send are lower bounds of when the runtime
		// (here or in the proxy) emitted each POLL, however slow the reader.
		polls := r.since(t0, ss.Poll)
		if len(polls) != 3 || polls[1] < 50*time.Millisecond || polls[2] < 150*time.Millisecond {
			t.Fatalf("POLLs at %v after Send, want the 2nd ≥ 50ms and the 3rd ≥ 150ms", polls)
		}
		srv := testutil.Listen(t, "unix", path, nil, testutil.Echo)
		defer srv.Close()
		if err := s.Connect(); err != nil {
			t.Fatal(err)
		}
		r.untilBytes(wait, 2)
		if err := s.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "UNREACHABLE",
			"POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED",
			"CONNECTING", "CONNECTED", `rx(0,"up")`, "DISCONNECTED", "DESTROYING")
	})
}

func scenarioRawDestroyWhileConnecting(t *testing.T, bin string) {
	srv := hangingServer(t)
	st := rawType("hang", "127.0.0.1", srv.Port())
	st.TLS = true
	st.NailedUp = true
	bothWays(t, bin, newPolicy(st), func(t *testing.T, rt *ss.Runtime) {
		s, err := rt.Create(context.Background(), "hang")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		r.untilState(wait, ss.Connecting)
		time.Sleep(20 * time.Millisecond)
		if err := s.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
		r.closed(wait)
		r.expect("CREATING", "CONNECTING", "DESTROYING")
		if err := s.Send(context.Background(), []byte("x")); err == nil {
			t.Fatal("Send after Destroy succeeded")
		}
	})
}

func scenarioRawStartTimeout(t *testing.T, bin string) {
	srv := hangingServer(t)
	st := rawType("slow", "127.0.0.1", srv.Port())
	st.TLS = true
	bothWays(t, bin, newPolicy(st), func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		start := time.Now()
		if err := s.StartTimeout(50 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
		r.untilState(wait, ss.Timeout)
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Fatalf("TIMEOUT after %v", d)
		}
		select {
		case ev := <-s.Events():
			t.Fatalf("unexpected %v after TIMEOUT", ev)
		case <-time.After(100 * time.Millisecond):
		}
		if err := s.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "TIMEOUT", "DESTROYING")
	})
}

// TestProxyBothRawMetadata: a metadata value set by the application is
// substituted into the endpoint by whichever runtime runs the stream.
func scenarioRawMetadata(t *testing.T, bin string) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	pol, _, err := policy.Parse([]byte(fmt.Sprintf(`{"schema-version": 1, "s": [{"md": {
		"protocol": "raw", "endpoint": "${host}", "port": %d, "metadata": [{"host": ""}]}}]}`, srv.Port())), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bothWays(t, bin, pol, func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "md", ss.WithMetadata("host", "127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		if v, ok := s.Metadata("host"); !ok || v != "127.0.0.1" {
			t.Fatalf("Metadata(host) = %q, %v", v, ok)
		}
		s.Send(ctx, []byte("md"))
		r.untilBytes(wait, 2)
		s.Destroy(ctx)
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"md")`, "DISCONNECTED", "DESTROYING")
	})
}

// TestProxyLinkRetry: no proxy listens: UPSTREAM_LINK_RETRY about once a
// second; then the proxy starts and the stream proceeds.
func TestProxyLinkRetry(t *testing.T) {
	t.Parallel()
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	pol := newPolicy(rawType("echo", "127.0.0.1", srv.Port()))
	name := abstractName()
	prt := newRuntime(t, ss.Config{Policy: pol})
	rt := newRuntime(t, ss.Config{Proxy: "unix:" + name})
	ctx := context.Background()
	s, err := rt.Create(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	s.Send(ctx, []byte("late"))
	r.untilState(wait, ss.UpstreamLinkRetry)
	ev := r.untilState(wait, ss.UpstreamLinkRetry)
	// ms since creation, from the runtime's clock (not the reader's): two
	// link retries one second apart; the cap leaves room for a loaded machine.
	if ev.Ack < 900 || ev.Ack > 5000 {
		t.Fatalf("second UPSTREAM_LINK_RETRY ack %d ms, want about 1000", ev.Ack)
	}
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer serveProxy(t, prt, ln)()
	r.untilBytes(wait, 4)
	s.Destroy(ctx)
	r.closed(wait)
	// CREATING first (docs/stream-states.md), however many link retries.
	var kept []ss.Event
	for _, ev := range r.ev {
		if ev.Kind != ss.StateEvent || ev.State != ss.UpstreamLinkRetry {
			kept = append(kept, ev)
		}
	}
	if r.ev[0].State != ss.Creating {
		t.Fatalf("first event %v, want CREATING", r.ev[0])
	}
	r.ev = kept
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"late")`, "DISCONNECTED", "DESTROYING")
}

// TestProxyRestart: the proxy goes away mid-run: DISCONNECTED, link
// retries, and once it is back the stream reconnects without a second
// CREATING.
func TestProxyRestart(t *testing.T) {
	t.Parallel()
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	pol := newPolicy(rawType("echo", "127.0.0.1", srv.Port()))
	name := abstractName()
	prt := newRuntime(t, ss.Config{Policy: pol})
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	stop := serveProxy(t, prt, ln)
	rt := newRuntime(t, ss.Config{Proxy: "unix:" + name})
	ctx := context.Background()
	s, err := rt.Create(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	s.Send(ctx, []byte("one"))
	r.untilBytes(wait, 3)
	stop()
	r.untilState(wait, ss.Disconnected)
	r.untilState(wait, ss.UpstreamLinkRetry)
	ln, err = net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer serveProxy(t, prt, ln)()
	r.untilState(wait, ss.Connected)
	s.Send(ctx, []byte("two"))
	r.untilBytes(wait, 6)
	s.Destroy(ctx)
	r.closed(wait)
	got := r.String()
	want := `CREATING, POLL, CONNECTING, CONNECTED, rx(0,"one"), DISCONNECTED, `
	if len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("events %s", got)
	}
	var creating int
	for _, ev := range r.ev {
		if ev.Kind == ss.StateEvent && ev.State == ss.Creating {
			creating++
		}
	}
	if creating != 1 {
		t.Fatalf("%d CREATING: %s", creating, got)
	}
	if r.payload() != "onetwo" {
		t.Fatalf("payload %q", r.payload())
	}
}

// TestProxyUnknownStreamtype: the proxy answers "failed"; the client keeps
// retrying the link and reports nothing but its CREATING and, when
// destroyed, DESTROYING.
func TestProxyUnknownStreamtype(t *testing.T) {
	addr, _ := inProcessProxy(t, newPolicy(rawType("echo", "127.0.0.1", 1)))
	rt := newRuntime(t, ss.Config{Proxy: addr})
	s, err := rt.Create(context.Background(), "nosuch")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	time.Sleep(300 * time.Millisecond)
	s.Destroy(context.Background())
	r.closed(wait)
	r.expect("CREATING", "DESTROYING")
	if _, err := rt.Create(context.Background(), "this-streamtype-name-is-far-too-long-for-sssv1"); err == nil {
		t.Fatal("Create with a 46-byte name succeeded")
	}
}

var _ = proxy.DefaultAddress

// TestProxyGoldenExchange replays docs/wire.md §10 with a hand-written client
// against the proxy and a raw onward peer answering "world" to "hello":
// the proxy's bytes must be exact, timestamps aside.
func TestProxyGoldenExchange(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err == nil && string(buf) == "hello" {
			c.Write([]byte("world"))
		}
		io.Copy(io.Discard, c)
	})
	addr, _ := inProcessProxy(t, newPolicy(rawType("mintest", "127.0.0.1", srv.Port())))
	c, err := net.Dial("unix", addr[len("unix:"):])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	read := func(n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("reading %d bytes: %v", n, err)
		}
		return b
	}
	var got []byte
	c.Write(h("aa001001000012341dcd65006d696e74657374b1000400000005"))
	got = append(got, read(16)...) // CREATE_RESULT
	c.Write(h("ab0000"))
	got = append(got, read(4*8)...) // CREATING, POLL, CONNECTING, CONNECTED
	c.Write(h("ad00150000000300000000000000002da7dc1868656c6c6f"))
	got = append(got, read(24)...)                    // RX_PAYLOAD "world"
	copy(got[len(got)-24+11:], h("000000002da7dcc8")) // the proxy's own timestamp
	want := h("56000d00000000002c6d696e7465737457000501000000005700050800000000570005060000000057000505000000005500150000000000000000000000002da7dcc8776f726c64")
	if !bytes.Equal(got, want) {
		t.Fatalf("proxy→client:\n got  %x\n want %x", got, want)
	}
}

// TestProxyFlowControl: a fast onward producer and a slow proxied client:
// every byte arrives in order and the proxy's memory stays bounded (nothing
// is buffered without limit on the way): the heap of the process holding an
// in-process proxy (/inproc), and the resident set of the ssproxy binary
// (/ssproxy).
func TestProxyFlowControl(t *testing.T) {
	const total = 32 << 20
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for off := 0; off < total; off += len(buf) {
			flowPattern(off, buf)
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		io.Copy(io.Discard, c)
	})
	st := rawType("firehose", "127.0.0.1", srv.Port())
	st.NailedUp = true
	pol := newPolicy(st)
	t.Run("inproc", func(t *testing.T) {
		addr, _ := inProcessProxy(t, pol)
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		peak := flowRun(t, addr, total, func() int64 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return int64(ms.HeapAlloc)
		})
		grew := peak - int64(base.HeapAlloc)
		t.Logf("heap peak %.1f MiB above the start (client and proxy)", float64(grew)/(1<<20))
		if grew > 20<<20 {
			t.Fatalf("heap grew by %d bytes while %d bytes passed: not bounded", grew, total)
		}
	})
	t.Run("ssproxy", func(t *testing.T) {
		bin := buildSSProxy(t)
		if bin == "" {
			t.Skip("-short")
		}
		addr, pid := startSSProxyPID(t, bin, pol)
		rss := func() int64 {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return 0
			}
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					return kb << 10
				}
			}
			return 0
		}
		base := rss()
		peak := flowRun(t, addr, total, rss)
		t.Logf("ssproxy RSS %.1f MiB at the start, peak %.1f MiB", float64(base)/(1<<20), float64(peak)/(1<<20))
		if peak-base > 24<<20 {
			t.Fatalf("ssproxy RSS grew by %d bytes while %d bytes passed: not bounded", peak-base, total)
		}
	})
}

func flowPattern(off int, b []byte) {
	for i := range b {
		b[i] = byte((off + i) * 7 >> 3)
	}
}

// flowRun reads total bytes slowly from a proxied nailed-up "firehose"
// stream, checking their order, and returns the peak of mem sampled
// meanwhile.
func flowRun(t *testing.T, addr string, total int, mem func() int64) int64 {
	rt := newRuntime(t, ss.Config{Proxy: addr})
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if m := mem(); m > peak.Load() {
				peak.Store(m)
			}
		}
	}()
	ctx := context.Background()
	s, err := rt.Create(ctx, "firehose")
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	want := make([]byte, 0, 64<<10)
	deadline := time.After(60 * time.Second)
	for got < total {
		select {
		case ev := <-s.Events():
			if ev.Kind != ss.PayloadEvent {
				continue
			}
			if cap(want) < len(ev.Payload) {
				want = make([]byte, 0, len(ev.Payload))
			}
			want = want[:len(ev.Payload)]
			flowPattern(got, want)
			if !bytes.Equal(ev.Payload, want) {
				t.Fatalf("payload differs at offset %d", got)
			}
			got += len(ev.Payload)
			if got%(1<<20) < len(ev.Payload) {
				time.Sleep(15 * time.Millisecond) // slow consumer
			}
		case <-deadline:
			t.Fatalf("only %d of %d bytes", got, total)
		}
	}
	close(stop)
	<-sampled
	s.Destroy(ctx)
	for range s.Events() {
	}
	return peak.Load()
}

// scenarioWSEcho: ws echo with a handshake response header captured into
// metadata (proxied: forwarded as METADATA before CONNECTED), Send and a
// fragmented Write.
func scenarioWSEcho(t *testing.T, bin string) {
	port := wsServer(t, http.Header{"X-Srv": {"v1"}}, wsEcho)
	pol, _, err := policy.Parse([]byte(fmt.Sprintf(`{"schema-version": 1, "s": [{"wsecho": {
		"protocol": "ws", "endpoint": "127.0.0.1:%d", "ws_binary": true,
		"metadata": [{"srv": "x-srv:"}]}}]}`, port)), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bothWays(t, bin, pol, func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "wsecho")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		if err := s.Send(ctx, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		r.untilBytes(wait, 2)
		if v, _ := s.Metadata("srv"); v != "v1" {
			t.Errorf("metadata srv = %q, want v1", v)
		}
		for _, w := range []struct {
			p string
			f ss.Flags
		}{{"fr", ss.SOM}, {"ag", 0}, {"ment", ss.EOM}} {
			if err := s.Write(ctx, []byte(w.p), w.f); err != nil {
				t.Fatal(err)
			}
		}
		r.untilBytes(wait, 10)
		s.Destroy(ctx)
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(SOM|EOM,"hi")`, `rx(SOM|EOM,"fragment")`,
			"DISCONNECTED", "DESTROYING")
	})
}

// scenarioRawDisconnect: Disconnect leaves the stream idle; the next Send
// connects again.
func scenarioRawDisconnect(t *testing.T, bin string) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	bothWays(t, bin, newPolicy(rawType("echo", "127.0.0.1", srv.Port())), func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "echo")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		s.Send(ctx, []byte("a"))
		r.untilBytes(wait, 1)
		if err := s.Disconnect(); err != nil {
			t.Fatal(err)
		}
		r.untilState(wait, ss.Disconnected)
		s.Send(ctx, []byte("b"))
		r.untilBytes(wait, 2)
		s.Destroy(ctx)
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"a")`, "DISCONNECTED",
			"POLL", "CONNECTING", "CONNECTED", `rx(0,"b")`, "DISCONNECTED", "DESTROYING")
	})
}
