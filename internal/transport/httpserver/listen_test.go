package httpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestTLSh1(t *testing.T) {
	h := newHarness(t)
	st := withTLS(t, serverType("srv", policy.H1, "path"))
	ln := h.listen(st)
	res := get(tlsClient(t, false), baseURL(ln, true)+"/secure", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("tls ok")
	r := h.recv(res)
	if r.err != nil || r.body != "tls ok" || r.resp.TLS == nil || r.resp.ProtoMajor != 1 {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
	a.wait(t)
	equal(t, "events", a.sink.events(), []string{"meta path=/secure", "CONNECTED", "SERVER_TXN"})
}

func TestTLSHandshakeFailureMakesNoStream(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(withTLS(t, serverType("srv", policy.H1)))
	// A client that does not trust the CA: the handshake fails.
	_, err := http.Get(baseURL(ln, true) + "/")
	if err == nil {
		t.Fatal("untrusted handshake succeeded")
	}
	// Plain text to a TLS port.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	_, _ = c.Read(make([]byte, 100))
	c.Close()
	time.Sleep(50 * time.Millisecond)
	h.none()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

func TestTLSNeedsCertAndKey(t *testing.T) {
	st := serverType("srv", policy.H1)
	st.TLS = true
	_, err := New(nil).Listen(context.Background(), st, nil, func(c transport.ServerConn) {})
	if !errors.Is(err, ErrListen) {
		t.Fatalf("Listen: %v, want ErrListen", err)
	}
}

func TestH2TwoStreams(t *testing.T) {
	h := newHarness(t)
	st := withTLS(t, serverType("srv", policy.H2, "path", "mime=content-type:"))
	ln := h.listen(st)
	c := tlsClient(t, true)
	r1 := get(c, baseURL(ln, true)+"/one", nil)
	a1 := h.next()
	a1.sink.waitFor(t, "SERVER_TXN", 1)
	r2 := get(c, baseURL(ln, true)+"/two", nil)
	a2 := h.next()
	a2.sink.waitFor(t, "SERVER_TXN", 1)
	if a1.conn.RemoteAddr().String() != a2.conn.RemoteAddr().String() {
		t.Errorf("two connections: %v, %v", a1.conn.RemoteAddr(), a2.conn.RemoteAddr())
	}
	// Answer in reverse order: the streams are independent.
	a2.tx.respond(201)
	a2.tx.setMeta(st, "mime", "text/two")
	a2.tx.whole("two")
	a1.tx.respond(200)
	a1.tx.send("o", event.SOM, -1)
	a1.tx.send("ne", event.EOM, -1)
	for i, r := range []result{h.recv(r1), h.recv(r2)} {
		if r.err != nil || r.resp.ProtoMajor != 2 {
			t.Fatalf("response %d: %+v %v", i+1, r.resp, r.err)
		}
	}
	a1.wait(t)
	a2.wait(t)
	equal(t, "stream 1", a1.sink.events(), []string{"meta path=/one", "CONNECTED", "SERVER_TXN"})
	equal(t, "stream 2", a2.sink.events(), []string{"meta path=/two", "CONNECTED", "SERVER_TXN"})
}

func TestH2ResponseDetails(t *testing.T) {
	h := newHarness(t)
	st := withTLS(t, serverType("srv", policy.H2, "mime=Content-Type:"))
	ln := h.listen(st)
	c := tlsClient(t, true)
	res := do(c, http.MethodPost, baseURL(ln, true)+"/p", "body", nil)
	a := h.next()
	a.sink.waitFor(t, `rx(EOM,"")`, 1)
	a.tx.respond(201)
	a.tx.setMeta(st, "mime", "application/json")
	a.tx.whole("{}")
	r := h.recv(res)
	if r.err != nil || r.resp.StatusCode != 201 || r.body != "{}" || r.resp.ContentLength != 2 || r.resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("response: %+v %q %v", r.resp, r.body, r.err)
	}
	a.wait(t)
	equal(t, "events", a.sink.events(), []string{"CONNECTED", "SERVER_TXN", `rx(SOM,"body")`, `rx(EOM,"")`})
}

func TestH2DestroyResetsStream(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(withTLS(t, serverType("srv", policy.H2)))
	c := tlsClient(t, true)
	res := get(c, baseURL(ln, true)+"/", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.cancel()
	r := h.recv(res)
	if r.err == nil {
		t.Fatalf("client got a response: %+v", r.resp)
	}
	if res := a.wait(t); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Serve: %v", res.Err)
	}
	// The connection survives: another stream works.
	res = get(c, baseURL(ln, true)+"/again", nil)
	b := h.next()
	b.sink.waitFor(t, "SERVER_TXN", 1)
	b.tx.respond(200)
	b.tx.whole("again")
	if r := h.recv(res); r.err != nil || r.body != "again" || r.resp.ProtoMajor != 2 {
		t.Fatalf("second stream: %+v %v", r.resp, r.err)
	}
}

func TestH2DestroyDuringRequestBody(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(withTLS(t, serverType("srv", policy.H2)))
	c := tlsClient(t, true)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, baseURL(ln, true)+"/", pr)
	done := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if _, err := pw.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	a := h.next()
	a.sink.waitFor(t, `rx(SOM,"partial")`, 1)
	a.cancel() // the server is now blocked reading the body
	if res := a.wait(t); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Serve: %v", res.Err)
	}
	pw.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("client got a response")
		}
	case <-time.After(waitLimit):
		t.Fatal("client still waiting")
	}
}

func TestH2WithoutTLSIsHTTP1(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H2))
	res := get(client(t, false), baseURL(ln, false)+"/", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("h1")
	if r := h.recv(res); r.err != nil || r.resp.ProtoMajor != 1 || r.body != "h1" {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
}

func TestH2ListenerServesH1Clients(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(withTLS(t, serverType("srv", policy.H2)))
	res := get(tlsClient(t, false), baseURL(ln, true)+"/", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("h1 over tls")
	if r := h.recv(res); r.err != nil || r.resp.ProtoMajor != 1 {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
}

func unixClient(t *testing.T, addr string) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitLimit}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "srv.sock")
	abstract := fmt.Sprintf("@ss-httpserver-test-%d", os.Getpid())
	for _, addr := range []string{path, abstract} {
		t.Run(strings.TrimPrefix(filepath.Base(addr), "@"), func(t *testing.T) {
			h := newHarness(t)
			st := serverType("srv", policy.H1, "path")
			st.Endpoint = "+" + addr
			ln := h.listen(st)
			if ln.Addr().Network() != "unix" {
				t.Fatalf("Addr %v", ln.Addr())
			}
			res := get(unixClient(t, addr), "http://localhost/u", nil)
			a := h.next()
			a.sink.waitFor(t, "SERVER_TXN", 1)
			a.tx.respond(200)
			a.tx.whole("unix")
			if r := h.recv(res); r.err != nil || r.body != "unix" {
				t.Fatalf("response: %+v %v", r.resp, r.err)
			}
			a.wait(t)
			equal(t, "events", a.sink.events(), []string{"meta path=/u", "CONNECTED", "SERVER_TXN"})
		})
	}
	// A stale socket file is replaced.
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	h := newHarness(t)
	st := serverType("srv", policy.H1)
	st.Endpoint = "+" + path
	h.listen(st)
}

func TestListenErrors(t *testing.T) {
	s := New(nil)
	noop := func(transport.ServerConn) {}
	ctx := context.Background()
	if _, err := s.Listen(ctx, serverType("raw", policy.Raw), nil, noop); !errors.Is(err, ErrListen) {
		t.Errorf("raw: %v", err)
	}
	share := serverType("sharer", policy.H1)
	share.Endpoint = "!owner"
	if _, err := s.Listen(ctx, share, nil, noop); !errors.Is(err, ErrNotListening) {
		t.Errorf("share before owner: %v", err)
	}
	owner := serverType("owner", policy.H1)
	ln, err := s.Listen(ctx, owner, nil, noop)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listen(ctx, owner, nil, noop); !errors.Is(err, ErrListen) {
		t.Errorf("second Listen of one streamtype: %v", err)
	}
	busy := serverType("busy", policy.H1)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	fmt.Sscan(port, &busy.Port)
	if _, err := s.Listen(ctx, busy, nil, noop); !errors.Is(err, ErrListen) {
		t.Errorf("port in use: %v", err)
	}
	ln.Close()
	ln.Close() // idempotent
	// After Close the name is free again.
	ln, err = s.Listen(ctx, owner, nil, noop)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestListenStopsWithContext(t *testing.T) {
	s := New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := s.Listen(ctx, serverType("srv", policy.H1), nil, func(transport.ServerConn) {})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	cancel()
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening after ctx was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ln.Close()
}

func TestCloseEndsConnections(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1))
	res := get(client(t, false), baseURL(ln, false)+"/", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	ln.Close()
	if r := h.recv(res); r.err == nil {
		t.Fatal("client got a response")
	}
	a.wait(t)
}

func TestSharingAcrossServerValues(t *testing.T) {
	env := transport.Env{}.Defaults()
	h1, h2 := New(env), New(env)
	ctx := context.Background()
	noop := func(transport.ServerConn) {}
	owner := serverType("owner", policy.H1)
	ln, err := h1.Listen(ctx, owner, env, noop)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sharer := serverType("sharer", policy.H2)
	sharer.Endpoint, sharer.ListenerOf = "!owner", owner
	sl, err := h2.Listen(ctx, sharer, env, noop)
	if err != nil {
		t.Fatalf("sharer with the same Env: %v", err)
	}
	defer sl.Close()
	if _, err := h2.Listen(ctx, sharer, transport.Env{}.Defaults(), noop); !errors.Is(err, ErrNotListening) {
		t.Fatalf("sharer with another Env: %v", err)
	}
	if _, err := h2.Listen(ctx, sharer, env, noop); !errors.Is(err, ErrListen) {
		t.Fatalf("sharer twice: %v", err)
	}
}

func TestUnixSocketInUseIsNotStolen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.sock")
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	st := serverType("srv", policy.H1)
	st.Endpoint = "+" + path
	if _, err := New(nil).Listen(context.Background(), st, nil, func(transport.ServerConn) {}); !errors.Is(err, ErrListen) {
		t.Fatalf("Listen on a live socket: %v", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Fatalf("the other listener lost its socket: %v", err)
	} else {
		c.Close()
	}
}

func TestTLSHandshakeTimeout(t *testing.T) {
	env := transport.Env{ConnectTimeout: 200 * time.Millisecond}.Defaults()
	accepted := make(chan struct{}, 1)
	ln, err := New(env).Listen(context.Background(), withTLS(t, serverType("srv", policy.H1)), env, func(transport.ServerConn) { accepted <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Send nothing: the server gives up on the handshake and closes.
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read data from a server that should have closed")
	}
	// Well under the 5 s read deadline (a loaded machine may be slow).
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("closed after %v, want about 200ms", d)
	}
	select {
	case <-accepted:
		t.Fatal("a stream was accepted without a handshake")
	default:
	}
}
