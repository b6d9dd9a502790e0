package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

const wait = 5 * time.Second

func TestRawEcho(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
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
	if st := s.Stats(); st.Attempts != 1 || st.RxBytes != 5 || st.TxBytes != 5 {
		t.Fatalf("Stats %+v", st)
	}
}

// TestRawRefusedThenConnect: a refused endpoint is retried with the policy's
// delays until ALL_RETRIES_FAILED; once a server listens, an explicit
// Connect succeeds. The endpoint is a unix socket path the test owns (no
// TCP port that was free a moment ago and may not be any more).
func TestRawRefusedThenConnect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.sock")
	st := rawType("refused", "+"+path, 0)
	st.Retry = retry(2, 0, 50, 100)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx := context.Background()
	s, err := rt.Create(ctx, "refused")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	t0 := time.Now()
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	r.untilState(wait, ss.AllRetriesFailed)
	r.expect("CREATING", "POLL", "CONNECTING", "UNREACHABLE", "POLL", "CONNECTING", "UNREACHABLE",
		"POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED")
	// The second attempt cannot start before the first delay has passed,
	// the third not before both (arrival times are lower bounds of
	// emission times; the refused dials themselves take microseconds).
	polls := r.since(t0, ss.Poll)
	if len(polls) != 3 || polls[1] < 50*time.Millisecond || polls[2] < 150*time.Millisecond {
		t.Fatalf("POLLs at %v after RequestTx, want the 2nd ≥ 50ms and the 3rd ≥ 150ms", polls)
	}

	srv := testutil.Listen(t, "unix", path, nil, testutil.Echo)
	defer srv.Close()
	if err := s.Connect(); err != nil {
		t.Fatal(err)
	}
	r.untilState(wait, ss.Connected)
	if err := s.Send(ctx, []byte("up")); err != nil {
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
}

func itoa(n int) string { return fmt.Sprint(n) }

// TestRawPeerResets: the peer sends, then resets the connection and stops
// listening (docs/streams.md §5.8 "raw client, peer closes"); the same with
// the socket read by a goroutine of the transport and parked in the
// runtime's event loop (Config.EventLoop).
func TestRawPeerResets(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run(map[bool]string{false: "goroutine", true: "loop"}[loop], func(t *testing.T) {
			var srvp atomic.Pointer[testutil.Server]
			srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
				c.Write([]byte("bye"))
				time.Sleep(20 * time.Millisecond)
				c.(*net.TCPConn).SetLinger(0) // RST
				go srvp.Load().Close()
			})
			srvp.Store(srv)
			st := rawType("reset", "127.0.0.1", srv.Port())
			st.NailedUp = true
			st.Retry = retry(1, 0, 100)
			rt := newRuntime(t, ss.Config{Policy: newPolicy(st), EventLoop: loop})
			s, err := rt.Create(context.Background(), "reset")
			if err != nil {
				t.Fatal(err)
			}
			r := record(t, s)
			r.untilState(wait, ss.AllRetriesFailed)
			if err := s.Destroy(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.closed(wait)
			r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(0,"bye")`, "DISCONNECTED", "POLL", "CONNECTING",
				"UNREACHABLE", "ALL_RETRIES_FAILED", "DESTROYING")
		})
	}
}

// hangingServer accepts and never answers: a TLS handshake against it never
// completes.
func hangingServer(t *testing.T) *testutil.Server {
	return testutil.Listen(t, "tcp", "", nil, func(c net.Conn) { io.Copy(io.Discard, c) })
}

func TestRawDestroyWhileConnecting(t *testing.T) {
	srv := hangingServer(t)
	st := rawType("hang", "127.0.0.1", srv.Port())
	st.TLS = true
	st.NailedUp = true
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
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
	if err := s.Send(context.Background(), []byte("x")); !errors.Is(err, ss.ErrDestroyed) {
		t.Fatalf("Send after Destroy: %v, want ErrDestroyed", err)
	}
	if err := s.Destroy(context.Background()); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
}

func TestRawStartTimeout(t *testing.T) {
	srv := hangingServer(t)
	st := rawType("slow", "127.0.0.1", srv.Port())
	st.TLS = true
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
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
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	r.untilState(wait, ss.Timeout)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("TIMEOUT after %v", d)
	}
	// The attempt continues: nothing else happens.
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
}

func tlsEcho(t *testing.T, ca *testutil.CA) *testutil.Server {
	leaf := ca.Issue(t, "localhost", "127.0.0.1", "::1")
	return testutil.Listen(t, "tcp", "", leaf.ServerTLS(), testutil.Echo)
}

func TestRawTLS(t *testing.T) {
	ca := testutil.NewCA(t)
	srv := tlsEcho(t, ca)
	st := rawType("tls", "127.0.0.1", srv.Port())
	st.TLS = true
	st.TrustStore = ca.TrustStore("ts")
	st.TrustStoreName = "ts"
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx := context.Background()
	s, err := rt.Create(ctx, "tls")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	s.Send(ctx, []byte("secure"))
	r.untilBytes(wait, 6)
	s.Destroy(ctx)
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"secure")`, "DISCONNECTED", "DESTROYING")
}

// TestRawWrongCA: the trust store names a different CA: the handshake must
// fail (no fallback to other roots).
func TestRawWrongCA(t *testing.T) {
	srv := tlsEcho(t, testutil.NewCA(t))
	other := testutil.NewCA(t)
	st := rawType("wrongca", "127.0.0.1", srv.Port())
	st.TLS = true
	st.TrustStore = other.TrustStore("other")
	st.TrustStoreName = "other"
	// Even if the server's CA were a system root, the trust store wins.
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st), SystemRoots: nil})
	ctx := context.Background()
	s, err := rt.Create(ctx, "wrongca")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	s.Send(ctx, []byte("x"))
	r.untilState(wait, ss.AllRetriesFailed)
	s.Destroy(ctx)
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED", "DESTROYING")
}

func TestRawUnixSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	abstract := fmt.Sprintf("ss-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	testutil.Listen(t, "unix", path, nil, testutil.Echo)
	testutil.Listen(t, "unix", "@"+abstract, nil, testutil.Echo)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("path", "+"+path, 0), rawType("abstract", "+@"+abstract, 0))})
	ctx := context.Background()
	for _, name := range []string{"path", "abstract"} {
		s, err := rt.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		s.Send(ctx, []byte(name))
		r.untilBytes(wait, len(name))
		s.Destroy(ctx)
		r.closed(wait)
		r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"`+name+`")`, "DISCONNECTED", "DESTROYING")
	}
}

// TestRawPerf: with perf, one PERF_JSON report per attempt, right before the
// UNREACHABLE or DISCONNECTED that ends it (docs/streams.md §14).
func TestRawPerf(t *testing.T) {
	srv := testutil.Listen(t, "tcp6", "", nil, func(c net.Conn) { c.Write([]byte("v6")) })
	st := rawType("perf", "[::1]", srv.Port())
	st.Perf = true
	st.Opportunistic = true
	refused := rawType("perfrefused", "+"+filepath.Join(t.TempDir(), "none.sock"), 0)
	refused.Perf = true
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st, refused)})
	ctx := context.Background()
	for _, c := range []struct {
		name string
		want []string
	}{
		{"perf", []string{"CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"v6")`, "perf", "DISCONNECTED", "DESTROYING"}},
		{"perfrefused", []string{"CREATING", "POLL", "CONNECTING", "perf", "UNREACHABLE", "ALL_RETRIES_FAILED", "DESTROYING"}},
	} {
		s, err := rt.Create(ctx, c.name)
		if err != nil {
			t.Fatal(err)
		}
		s.RequestTx()
		var got []string
		data := ""
		wd := watchdog(t, s, wait)
		for ev := range s.Events() {
			switch {
			case ev.Kind == ss.StateEvent:
				if data != "" {
					got = append(got, fmt.Sprintf("rx(0,%q)", data))
					data = ""
				}
				got = append(got, ev.State.String())
				if ev.State == ss.Disconnected || ev.State == ss.AllRetriesFailed {
					s.Destroy(ctx)
				}
			case ev.Flags == ss.SOM|ss.EOM|ss.PerfJSON:
				if data != "" {
					got = append(got, fmt.Sprintf("rx(0,%q)", data))
					data = ""
				}
				got = append(got, "perf")
			default:
				data += string(ev.Payload)
			}
		}
		wd.Stop()
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Fatalf("%s: events %v, want %v", c.name, got, c.want)
		}
	}
}
