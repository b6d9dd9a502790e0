//go:build linux

package evloop

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/securestreams/ss/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(busyPollRun{m}, testutil.GoleakOptions()...)
}

// testBusyPollEnv, set to a duration, makes newPoller busy-poll
// (Config.BusyPoll): busyPollRun runs the tests again that way in a child
// process, beside the parent's run.
const testBusyPollEnv = "SS_EVLOOP_TEST_BUSY_POLL"

// busyPollRun runs the package's tests, and the same tests with busy
// polling on in a child process started first: the spin must not change
// what a Poller does.
type busyPollRun struct{ m *testing.M }

func (r busyPollRun) Run() int {
	if os.Getenv(testBusyPollEnv) != "" {
		return r.m.Run()
	}
	flag.Parse()
	args := []string{"-test.count=1", "-test.run", flag.Lookup("test.run").Value.String()}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), testBusyPollEnv+"=200us")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "evloop: tests with busy polling:", err)
		return 1
	}
	code := r.m.Run()
	if err := cmd.Wait(); err != nil {
		fmt.Fprintf(os.Stderr, "evloop: tests with busy polling (%s=200us): %v\n%s", testBusyPollEnv, err, out.Bytes())
		return 1
	}
	return code
}

// testPollerConfig is the Config newPoller uses: busy polling as
// testBusyPollEnv says.
func testPollerConfig() Config {
	d, _ := time.ParseDuration(os.Getenv(testBusyPollEnv))
	return Config{BusyPoll: d}
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPollerConfig(testPollerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// pair returns a connected Unix socket pair: an adopted *Conn (the server
// side) and the plain client side.
func pair(t *testing.T, p *Poller) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", "@evloop-test-"+t.Name()+"-"+time.Now().Format("150405.000000000"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Adopt(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cc.Close() })
	return c, cc
}

// echoInline parks c with a readable handler that echoes what it reads,
// inline on the poller's thread, until the end of the stream.
func echoInline(c *Conn, ended chan<- error) {
	buf := make([]byte, 4096)
	c.SetNonblockingReads(true)
	c.SetHandlers(func() {
		for {
			n, err := c.Read(buf)
			if errors.Is(err, ErrWouldBlock) {
				return
			}
			if err != nil {
				c.Unpark()
				ended <- err
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				c.Unpark()
				ended <- err
				return
			}
		}
	}, func() { ended <- errors.New("woken") })
}

// TestManyParkedLinks: 500 parked sockets cost no goroutine each; every
// one answers round trips inline, and reports its end once.
func TestManyParkedLinks(t *testing.T) {
	p := newPoller(t)
	const n = 500
	before := runtime.NumGoroutine()
	ended := make(chan error, n)
	clients := make([]net.Conn, n)
	for i := range clients {
		c, cc := pair(t, p)
		echoInline(c, ended)
		if !c.Park() {
			t.Fatal("Park refused")
		}
		clients[i] = cc
	}
	if g := runtime.NumGoroutine() - before; g > 10 {
		t.Errorf("%d goroutines for %d parked sockets", g, n)
	}
	for round := range 3 {
		for i, cc := range clients {
			msg := []byte{byte(i), byte(round), 1, 2, 3}
			if _, err := cc.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			cc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(cc, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("link %d round %d: %q, %v", i, round, got, err)
			}
		}
	}
	for _, cc := range clients {
		cc.Close()
	}
	for range n {
		select {
		case err := <-ended:
			if err != io.EOF {
				t.Errorf("end: %v, want EOF", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not every link saw its end")
		}
	}
}

// TestWriteWaitsForSlowReader: TryWrite takes what the socket buffer takes
// and no more; Write waits (EPOLLOUT) while the peer reads slowly, and
// every byte arrives in order.
func TestWriteWaitsForSlowReader(t *testing.T) {
	p := newPoller(t)
	c, cc := pair(t, p)
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	n, err := c.TryWrite(big)
	if err != nil || n == 0 || n >= len(big) {
		t.Fatalf("TryWrite of 4 MiB to an unread socket: %d, %v (want a short count)", n, err)
	}
	if m, err := c.TryWrite(big[n:]); m != 0 || err != nil {
		t.Fatalf("TryWrite on a full socket: %d, %v, want 0, nil", m, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(big[n:])
		done <- err
	}()
	slowRead(t, cc, big, nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// slowRead reads len(want) bytes from cc, pausing 1 ms before each read
// (a slow reader), calling each (when set) before each read too, and
// checks they are want.
func slowRead(t *testing.T, cc net.Conn, want []byte, each func()) {
	t.Helper()
	got := make([]byte, 0, len(want))
	buf := make([]byte, 32<<10)
	for len(got) < len(want) {
		time.Sleep(time.Millisecond)
		if each != nil {
			each()
		}
		m, err := cc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:m]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
}

// TestCloseDuringWrite: a Write blocked on a peer that does not read
// returns net.ErrClosed when the Conn is closed; a write deadline ends it
// too.
func TestCloseDuringWrite(t *testing.T) {
	p := newPoller(t)
	big := make([]byte, 8<<20)
	for _, how := range []string{"close", "deadline"} {
		c, _ := pair(t, p)
		done := make(chan error, 1)
		go func() {
			_, err := c.Write(big)
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("%s: Write returned before: %v", how, err)
		default:
		}
		want := net.ErrClosed
		if how == "close" {
			c.Close()
		} else {
			c.SetWriteDeadline(time.Now())
			want = os.ErrDeadlineExceeded
		}
		select {
		case err := <-done:
			if !errors.Is(err, want) {
				t.Errorf("%s: %v, want %v", how, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Write still blocked", how)
		}
	}
}

// TestParkedWake: closing a parked Conn, or its read deadline passing,
// unparks it and calls onWake once; Park then refuses; a Park before the
// deadline is kept.
func TestParkedWake(t *testing.T) {
	p := newPoller(t)
	for _, how := range []string{"close", "deadline"} {
		c, _ := pair(t, p)
		var wakes atomic.Int32
		woke := make(chan struct{}, 2)
		c.SetNonblockingReads(true)
		c.SetHandlers(func() { t.Error("readable without data") }, func() { wakes.Add(1); woke <- struct{}{} })
		if how == "deadline" {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		}
		if !c.Park() {
			t.Fatal("Park refused")
		}
		if how == "close" {
			c.Close()
		}
		select {
		case <-woke:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no wake", how)
		}
		if c.Park() {
			t.Errorf("%s: Park accepted after", how)
		}
		_, err := c.Read(make([]byte, 1))
		want := net.ErrClosed
		if how == "deadline" {
			want = os.ErrDeadlineExceeded
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: Read: %v, want %v", how, err, want)
		}
		time.Sleep(20 * time.Millisecond)
		if n := wakes.Load(); n != 1 {
			t.Errorf("%s: %d wakes", how, n)
		}
	}
}

// TestBlockingReadDeadline: a blocking Read waits for data through the
// poller and returns at its deadline.
func TestBlockingReadDeadline(t *testing.T) {
	p := newPoller(t)
	c, cc := pair(t, p)
	go func() {
		time.Sleep(20 * time.Millisecond)
		cc.Write([]byte("hi"))
	}()
	buf := make([]byte, 8)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("%q, %v", buf[:n], err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	start := time.Now()
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%v, want the deadline", err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("returned after %v", d)
	}
}

// TestPollerCloseEndsWaits: once the Poller is closed, blocked reads
// return and parked Conns are woken.
func TestPollerCloseEndsWaits(t *testing.T) {
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := pair(t, p)
	c2, _ := pair(t, p)
	woke := make(chan struct{}, 1)
	c2.SetHandlers(func() {}, func() { woke <- struct{}{} })
	c2.Park()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := c1.Read(make([]byte, 1)); err == nil {
			t.Error("Read returned no error")
		}
	}()
	time.Sleep(20 * time.Millisecond)
	p.Close()
	wg.Wait()
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("parked Conn not woken")
	}
}

// TestStaleEventIgnored: an event reported for a closed Conn whose
// descriptor number a newer Conn reuses (the epoll_wait batch held it
// while the old Conn was closed and the new one adopted) is not the new
// Conn's readiness: its handler is not called for it, and is for its own.
func TestStaleEventIgnored(t *testing.T) {
	p := newPoller(t)
	old, _ := pair(t, p)
	oldFd, oldGen := old.fd, old.gen
	old.Close()
	c, cc := pair(t, p)
	if c.gen == oldGen {
		t.Fatalf("new Conn has the closed one's generation %d", oldGen)
	}
	var calls atomic.Int32
	c.SetNonblockingReads(true)
	c.SetHandlers(func() { calls.Add(1); c.Unpark() }, func() {})
	if !c.Park() {
		t.Fatal("Park failed")
	}
	// The stale event, as the loop would dispatch it: the new Conn's
	// descriptor (the old one's number when the kernel reused it, which
	// it usually does: old fd %d) with the old registration's generation.
	t.Logf("old fd %d, new fd %d", oldFd, c.fd)
	p.dispatch(&unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd), Pad: int32(oldGen)})
	if n := calls.Load(); n != 0 {
		t.Fatalf("stale event reached the new Conn's handler (%d calls)", n)
	}
	// Its own readiness still arrives.
	if _, err := cc.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !testutil.WaitFor(ctx, func() bool { return calls.Load() == 1 }) {
		t.Fatalf("own readiness: %d handler calls, want 1", calls.Load())
	}
}

// TestAddrsFromSocket: an adopted TCP or Unix socket's addresses, read from
// the socket on first use, equal those of the net.Conn it was adopted
// from, and stay the same after Close; a clearing deadline drops its
// timer, and a Conn that never waited has no wait channel.
func TestAddrsFromSocket(t *testing.T) {
	p := newPoller(t)
	c, cc := pair(t, p)
	if got, want := c.RemoteAddr().String(), cc.LocalAddr().String(); got != want || c.RemoteAddr().Network() != "unix" {
		t.Errorf("unix remote %s %q, want %q", c.RemoteAddr().Network(), got, want)
	}
	if got, want := c.LocalAddr().String(), cc.RemoteAddr().String(); got != want {
		t.Errorf("unix local %q, want %q", got, want)
	}
	if c.rsig != nil || c.wsig != nil {
		t.Error("wait channels made before any wait")
	}
	c.SetReadDeadline(time.Now().Add(time.Hour))
	if c.rt == nil {
		t.Fatal("no timer for a deadline")
	}
	c.SetReadDeadline(time.Time{})
	if c.rt != nil {
		t.Error("timer kept after the deadline was cleared")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	wantL, wantR := tc.LocalAddr().String(), tc.RemoteAddr().String()
	ac, err := p.Adopt(tc)
	if err != nil {
		t.Fatal(err)
	}
	local, remote := ac.LocalAddr(), ac.RemoteAddr()
	if _, ok := local.(*net.TCPAddr); !ok || local.String() != wantL || remote.String() != wantR {
		t.Errorf("tcp local %T %v remote %v, want %s %s", local, local, remote, wantL, wantR)
	}
	ac.Close()
	if got := ac.LocalAddr().String(); got != wantL {
		t.Errorf("tcp local after Close %q, want %q", got, wantL)
	}
	c2, _ := pair(t, p)
	c2.Close()
	if got := c2.RemoteAddr(); got == nil || got.Network() != "unix" {
		t.Errorf("remote address first asked after Close: %T %v", got, got)
	}
}

// TestWaitWritable: a writer that fills the socket with TryWritev and asks
// WaitWritable is called back on the poller's goroutine once a slow
// reader makes room, one call per WaitWritable, until every byte arrived
// in order; no goroutine waits meanwhile.
func TestWaitWritable(t *testing.T) {
	p := newPoller(t)
	c, cc := pair(t, p)
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	// What is left goes in pieces of 100,003 bytes, so that partial
	// writes end inside one.
	off := 0
	pieces := func() [][]byte {
		var bufs [][]byte
		for rest := big[off:]; len(rest) > 0; {
			k := min(len(rest), 100_003)
			bufs = append(bufs, rest[:k])
			rest = rest[k:]
		}
		return bufs
	}
	var calls, waits atomic.Int32
	done := make(chan error, 1)
	var write func()
	write = func() {
		calls.Add(1)
		for off < len(big) {
			n, err := c.TryWritev(pieces())
			if err != nil {
				done <- err
				return
			}
			off += n
			if n == 0 || off < len(big) {
				if !c.WaitWritable() {
					done <- errors.New("WaitWritable refused on an open Conn")
					return
				}
				waits.Add(1)
				return
			}
		}
		done <- nil
	}
	c.SetWriteHandler(write)
	write()
	if waits.Load() == 0 {
		t.Fatal("4 MiB to an unread socket did not fill it")
	}
	before := runtime.NumGoroutine()
	cc.SetReadDeadline(time.Now().Add(20 * time.Second)) // a handler never called fails, not hangs
	slowRead(t, cc, big, func() {
		if g := runtime.NumGoroutine(); g > before {
			t.Fatalf("%d goroutines while the writer waits, %d before", g, before)
		}
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls.Load() != waits.Load()+1 {
		t.Fatalf("%d calls of the write handler for %d waits (+1 first)", calls.Load(), waits.Load())
	}
}

// TestWaitWritableWakes: a write handler waiting on a peer that does not
// read is called (on a goroutine) when the Conn is closed, its write
// deadline passes or the Poller closes; WaitWritable then refuses.
func TestWaitWritableWakes(t *testing.T) {
	big := make([]byte, 8<<20)
	for _, how := range []string{"close", "deadline", "poller"} {
		p := newPoller(t)
		c, _ := pair(t, p)
		called := make(chan struct{}, 2)
		c.SetWriteHandler(func() { called <- struct{}{} })
		if n, err := c.TryWrite(big); err != nil || n == len(big) {
			t.Fatalf("%s: TryWrite: %d, %v", how, n, err)
		}
		if !c.WaitWritable() {
			t.Fatalf("%s: WaitWritable refused", how)
		}
		time.Sleep(20 * time.Millisecond)
		select {
		case <-called:
			t.Fatalf("%s: called with the socket full", how)
		default:
		}
		switch how {
		case "close":
			c.Close()
		case "deadline":
			c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		case "poller":
			p.Close()
		}
		select {
		case <-called:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the write handler was not called", how)
		}
		if c.WaitWritable() {
			t.Fatalf("%s: WaitWritable accepted afterwards", how)
		}
		select {
		case <-called:
			t.Fatalf("%s: called twice", how)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
