package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/ssbridge"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
	"github.com/securestreams/ss/policy"
)

// Onward raw connections parked in the proxy's event loop (docs/proxy.md,
// "Event loop"). Each test runs with the loop (the default) and, through
// TestProxyNetPath, again with -event-loop off, where the same
// behaviour must hold on the goroutine path.

// testProxyLoopEnv, set to "off", makes the proxies of these tests and of
// TestProxyScenarios run without the event loop (TestProxyNetPath).
const testProxyLoopEnv = "SS_TEST_PROXY_LOOP"

func proxyLoopOff() bool { return os.Getenv(testProxyLoopEnv) == "off" }

// TestProxyNetPath runs the proxy scenario tables and the parked-onward
// tests again with the proxy's event loop off (in-process: LoopOff; the
// binary: -event-loop off), in a child process.
func TestProxyNetPath(t *testing.T) {
	if proxyLoopOff() {
		t.Skip("already the net path")
	}
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.run", "^(TestProxyScenarios|TestParkedOnward.*|TestProxyRxflowSlowClient)$")
	cmd.Env = append(os.Environ(), testProxyLoopEnv+"=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("proxy tests with the event loop off: %v\n%s", err, out)
	}
}

// parkedProxy serves pol's streamtypes from an in-process proxy server
// (the event loop unless proxyLoopOff) until the test ends; it returns
// the client address and the server.
func parkedProxy(t *testing.T, pol *policy.Policy) (string, *proxy.Server) {
	t.Helper()
	addr, srv, stop := startParkedProxy(t, pol)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return addr, srv
}

// startParkedProxy is parkedProxy with the stop left to the caller: stop
// ends Serve, closes the proxy's runtime and waits until no goroutine of
// the event loop or the raw transport is left.
func startParkedProxy(t *testing.T, pol *policy.Policy) (string, *proxy.Server, func() error) {
	t.Helper()
	prt, err := ss.New(context.Background(), ss.Config{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	srv := ssbridge.ProxyServer(prt)
	if proxyLoopOff() {
		srv.Loop = proxy.LoopOff
	}
	name := abstractName()
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("Serve: %w", err)
			}
		case <-time.After(wait):
			return errors.New("Serve did not return")
		}
		cctx, ccancel := context.WithTimeout(context.Background(), wait)
		defer ccancel()
		if err := prt.Close(cctx); err != nil {
			return fmt.Errorf("runtime Close: %w", err)
		}
		leftover := append([]string{"internal/evloop."}, rawReaders...)
		if !testutil.WaitFor(cctx, func() bool { return testutil.GoroutinesIn(leftover...) == 0 }) {
			return fmt.Errorf("%d goroutines of the event loop or the raw transport left", testutil.GoroutinesIn(leftover...))
		}
		return nil
	}
	return "unix:" + name, srv, stop
}

// connectedLink opens a link of streamtype name and waits for CONNECTED.
func connectedLink(t *testing.T, addr, name string) *ssproxytest.Link {
	t.Helper()
	l := ssproxytest.MustDial(t, addr)
	l.MustCreate(t, name)
	if err := l.WaitState(event.Connected, wait); err != nil {
		t.Fatal(err)
	}
	return l
}

// rawReaders are the raw transport's functions a goroutine reading or
// writing an onward connection is in.
var rawReaders = []string{"transport/raw.readLoop", "transport/raw.pipeDirect", "transport/raw.(*parkedConn)", "transport/raw.(*directWriter).writeQueued"}

// TestParkedOnwardNoReader: with the event loop, a connected onward raw
// stream has no goroutine (its socket is parked with the link's); round
// trips still work. With -event-loop off each has its reader.
func TestParkedOnwardNoReader(t *testing.T) {
	const n = 50
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	st := rawType("park", "127.0.0.1", echo.Port())
	st.NailedUp = true
	addr, _ := parkedProxy(t, newPolicy(st))
	links := make([]*ssproxytest.Link, n)
	for i := range links {
		links[i] = connectedLink(t, addr, "park")
	}
	for i, l := range links {
		if err := l.RoundTrip([]byte("ping "+string(rune('a'+i%26))), wait); err != nil {
			t.Fatalf("link %d: %v", i, err)
		}
	}
	time.Sleep(20 * time.Millisecond) // writers started for a burst end
	got := testutil.GoroutinesIn(rawReaders...)
	switch {
	case proxyLoopOff():
		if got < n {
			t.Fatalf("event loop off: %d raw transport goroutines for %d connections, want one each", got, n)
		}
	case runtime.GOOS == "linux" && got != 0:
		t.Fatalf("%d raw transport goroutines for %d parked connections, want none", got, n)
	}
	for i, l := range links {
		if err := l.RoundTrip(bytes.Repeat([]byte{byte(i)}, 64), wait); err != nil {
			t.Fatalf("link %d after parking: %v", i, err)
		}
	}
}

// TestParkedOnwardPeerCloses: the onward peer closing a parked connection
// reaches the client as DISCONNECTED, after the payload before it; the
// nailed-up stream connects again.
func TestParkedOnwardPeerCloses(t *testing.T) {
	var accepted atomic.Int32
	peer := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		accepted.Add(1)
		buf := make([]byte, 4)
		if _, err := c.Read(buf); err != nil {
			return
		}
		c.Write([]byte("bye!"))
		c.Close()
	})
	st := rawType("closer", "127.0.0.1", peer.Port())
	st.NailedUp = true
	st.Retry = retry(5, 0, 10)
	addr, _ := parkedProxy(t, newPolicy(st))
	l := connectedLink(t, addr, "closer")
	if err := l.Send(&proxy.TxPayload{Flags: event.SOM | event.EOM, Payload: []byte("ping")}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		m, err := l.Next(wait)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if p, ok := m.(*proxy.RxPayload); ok {
			got = append(got, p.Payload...)
			continue
		}
		if cs, ok := m.(*proxy.ConnState); ok && cs.State == event.Disconnected {
			break
		}
	}
	if string(got) != "bye!" {
		t.Fatalf("payload before DISCONNECTED %q, want %q", got, "bye!")
	}
	if err := l.WaitState(event.Connected, wait); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	// The peer counts on its handler's goroutine, which may run after the
	// client already saw CONNECTED: wait for the count, bounded.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if !testutil.WaitFor(ctx, func() bool { return accepted.Load() >= 2 }) {
		t.Fatalf("peer accepted %d connections, want a reconnection", accepted.Load())
	}
}

// sendPattern sends total bytes of flowPattern in TX_PAYLOADs of chunk
// bytes on l, counting them in sent; it stops at the first error.
func sendPattern(l *ssproxytest.Link, total, chunk int, sent *atomic.Int64) error {
	buf := make([]byte, chunk)
	for off := 0; off < total; off += chunk {
		flowPattern(off, buf)
		if err := l.Send(&proxy.TxPayload{Flags: event.SOM | event.EOM, Payload: buf}); err != nil {
			return err
		}
		sent.Add(int64(chunk))
	}
	return nil
}

// TestParkedOnwardPeerSlow: an onward peer that does not read stops the
// proxy reading the link (tx back-pressure: the client gets only socket
// buffers and proxy_buflen ahead), and once it reads, every byte arrives
// in order.
func TestParkedOnwardPeerSlow(t *testing.T) {
	const total, chunk = 32 << 20, 16 << 10
	release := make(chan struct{})
	var received atomic.Int64
	bad := make(chan int, 1)
	peer := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		<-release
		buf := make([]byte, 64<<10)
		want := make([]byte, len(buf))
		off := 0
		for off < total {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			flowPattern(off, want[:n])
			if !bytes.Equal(buf[:n], want[:n]) {
				bad <- off
				return
			}
			off += n
			received.Store(int64(off))
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	st := rawType("slowpeer", "127.0.0.1", peer.Port())
	st.NailedUp = true
	addr, _ := parkedProxy(t, newPolicy(st))
	l := connectedLink(t, addr, "slowpeer")
	var sent atomic.Int64
	sendDone := make(chan error, 1)
	go func() { sendDone <- sendPattern(l, total, chunk, &sent) }()
	time.Sleep(500 * time.Millisecond)
	held := sent.Load()
	// Loopback TCP buffers autotune to a few MiB each way; the proxy
	// itself holds at most proxy_buflen (32 KiB) of the link's payload.
	if held >= 20<<20 {
		t.Fatalf("the client sent %d bytes to a peer that reads nothing: no back-pressure", held)
	}
	t.Logf("sent while the peer was not reading: %d bytes", held)
	close(release)
	if err := <-sendDone; err != nil {
		t.Fatalf("send after %d bytes: %v", sent.Load(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testutil.WaitFor(ctx, func() bool {
		select {
		case off := <-bad:
			t.Fatalf("the peer received different bytes at offset %d", off)
		default:
		}
		return received.Load() == total
	})
	if got := received.Load(); got != total {
		t.Fatalf("the peer received %d of %d bytes", got, total)
	}
}

// TestParkedOnwardClientSlow: a client that does not read stops the
// proxy reading the onward peer (rx back-pressure: the link's queue stays
// within on_above plus one chunk, the stream's within its budget, the
// peer's writes stall), and once it reads, every byte arrives in order.
func TestParkedOnwardClientSlow(t *testing.T) {
	const total = 32 << 20
	var written atomic.Int64
	peer := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for off := 0; off < total; off += len(buf) {
			flowPattern(off, buf)
			if _, err := c.Write(buf); err != nil {
				return
			}
			written.Add(int64(len(buf)))
		}
		io.Copy(io.Discard, c)
	})
	st := rawType("slowclient", "127.0.0.1", peer.Port())
	st.NailedUp = true
	addr, srv := parkedProxy(t, newPolicy(st))
	l := connectedLink(t, addr, "slowclient")
	time.Sleep(500 * time.Millisecond)
	if w := written.Load(); w >= 20<<20 {
		t.Fatalf("the peer wrote %d bytes to a client that reads nothing: no back-pressure", w)
	}
	t.Logf("written while the client was not reading: %d bytes", written.Load())
	if behind := testutil.GoroutinesIn("transport/raw.(*parkedConn).rxBehind"); !proxyLoopOff() && runtime.GOOS == "linux" && behind != 1 {
		t.Fatalf("%d goroutines wait for the client's room, want the parked connection's one", behind)
	}
	readPatternRx(t, total, func() (proxy.Message, error) { return l.Next(wait) }, nil)
	bound := 32768 + 64<<10 + 2*(proxy.HeaderLen+proxy.PayloadHeaderLen)
	if hw := srv.QueueHighWater(); hw > bound {
		t.Fatalf("link queue high water %d > on_above + one chunk (%d)", hw, bound)
	}
}

// readPatternRx reads frames with next until RX_PAYLOADs have brought
// total bytes of flowPattern, failing the test on a read error or bytes
// out of order; each, when set, is called after every payload with the
// bytes received so far and the payload's length.
func readPatternRx(t *testing.T, total int, next func() (proxy.Message, error), each func(got, n int)) {
	t.Helper()
	got := 0
	want := make([]byte, 0, 64<<10)
	for got < total {
		m, err := next()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		rx, ok := m.(*proxy.RxPayload)
		if !ok {
			continue
		}
		want = want[:len(rx.Payload)]
		flowPattern(got, want)
		if !bytes.Equal(rx.Payload, want) {
			t.Fatalf("payload differs at offset %d", got)
		}
		got += len(rx.Payload)
		if each != nil {
			each(got, len(rx.Payload))
		}
	}
}

// TestParkedOnwardDestroyMidWrite: the proxy stopping while an onward
// socket is full (its writer waits for room, the link waits for the
// stream's transmit queue) destroys the stream mid-write: Serve returns,
// the runtime closes, and no goroutine of the raw transport or the event
// loop is left. (A client closing its link in that state is noticed only
// once the link's pending TX_PAYLOAD is queued, as before the loop.)
func TestParkedOnwardDestroyMidWrite(t *testing.T) {
	release := make(chan struct{})
	stall := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		c.(*net.TCPConn).SetReadBuffer(4096)
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		c.Write(buf)
		<-release // never read again
	})
	t.Cleanup(func() { close(release) }) // before the server's cleanup
	st := rawType("stall", "127.0.0.1", stall.Port())
	st.NailedUp = true
	addr, srv, stop := startParkedProxy(t, newPolicy(st))
	defer stop()
	l := connectedLink(t, addr, "stall")
	if err := l.RoundTrip([]byte("full"), wait); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	go sendPattern(l, 64<<20, 16<<10, &sent)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	writing := "transport/raw.(*directWriter).writeQueued"
	// Stalled: the onward writer waits for room.
	if !testutil.WaitFor(ctx, func() bool { return testutil.GoroutinesIn(writing) > 0 && srv.Links() == 1 }) {
		t.Fatal("no writer waiting on the full onward socket")
	}
	time.Sleep(100 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("stopping the proxy mid-write (%d bytes sent): %v", sent.Load(), err)
	}
}

// TestParkedOnwardProxyClose: stopping the proxy server and closing its
// runtime with parked onward connections ends every one of them (no
// goroutine of the raw transport or the event loop is left; TestMain's
// goleak checks the rest).
func TestParkedOnwardProxyClose(t *testing.T) {
	const n = 30
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	st := rawType("closing", "127.0.0.1", echo.Port())
	st.NailedUp = true
	addr, _, stop := startParkedProxy(t, newPolicy(st))
	defer stop()
	for range n {
		l := connectedLink(t, addr, "closing")
		if err := l.RoundTrip([]byte("ping"), wait); err != nil {
			t.Fatal(err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRawEventLoop: with Config.EventLoop, connected raw streams of the
// in-process runtime are parked in the runtime's event loop (no goroutine
// of the raw transport each) and carry payload both ways as without it;
// Close ends them (goleak in TestMain). TestRawPeerResets/loop checks the
// peer's reset with the loop.
func TestRawEventLoop(t *testing.T) {
	const n = 40
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	st := rawType("loop", "127.0.0.1", echo.Port())
	st.NailedUp = true
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st), EventLoop: true})
	ctx := context.Background()
	recs := make([]*recorder, n)
	streams := make([]*ss.Stream, n)
	for i := range streams {
		s, err := rt.Create(ctx, "loop")
		if err != nil {
			t.Fatal(err)
		}
		streams[i], recs[i] = s, record(t, s)
	}
	for _, r := range recs {
		r.untilState(wait, ss.Connected)
	}
	time.Sleep(20 * time.Millisecond)
	if got := testutil.GoroutinesIn(rawReaders...); runtime.GOOS == "linux" && got != 0 {
		t.Fatalf("%d raw transport goroutines for %d connected streams in the event loop, want none", got, n)
	}
	for i, s := range streams {
		if err := s.Send(ctx, []byte("ping")); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	for _, r := range recs {
		r.untilBytes(wait, 4)
	}
	for i, r := range recs {
		if p := r.payload(); p != "ping" {
			t.Fatalf("stream %d echoed %q", i, p)
		}
	}
}
