package ss_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
	"github.com/securestreams/ss/proxy"
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
	go func() { done <- prt.ServeProxy(ctx, ln) }()
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
func bothWays(t *testing.T, pol *policy.Policy, scenario func(t *testing.T, rt *ss.Runtime)) {
	t.Run("local", func(t *testing.T) {
		scenario(t, newRuntime(t, ss.Config{Policy: pol}))
	})
	t.Run("proxied", func(t *testing.T) {
		addr, _ := inProcessProxy(t, pol)
		scenario(t, newRuntime(t, ss.Config{Proxy: addr}))
	})
}

func TestProxyBothRawEcho(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	bothWays(t, newPolicy(rawType("echo", "127.0.0.1", srv.Port())), func(t *testing.T, rt *ss.Runtime) {
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

func TestProxyBothRawRefusedThenConnect(t *testing.T) {
	port := testutil.FreePort(t)
	st := rawType("refused", "127.0.0.1", port)
	st.Retry = retry(2, 0, 50, 100)
	bothWays(t, newPolicy(st), func(t *testing.T, rt *ss.Runtime) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "refused")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		if err := s.Send(ctx, []byte("up")); err != nil {
			t.Fatal(err)
		}
		r.untilState(wait, ss.AllRetriesFailed)
		r.expect("CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "UNREACHABLE",
			"POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
		gaps := r.gaps(ss.Unreachable, ss.Poll)
		if len(gaps) != 2 || gaps[0] < 50*time.Millisecond || gaps[1] < 100*time.Millisecond {
			t.Fatalf("retry delays %v, want ≥ [50ms 100ms]", gaps)
		}
		srv := testutil.Listen(t, "tcp", "127.0.0.1:"+itoa(port), nil, testutil.Echo)
		defer srv.Close()
		if err := s.Connect(ctx); err != nil {
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

func TestProxyBothRawDestroyWhileConnecting(t *testing.T) {
	srv := hangingServer(t)
	st := rawType("hang", "127.0.0.1", srv.Port())
	st.TLS = true
	st.NailedUp = true
	bothWays(t, newPolicy(st), func(t *testing.T, rt *ss.Runtime) {
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

func TestProxyBothRawStartTimeout(t *testing.T) {
	srv := hangingServer(t)
	st := rawType("slow", "127.0.0.1", srv.Port())
	st.TLS = true
	bothWays(t, newPolicy(st), func(t *testing.T, rt *ss.Runtime) {
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
func TestProxyBothRawMetadata(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	pol, _, err := policy.ParseString(fmt.Sprintf(`{"schema-version": 1, "s": [{"md": {
		"protocol": "raw", "endpoint": "${host}", "port": %d, "metadata": [{"host": ""}]}}]}`, srv.Port()), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bothWays(t, pol, func(t *testing.T, rt *ss.Runtime) {
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
	if ev.Ack < 900 || ev.Ack > 3000 {
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
	r.expect(r.ev[0].String(), r.ev[1].String(), "CREATING", "POLL", "CONNECTING", "CONNECTED",
		`rx(0,"late")`, "DISCONNECTED", "DESTROYING")
}

// TestProxyRestart: the proxy goes away mid-run: DISCONNECTED, link
// retries, and once it is back the stream reconnects without a second
// CREATING.
func TestProxyRestart(t *testing.T) {
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
// retrying the link and reports nothing but DESTROYING when destroyed.
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
	r.expect("DESTROYING")
	if _, err := rt.Create(context.Background(), "this-streamtype-name-is-far-too-long-for-sssv1"); err == nil {
		t.Fatal("Create with a 46-byte name succeeded")
	}
}

var _ = proxy.DefaultAddress
