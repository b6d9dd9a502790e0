package httpserver

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/policy"
)

// get runs a GET in a goroutine so the test can script the server side.
func get(c *http.Client, url string, hdr map[string]string) chan result {
	return do(c, http.MethodGet, url, "", hdr)
}

type result struct {
	resp *http.Response
	body string
	err  error
}

func do(c *http.Client, method, url, body string, hdr map[string]string) chan result {
	ch := make(chan result, 1)
	go func() {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
		if err != nil {
			ch <- result{err: err}
			return
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		ch <- result{resp: resp, body: string(b), err: err}
	}()
	return ch
}

func (h *harness) recv(ch chan result) result {
	h.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-h.t.Context().Done():
		h.t.Fatal("test ended")
	}
	return result{}
}

func TestGETQueryArguments(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1, "method", "path", "auth", "a", "b", "sp", "plus")
	ln := h.listen(st)
	res := get(client(t, false), baseURL(ln, false)+"/dir/x%20y?c=3&a=x%20y&path=evil&method=PUT&a=second&sp=%zz&plus=1+2", map[string]string{"Authorization": "Bearer t0k"})
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("ok")
	r := h.recv(res)
	if r.err != nil || r.resp.StatusCode != 200 || r.body != "ok" {
		t.Fatalf("response: %+v %q %v", r.resp, r.body, r.err)
	}
	if r.resp.ContentLength != 2 {
		t.Errorf("Content-Length = %d, want 2", r.resp.ContentLength)
	}
	if got := r.resp.Header.Get("Content-Type"); got != "" {
		t.Errorf("Content-Type %q added by the library", got)
	}
	if res := a.wait(t); res.Err != nil {
		t.Errorf("Serve: %v", res.Err)
	}
	equal(t, "events", a.sink.events(), []string{
		"meta method=GET", "meta path=/dir/x y", "meta auth=Bearer t0k", "meta a=x y",
		"meta sp=%zz", "meta plus=1+2", "CONNECTED", "SERVER_TXN",
	})
}

func TestUndeclaredNamesNotSet(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1) // nothing declared: nothing set, request still served
	ln := h.listen(st)
	res := get(client(t, false), baseURL(ln, false)+"/p?a=1", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(204)
	a.tx.send("", event.SOM|event.EOM, 0)
	if r := h.recv(res); r.err != nil || r.resp.StatusCode != 204 {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
	a.wait(t)
	equal(t, "events", a.sink.events(), []string{"CONNECTED", "SERVER_TXN"})
}

func TestPOSTBody(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1, "method")
	ln := h.listen(st)
	body := strings.Repeat("0123456789", 4000) // 40000 bytes: several rx chunks
	res := do(client(t, false), http.MethodPost, baseURL(ln, false)+"/up", body, nil)
	a := h.next()
	a.sink.waitFor(t, `rx(EOM,"")`, 1)
	a.tx.respond(201)
	a.tx.whole("")
	if r := h.recv(res); r.err != nil || r.resp.StatusCode != 201 {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
	a.wait(t)
	ev := a.sink.events()
	equal(t, "head", ev[:3], []string{"meta method=POST", "CONNECTED", "SERVER_TXN"})
	var got strings.Builder
	rx := ev[3:]
	for i, e := range rx {
		var flags string
		switch {
		case i == 0:
			flags = "rx(SOM,"
		case i == len(rx)-1:
			if e != `rx(EOM,"")` {
				t.Fatalf("last rx %q, want zero-length EOM", e)
			}
			continue
		default:
			flags = "rx(0,"
		}
		if !strings.HasPrefix(e, flags) {
			t.Fatalf("rx %d = %.20q, want prefix %q", i, e, flags)
		}
		got.WriteString(strings.Trim(strings.TrimSuffix(strings.TrimPrefix(e, flags), ")"), `"`))
	}
	if got.String() != body {
		t.Fatalf("body: got %d bytes, want %d", got.Len(), len(body))
	}
}

func TestRespondStatusHeadersLength(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1, "mime=content-type:", "xc=X-Custom:", "unset=x-unset:", "plain")
	st.DirectProtoStr = true
	ln := h.listen(st)

	// A raw client, to see the header names exactly as written.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\nX-Req: 1\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(201)
	a.tx.setMeta(st, "mime", "text/plain")
	a.tx.setMeta(st, "xc", "v1")
	a.tx.setMeta(st, "plain", "not a header")
	a.tx.setMeta(st, "x-direct:", "d")
	a.tx.send("hel", event.SOM, 5)
	a.tx.send("lo", event.EOM, -1)
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(raw))), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 || string(b) != "hello" || resp.ContentLength != 5 {
		t.Fatalf("got %d %q length %d", resp.StatusCode, b, resp.ContentLength)
	}
	for _, want := range []string{"\r\ncontent-type: text/plain\r\n", "\r\nX-Custom: v1\r\n", "\r\nx-direct: d\r\n", "\r\nContent-Length: 5\r\n"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("response lacks %q:\n%s", want, raw)
		}
	}
	if strings.Contains(strings.ToLower(string(raw)), "x-unset") || strings.Count(strings.ToLower(string(raw)), "content-type") != 1 {
		t.Errorf("unexpected headers:\n%s", raw)
	}
	a.wait(t)
	equal(t, "events", a.sink.events(), []string{"meta connection:=close", "meta host:=a", "meta x-req:=1", "CONNECTED", "SERVER_TXN"})
}

func TestNoRespondIs404(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1))
	res := get(client(t, false), baseURL(ln, false)+"/", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.whole("nothing here")
	r := h.recv(res)
	if r.err != nil || r.resp.StatusCode != 404 || r.body != "nothing here" {
		t.Fatalf("response: %+v %q %v", r.resp, r.body, r.err)
	}
}

func TestNoContentLength(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1)
	st.HTTPNoContentLength = true
	ln := h.listen(st)
	res := get(client(t, false), baseURL(ln, false)+"/", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("hello")
	r := h.recv(res)
	if r.err != nil || r.body != "hello" {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
	if r.resp.ContentLength != -1 || r.resp.Header.Get("Content-Length") != "" {
		t.Errorf("Content-Length sent: %d %q", r.resp.ContentLength, r.resp.Header.Get("Content-Length"))
	}
	if len(r.resp.TransferEncoding) != 1 || r.resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Transfer-Encoding = %q, want chunked", r.resp.TransferEncoding)
	}
}

func TestKeepAlive(t *testing.T) {
	for _, clear := range []bool{false, true} {
		t.Run(map[bool]string{false: "set-empty", true: "clearer"}[clear], func(t *testing.T) {
			h := newHarness(t)
			h.clear = clear
			st := serverType("srv", policy.H1, "method", "path", "auth", "q")
			ln := h.listen(st)
			c := client(t, true)
			res := get(c, baseURL(ln, false)+"/one?q=1", map[string]string{"Authorization": "A"})
			a := h.next()
			a.sink.waitFor(t, "SERVER_TXN", 1)
			a.tx.respond(200)
			a.tx.whole("first")
			if r := h.recv(res); r.err != nil || r.body != "first" {
				t.Fatalf("first: %+v %v", r.resp, r.err)
			}
			res = do(c, http.MethodPost, baseURL(ln, false)+"/two", "hi", nil)
			a.sink.waitFor(t, `rx(EOM,"")`, 1)
			a.tx.respond(202)
			a.tx.whole("second")
			if r := h.recv(res); r.err != nil || r.body != "second" || r.resp.StatusCode != 202 {
				t.Fatalf("second: %+v %v", r.resp, r.err)
			}
			h.none() // same connection, same stream
			res = get(c, baseURL(ln, false)+"/three", nil)
			a.sink.waitFor(t, "SERVER_TXN", 3)
			a.tx.whole("") // status reset by NewTransaction: 404
			if r := h.recv(res); r.err != nil || r.resp.StatusCode != 404 {
				t.Fatalf("third: %+v %v", r.resp, r.err)
			}
			c.Transport.(*http.Transport).CloseIdleConnections()
			if res := a.wait(t); res.Err != nil {
				t.Errorf("Serve: %v", res.Err)
			}
			gone := "meta auth="
			goneQ := "meta q="
			if clear {
				gone, goneQ = "clear auth", "clear q"
			}
			equal(t, "events", a.sink.events(), []string{
				"meta method=GET", "meta path=/one", "meta auth=A", "meta q=1", "CONNECTED", "SERVER_TXN",
				"meta method=POST", "meta path=/two", gone, goneQ, "SERVER_TXN", `rx(SOM,"hi")`, `rx(EOM,"")`,
				"meta method=GET", "meta path=/three", "SERVER_TXN",
			})
			if a.tx.nt != 2 {
				t.Errorf("NewTransaction called %d times, want 2", a.tx.nt)
			}
		})
	}
}

func TestDestroyBeforeRespondClosesConnection(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1))
	res := get(client(t, false), baseURL(ln, false)+"/", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.cancel()
	r := h.recv(res)
	if r.err == nil {
		t.Fatalf("client got a response: %d %q", r.resp.StatusCode, r.body)
	}
	if res := a.wait(t); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Serve: %v, want context.Canceled", res.Err)
	}
}

func TestDestroyIdleKeepAliveConnection(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := h.next() // accepted at connection time, before any request
	a.cancel()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open")
	}
	a.wait(t)
	equal(t, "events", a.sink.events(), nil)
}

func TestDestroyDuringResponseBody(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.send("part", event.SOM, 100)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part" {
		t.Fatalf("first chunk: %q %v", buf, err)
	}
	a.cancel()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("body completed although the stream was destroyed")
	}
	if res := a.wait(t); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Serve: %v", res.Err)
	}
}

func TestClientGoneBeforeRespond(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	c.Close()
	if res := a.wait(t); !errors.Is(res.Err, ErrConnClosed) {
		t.Errorf("Serve: %v, want ErrConnClosed", res.Err)
	}
}
