package test

import (
	"context"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// dropServer is an echo server that can drop every open connection.
type dropServer struct {
	*testutil.Server
	mu    sync.Mutex
	conns []net.Conn
}

func newDropServer(t *testing.T) *dropServer {
	d := &dropServer{}
	d.Server = testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
		testutil.Echo(c)
	})
	return d
}

func (d *dropServer) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// scenarioLinkLossTxPending: the connection (local: the peer drops it;
// proxied: the proxy goes away and comes back at the same address) is lost
// while tx is pending and a Send is blocked on a full queue; the stream
// connects again (through a proxy: it asks the new link for the onward
// connection) and everything queued arrives; the blocked Send returns.
func scenarioLinkLossTxPending(t *testing.T, bin string) {
	srv := newDropServer(t)
	st := rawType("echo", "127.0.0.1", srv.Port())
	st.Retry = retry(20, 0, 300)
	st.RetryName = st.Retry.Name
	pol := newPolicy(st)
	pol.Retry = []*policy.Retry{st.Retry}
	run := func(t *testing.T, rt *ss.Runtime, lose, restore func()) {
		ctx := context.Background()
		s, err := rt.Create(ctx, "echo")
		if err != nil {
			t.Fatal(err)
		}
		r := record(t, s)
		if err := s.Send(ctx, []byte("one")); err != nil {
			t.Fatal(err)
		}
		r.untilBytes(wait, 3)
		lose()
		r.untilState(wait, ss.Disconnected)
		fill := strings.Repeat("x", 64)
		if err := s.Send(ctx, []byte(fill)); err != nil { // fills the 64-byte queue
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() { sent <- s.Send(ctx, []byte("three")) }()
		select {
		case err := <-sent:
			t.Fatalf("Send returned %v with the queue full and no connection", err)
		case <-time.After(100 * time.Millisecond):
		}
		restore()
		r.untilBytes(wait, 3+len(fill)+5)
		select {
		case err := <-sent:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(wait):
			t.Fatal("blocked Send did not return")
		}
		if got := r.payload(); got != "one"+fill+"three" {
			t.Fatalf("payload %q", got)
		}
		if err := s.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		r.closed(wait)
	}
	t.Run("local", func(t *testing.T) {
		// The peer drops the connection; the stream retries after 300 ms.
		rt := newRuntime(t, ss.Config{Policy: pol, TxBuffer: 64})
		run(t, rt, srv.drop, func() {})
	})
	t.Run("proxied", func(t *testing.T) {
		name := abstractName()
		prt := newRuntime(t, ss.Config{Policy: pol})
		serve := func() func() {
			ln, err := net.Listen("unix", name)
			if err != nil {
				t.Fatal(err)
			}
			return serveProxy(t, prt, ln)
		}
		stop := serve()
		defer func() { stop() }()
		rt := newRuntime(t, ss.Config{Proxy: "unix:" + name, TxBuffer: 64})
		run(t, rt, func() { stop(); stop = func() {} }, func() { stop = serve() })
	})
	if bin == "" {
		return
	}
	t.Run("ssproxy", func(t *testing.T) {
		name := abstractName()
		addr, pid := startSSProxyOn(t, bin, pol, name)
		rt := newRuntime(t, ss.Config{Proxy: addr, TxBuffer: 64})
		run(t, rt, func() {
			syscall.Kill(pid, syscall.SIGTERM)
			// Wait until it no longer answers, so that the restart gets
			// the name.
			for i := 0; i < 500; i++ {
				c, err := net.Dial("unix", name)
				if err != nil {
					return
				}
				c.Close()
				time.Sleep(10 * time.Millisecond)
			}
			t.Fatal("ssproxy still listening after SIGTERM")
		}, func() { startSSProxyOn(t, bin, pol, name) })
	})
}
