package httpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// cutSink is a recorder that is a transport.CutNotifier as the stream's
// sink is: cut cancels the attempt's context with a cause, then runs the
// registered function on a goroutine of its own.
type cutSink struct {
	*recorder
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	cut    bool
	onCut  func()
	wg     sync.WaitGroup
}

var _ transport.CutNotifier = (*cutSink)(nil)

func (k *cutSink) OnCut(f func()) {
	k.mu.Lock()
	if !k.cut {
		k.onCut = f
		k.mu.Unlock()
		return
	}
	k.mu.Unlock()
	k.run(f)
}

func (k *cutSink) run(f func()) {
	k.wg.Add(1)
	go func() { defer k.wg.Done(); f() }()
}

// cutWith cuts the attempt as the stream's actor does (cutAttempt).
func (k *cutSink) cutWith(cause error) {
	k.mu.Lock()
	k.cut = true
	f := k.onCut
	k.onCut = nil
	k.mu.Unlock()
	k.cancel(cause)
	if f != nil {
		k.run(f)
	}
}

// serialServer answers every HTTP/1.1 request with a 1 KiB body, on one
// goroutine and one connection at a time: it starts no goroutine per
// transaction, so what a client's transactions start can be counted.
func serialServer(t *testing.T) *server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n" + strings.Repeat("x", 1024))
		buf := make([]byte, 4096)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := 0
			for n < len(buf) && !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
				k, err := c.Read(buf[n:])
				n += k
				if err != nil {
					break
				}
			}
			c.Write(resp)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return &server{host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port}
}

// goroutinesCreated is the number of goroutines the process has started.
func goroutinesCreated(t *testing.T) uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Skip("runtime/metrics has no /sched/goroutines-created")
	}
	return s[0].Value.Uint64()
}

// TestH1TransactionStartsNoGoroutine: an h1 transaction runs on the
// attempt's goroutine, its limits and its cut hook start none (before,
// each transaction's context.AfterFunc started one as the exchange
// closed), with the stream's kind of sink and with a plain one.
func TestH1TransactionStartsNoGoroutine(t *testing.T) {
	s := serialServer(t)
	st := s.streamtype(policy.H1, "/1k")
	env := testEnv()
	c := New(policy.H1, env)
	defer c.Close(context.Background())
	a := attempt(st, env, nil)
	const n = 50
	for _, stream := range []bool{true, false} {
		get := func() {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			rec := newRecorder()
			var sink transport.Sink = rec
			if stream {
				sink = &cutSink{recorder: rec, cancel: cancel}
			}
			res := c.Run(ctx, a, sink)
			if res.Err != nil || !res.Completed {
				t.Fatalf("result %+v", res)
			}
			if got := rec.seq(); len(got) != 4 || got[3] != "QOS_ACK_REMOTE" {
				t.Fatalf("events %q", got)
			}
		}
		get() // warm the pools
		before := goroutinesCreated(t)
		for range n {
			get()
		}
		// The server's goroutine starts none; a timer of an earlier
		// test firing may: allow a few, far below one per transaction.
		d := goroutinesCreated(t) - before
		if d > n/10 {
			t.Errorf("CutNotifier sink %v: %d goroutines started by %d h1 transactions", stream, d, n)
		}
		t.Logf("CutNotifier sink %v: %d goroutines started by %d h1 transactions", stream, d, n)
	}
}

// hangingHandler answers with headers and "partial" of a 100000-byte body
// when body is set (or nothing at all), then waits for the client to go.
func hangingHandler(body bool, arrived chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body {
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	})
}

// TestCutMidExchange: the attempt cut while the response headers are
// awaited, or in the middle of the body, ends Run at once with the cut's
// cause (not a timeout), no EOM and no QOS_ACK_REMOTE; through the
// stream's cut hook (CutNotifier) and through the context alone.
func TestCutMidExchange(t *testing.T) {
	errCut := errors.New("cut by the test")
	for _, body := range []bool{false, true} {
		arrived := make(chan struct{}, 1)
		forEachProto(t, hangingHandler(body, arrived), func(t *testing.T, s *server, p policy.Protocol) {
			for _, stream := range []bool{true, false} {
				env := testEnv()
				st := s.streamtype(p, "/")
				c := New(p, env)
				ctx, cancel := context.WithCancelCause(context.Background())
				rec := newRecorder()
				ks := &cutSink{recorder: rec, cancel: cancel}
				var sink transport.Sink = rec
				if stream {
					sink = ks
				}
				done := make(chan transport.Result, 1)
				go func() { done <- c.Run(ctx, attempt(st, env, nil), sink) }()
				select {
				case <-arrived:
				case <-time.After(10 * time.Second):
					t.Fatal("the request did not reach the server")
				}
				if body {
					// the body's first bytes are delivered before the cut
					for i := 0; len(rec.seq()) < 2; i++ {
						if i > 1000 {
							t.Fatalf("events %q", rec.seq())
						}
						time.Sleep(5 * time.Millisecond)
					}
				}
				ks.cutWith(errCut)
				var res transport.Result
				select {
				case res = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("Run did not return after the cut")
				}
				ks.wg.Wait()
				c.Close(context.Background())
				if !errors.Is(res.Err, errCut) || errors.Is(res.Err, ErrTimeout) || res.Completed {
					t.Fatalf("body %v, CutNotifier %v: result %+v", body, stream, res)
				}
				var want []string
				if body {
					want = []string{"CONNECTED", "rx(SOM,partial)"}
				}
				eq(t, rec.seq(), want)
			}
		})
	}
}

// TestServerClosesMidBody: a peer that ends the connection cleanly (FIN)
// before the announced length fails the transaction: the bytes that came
// are delivered, then no EOM and no QOS_ACK_REMOTE.
func TestServerClosesMidBody(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
		bw.Flush()
		c.Close()
	})
	for _, useTLS := range []bool{false, true} {
		s := startServer(t, policy.H1, useTLS, h)
		st := s.streamtype(policy.H1, "/")
		res, rec := runOnce(t, st, attempt(st, testEnv(), nil))
		if res.Err == nil || res.Completed || errors.Is(res.Err, ErrTimeout) {
			t.Fatalf("TLS %v: result %+v", useTLS, res)
		}
		eq(t, rec.seq(), []string{"CONNECTED", "rx(SOM,partial)"})
	}
}

// TestTimersOneLimitAtATime: the h2/h3 request limits share one timer:
// the header limit arms once and stops when the headers arrive, the body
// limit runs only between arm and disarm, and the request is cancelled
// with the limit that expired.
func TestTimersOneLimitAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		tm := &timers{cancel: cancel, hdrTime: time.Second, unhook: func() bool { return true }}
		tm.armHeader()
		time.Sleep(600 * time.Millisecond)
		tm.armHeader() // a second end of body: not re-armed
		time.Sleep(300 * time.Millisecond)
		tm.headersArrived()
		time.Sleep(2 * time.Second)
		if ctx.Err() != nil {
			t.Fatalf("header limit fired after the headers: %v", context.Cause(ctx))
		}
		for range 3 { // reads faster than the limit, with slow sinks between
			tm.arm(time.Second, errBodyTimeout)
			time.Sleep(900 * time.Millisecond)
			tm.disarm()
			time.Sleep(5 * time.Second)
		}
		if ctx.Err() != nil {
			t.Fatalf("body limit fired while disarmed: %v", context.Cause(ctx))
		}
		tm.arm(time.Second, errBodyTimeout)
		time.Sleep(999 * time.Millisecond)
		if ctx.Err() != nil {
			t.Fatal("body limit fired early")
		}
		time.Sleep(2 * time.Millisecond)
		if !errors.Is(context.Cause(ctx), errBodyTimeout) {
			t.Fatalf("cause %v", context.Cause(ctx))
		}
		tm.stop()
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		tm := &timers{cancel: cancel, hdrTime: time.Second, unhook: func() bool { return true }}
		tm.armHeader()
		time.Sleep(1001 * time.Millisecond)
		if !errors.Is(context.Cause(ctx), errHeaderTimeout) {
			t.Fatalf("cause %v", context.Cause(ctx))
		}
		tm.stop()
	})
}

// TestLazyLimitFiresWhenDue: the h2/h3 limits' timer is lazy (a pending
// timer is left alone when it fires no later than the new limit is due),
// yet each limit fires exactly when due: a firing before the armed limit
// is due sets the timer again for the rest, and a limit due before the
// pending firing sets it earlier.
func TestLazyLimitFiresWhenDue(t *testing.T) {
	for _, c := range []struct {
		name string
		body time.Duration // the body limit, armed 1 s in, after the headers
	}{
		{"later than the pending firing", 30 * time.Second},
		{"earlier than the pending firing", 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(context.Background())
				tm := &timers{cancel: cancel, hdrTime: 15 * time.Second, unhook: func() bool { return true }}
				tm.armHeader() // the timer fires at 15 s
				time.Sleep(time.Second)
				tm.headersArrived()
				tm.arm(c.body, errBodyTimeout)
				time.Sleep(c.body - time.Millisecond)
				if ctx.Err() != nil {
					t.Fatalf("fired %v early: %v", time.Millisecond, context.Cause(ctx))
				}
				time.Sleep(2 * time.Millisecond)
				if !errors.Is(context.Cause(ctx), errBodyTimeout) {
					t.Fatalf("cause %v, want the body limit once due", context.Cause(ctx))
				}
				tm.stop()
			})
		})
	}
}

// TestPoolIdleTimerInUse: the pool's idle timer is lazy (a get does not
// stop it): when it fires while the connection is in use nothing closes,
// and the connection closes an idle time after its last release.
func TestPoolIdleTimerInUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newConnPool(time.Second)
		fc := &fakeShared{}
		key := connKey{network: "tcp", address: "127.0.0.1:1"}
		get := func() *poolEntry {
			e, _, err := p.get(context.Background(), key, func() (sharedConn, string, error) { return fc, "", nil })
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		p.release(get()) // idle timer due at 1 s
		time.Sleep(500 * time.Millisecond)
		e := get()
		time.Sleep(time.Second) // the timer fires at 1 s, in use
		synctest.Wait()
		if fc.isClosed() {
			t.Fatal("closed while in use")
		}
		p.release(e) // at 1.5 s: due at 2.5 s
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if fc.isClosed() {
			t.Fatal("closed before an idle time after the last release")
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if !fc.isClosed() {
			t.Fatal("not closed an idle time after the last release")
		}
		p.close()
	})
}

// fakeShared is a sharedConn that records its close.
type fakeShared struct {
	mu     sync.Mutex
	closed bool
}

func (f *fakeShared) usable() bool { return true }
func (f *fakeShared) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}
func (f *fakeShared) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// TestPoolIdleTimerReset: a connection's idle timer is reset by each
// release (one timer per connection, not one per request); it closes the
// connection an idle time after the last release, not the first.
func TestPoolIdleTimerReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newConnPool(time.Second)
		fc := &fakeShared{}
		key := connKey{network: "tcp", address: "127.0.0.1:1"}
		dials := 0
		get := func() *poolEntry {
			e, _, err := p.get(context.Background(), key, func() (sharedConn, string, error) {
				dials++
				return fc, "", nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		idleTimer := func() *time.Timer {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.m[key].idle
		}
		pooled := func() int {
			p.mu.Lock()
			defer p.mu.Unlock()
			return len(p.m)
		}
		p.release(get())
		first := idleTimer()
		time.Sleep(600 * time.Millisecond)
		p.release(get())
		if idleTimer() != first {
			t.Fatal("a second idle timer was made")
		}
		time.Sleep(600 * time.Millisecond) // past the first release's idle time
		if fc.isClosed() || dials != 1 {
			t.Fatalf("closed %v, dials %d: closed an idle time after the first release", fc.isClosed(), dials)
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if !fc.isClosed() || pooled() != 0 {
			t.Fatalf("closed %v, pooled %d: not closed an idle time after the last release", fc.isClosed(), pooled())
		}
		p.close()
	})
}
