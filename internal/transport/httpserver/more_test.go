package httpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestHEADKeepsLengthHintOut(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1, "method"))
	res := do(client(t, false), http.MethodHead, baseURL(ln, false)+"/", "", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("ignored body")
	r := h.recv(res)
	if r.err != nil || r.resp.StatusCode != 200 || r.body != "" {
		t.Fatalf("response: %+v %q %v", r.resp, r.body, r.err)
	}
	a.wait(t)
	equal(t, "events", a.sink.events(), []string{"meta method=HEAD", "CONNECTED", "SERVER_TXN"})
}

func TestExpectContinue(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	_, _ = br.ReadString('\n') // blank line
	fmt.Fprintf(c, "abc")
	a := h.next()
	a.sink.waitFor(t, `rx(EOM,"")`, 1)
	a.tx.respond(200)
	a.tx.whole("ok")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response: %+v %v", resp, err)
	}
	a.wait(t)
	equal(t, "events", a.sink.events(), []string{"CONNECTED", "SERVER_TXN", `rx(SOM,"abc")`, `rx(EOM,"")`})
}

func TestHTTP10NoContentLengthCloses(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1)
	st.HTTPNoContentLength = true
	ln := h.listen(st)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("until close")
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.HasSuffix(s, "\r\n\r\nuntil close") || strings.Contains(strings.ToLower(s), "content-length") || strings.Contains(strings.ToLower(s), "chunked") {
		t.Fatalf("response:\n%s", s)
	}
}

func TestH2NoContentLength(t *testing.T) {
	h := newHarness(t)
	st := withTLS(t, serverType("srv", policy.H2))
	st.HTTPNoContentLength = true
	ln := h.listen(st)
	res := get(tlsClient(t, true), baseURL(ln, true)+"/", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("abc")
	r := h.recv(res)
	if r.err != nil || r.body != "abc" || r.resp.ProtoMajor != 2 || r.resp.ContentLength != -1 {
		t.Fatalf("response: %+v %q %v", r.resp, r.body, r.err)
	}
	if _, ok := r.resp.Header["Content-Type"]; ok {
		t.Errorf("Content-Type added by the library: %q", r.resp.Header["Content-Type"])
	}
}

func TestH2DirectProtoStrHeaders(t *testing.T) {
	h := newHarness(t)
	st := withTLS(t, serverType("srv", policy.H2))
	st.DirectProtoStr = true
	ln := h.listen(st)
	res := get(tlsClient(t, true), baseURL(ln, true)+"/", map[string]string{"X-Thing": "v"})
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.setMeta(st, "X-Reply:", "r")
	a.tx.whole("")
	r := h.recv(res)
	if r.err != nil || r.resp.Header.Get("X-Reply") != "r" {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
	ev := a.sink.events()
	want := map[string]bool{"meta x-thing:=v": false, "meta host:=" + ln.Addr().String(): false}
	for _, e := range ev {
		if _, ok := want[e]; ok {
			want[e] = true
		}
	}
	for e, seen := range want {
		if !seen {
			t.Errorf("missing %q in %q", e, ev)
		}
	}
}

func TestUpgradeAfterTransactionIsRefused(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1)
	st.WSSubprotocol = "p"
	ln := h.listen(st)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("x")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first: %+v %v", resp, err)
	} else {
		_, _ = io.ReadAll(resp.Body)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: p\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 400 {
		t.Fatalf("upgrade: %+v %v", resp, err)
	}
	if res := a.wait(t); res.Err == nil {
		t.Error("Serve: nil error")
	}
	equal(t, "events", a.sink.events(), []string{"CONNECTED", "SERVER_TXN"})
}

func TestSharedListenerAcceptsOnFirstRequest(t *testing.T) {
	h := newHarness(t)
	owner := serverType("owner", policy.H1)
	ln := h.listen(owner)
	sharer := serverType("sharer", policy.H1)
	sharer.Endpoint, sharer.ListenerOf = "!owner", owner
	h.listen(sharer)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	h.none() // no request yet: nothing to route
	c.Close()
	time.Sleep(50 * time.Millisecond)
	h.none()
}

func TestManyConnections(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1, "path"))
	const n = 20
	c := client(t, false)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := <-get(c, fmt.Sprintf("%s/%d", baseURL(ln, false), i), nil)
			if r.err != nil || r.body != fmt.Sprintf("/%d", i) {
				errs <- fmt.Errorf("request %d: %v %q", i, r.err, r.body)
			}
		}()
	}
	for range n {
		a := h.next()
		a.sink.waitFor(t, "SERVER_TXN", 1)
		path := strings.TrimPrefix(a.sink.events()[0], "meta path=")
		a.tx.respond(200)
		a.tx.whole(path)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestResponseInChunks(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.send("first,", event.SOM, -1)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first chunk is flushed before the rest exists.
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first," {
		t.Fatalf("first chunk %q %v", buf, err)
	}
	a.tx.send("second,", 0, -1)
	a.tx.send("last", event.EOM, -1)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second,last" {
		t.Fatalf("rest %q %v", rest, err)
	}
	if len(resp.TransferEncoding) == 0 {
		t.Error("unknown length should be chunked")
	}
}

func FuzzRequestFields(f *testing.F) {
	f.Add("/p", "a=1&b=%20x&path=evil&a=2&c")
	f.Add("/%zz", "%zz=%zz&=&&a")
	f.Add("/", "method=PUT&auth=x&b=%2")
	st := serverType("srv", policy.H1, "method", "path", "auth", "a", "b", "c")
	f.Fuzz(func(t *testing.T, path, query string) {
		u := &url.URL{Path: path, RawQuery: query}
		r := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
		vals := requestFields(st, r)
		if vals["method"] != "GET" || vals["path"] != path {
			t.Fatalf("request line overridden: %q", vals)
		}
		if _, ok := vals["auth"]; ok {
			t.Fatalf("auth set without an Authorization header: %q", vals)
		}
		for name := range vals {
			if st.MetadataIndex(name) < 0 {
				t.Fatalf("undeclared %q set", name)
			}
		}
	})
}

// TestServeFromAcceptWithCancelledContext is what a runtime does when it
// refuses a connection: Serve with a cancelled ctx inside the accept func.
// It must return at once and close the connection (h2: reset the stream).
func TestServeFromAcceptWithCancelledContext(t *testing.T) {
	cases := []struct {
		name  string
		st    func() *policy.Streamtype
		share bool
		h2    bool
	}{
		{name: "h1", st: func() *policy.Streamtype { return serverType("srv", policy.H1) }},
		{name: "h1-shared", st: func() *policy.Streamtype { return serverType("srv", policy.H1) }, share: true},
		{name: "h2", st: func() *policy.Streamtype { return withTLS(t, serverType("srv", policy.H2)) }, h2: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st()
			results := make(chan transport.Result, 4)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			env := transport.Env{}.Defaults()
			srv := New(env)
			ln, err := srv.Listen(context.Background(), st, env, func(c transport.ServerConn) {
				results <- c.Serve(ctx, &transport.Attempt{Type: st, Tx: newFakeTx(st)}, newRecSink())
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if tc.share {
				sh := serverType("sharer", policy.H1)
				sh.Endpoint, sh.ListenerOf = "!srv", st
				sl, err := srv.Listen(context.Background(), sh, env, func(transport.ServerConn) {})
				if err != nil {
					t.Fatal(err)
				}
				defer sl.Close()
			}
			c := client(t, false)
			if tc.h2 {
				c = tlsClient(t, true)
			}
			r := <-get(c, baseURL(ln, tc.h2)+"/", nil)
			if r.err == nil {
				t.Fatalf("client got a response: %+v", r.resp)
			}
			select {
			case res := <-results:
				if !errors.Is(res.Err, context.Canceled) {
					t.Errorf("Serve: %v", res.Err)
				}
			case <-time.After(waitLimit):
				t.Fatal("Serve did not return")
			}
		})
	}
}
