package httpserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/policy"
)

func wsURL(base string) string {
	return "ws" + strings.TrimPrefix(base, "http")
}

func dialWS(t *testing.T, url string, protos ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protos, HandshakeTimeout: waitLimit}
	c, resp, err := d.Dial(url, nil)
	if resp != nil && resp.Body != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return c, resp, err
}

// echo answers every received message of a on its tx until the sink has seen
// n messages.
func echoN(t *testing.T, a *accepted, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		a.sink.waitFor(t, `rx(SOM|EOM,"`+m+`")`, 1)
		a.tx.send(m, event.SOM|event.EOM, -1)
	}
}

func TestWSUpgradeEcho(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1, "path", "q")
	st.WSSubprotocol = "ss-echo"
	ln := h.listen(st)
	c, resp, err := dialWS(t, wsURL(baseURL(ln, false))+"/ws?q=1", "other", "ss-echo")
	if err != nil {
		t.Fatalf("dial: %v (%+v)", err, resp)
	}
	if c.Subprotocol() != "ss-echo" {
		t.Errorf("subprotocol %q", c.Subprotocol())
	}
	a := h.next()
	a.sink.waitFor(t, "SERVER_UPGRADE", 1)
	for _, m := range []string{"hello", "world"} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		echoN(t, a, m)
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != m {
			t.Fatalf("echo: %q %v", got, err)
		}
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	_, _, _ = c.ReadMessage()
	c.Close()
	if res := a.wait(t); res.Err != nil {
		t.Errorf("Serve: %v", res.Err)
	}
	equal(t, "events", a.sink.events(), []string{
		"meta path=/ws", "meta q=1", "CONNECTED", "SERVER_UPGRADE",
		`rx(SOM|EOM,"hello")`, `rx(SOM|EOM,"world")`,
	})
}

func TestWSDestroyClosesWebsocket(t *testing.T) {
	h := newHarness(t)
	st := serverType("srv", policy.H1)
	st.WSSubprotocol = "p"
	ln := h.listen(st)
	c, _, err := dialWS(t, wsURL(baseURL(ln, false)), "p")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := h.next()
	a.sink.waitFor(t, "SERVER_UPGRADE", 1)
	a.cancel()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Errorf("client read: %v, want close 1000", err)
	}
	if res := a.wait(t); !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Serve: %v", res.Err)
	}
}

func TestWSWrongSubprotocolIs400(t *testing.T) {
	for _, offer := range [][]string{{"nope"}, nil} {
		t.Run(strings.Join(offer, ","), func(t *testing.T) {
			h := newHarness(t)
			st := serverType("srv", policy.H1, "path")
			st.WSSubprotocol = "right"
			ln := h.listen(st)
			_, resp, err := dialWS(t, wsURL(baseURL(ln, false))+"/ws", offer...)
			if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("dial: %v, %+v; want 400", err, resp)
			}
			a := h.next()
			if res := a.wait(t); !errors.Is(res.Err, ErrSubprotocol) {
				t.Errorf("Serve: %v, want ErrSubprotocol", res.Err)
			}
			equal(t, "events", a.sink.events(), nil)
		})
	}
}

func TestWSUpgradeRequestWithoutWSSubprotocolIsATransaction(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(serverType("srv", policy.H1, "method"))
	_, resp, err := func() (*websocket.Conn, *http.Response, error) {
		res := make(chan struct{})
		var (
			c    *websocket.Conn
			resp *http.Response
			err  error
		)
		go func() {
			defer close(res)
			c, resp, err = dialWS(t, wsURL(baseURL(ln, false)), "x")
		}()
		a := h.next()
		a.sink.waitFor(t, "SERVER_TXN", 1)
		a.tx.respond(403)
		a.tx.whole("")
		<-res
		return c, resp, err
	}()
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("dial: %v %+v", err, resp)
	}
}

func TestSharedListener(t *testing.T) {
	h := newHarness(t)
	owner := serverType("owner", policy.H1, "path")
	owner.WSSubprotocol = "own"
	lnOwner := h.listen(owner)
	sharer := serverType("sharer", policy.H1, "path")
	sharer.Endpoint = "!owner"
	sharer.ListenerOf = owner
	sharer.WSSubprotocol = "shared"
	lnSharer := h.listen(sharer)
	if lnSharer.Addr().String() != lnOwner.Addr().String() {
		t.Fatalf("sharer address %v, owner %v", lnSharer.Addr(), lnOwner.Addr())
	}
	base := baseURL(lnOwner, false)

	// Plain HTTP goes to the owner.
	res := get(client(t, false), base+"/plain", nil)
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	if a.st != owner {
		t.Fatalf("plain request went to %s", a.st.Name)
	}
	a.tx.respond(200)
	a.tx.whole("owner")
	if r := h.recv(res); r.err != nil || r.body != "owner" {
		t.Fatalf("plain: %+v %v", r.resp, r.err)
	}

	// A websocket offering the sharer's subprotocol goes to the sharer.
	c, _, err := dialWS(t, wsURL(base)+"/s", "shared")
	if err != nil {
		t.Fatal(err)
	}
	b := h.next()
	b.sink.waitFor(t, "SERVER_UPGRADE", 1)
	if b.st != sharer {
		t.Fatalf("upgrade went to %s", b.st.Name)
	}
	c.Close()
	b.wait(t)
	equal(t, "sharer events", b.sink.events(), []string{"meta path=/s", "CONNECTED", "SERVER_UPGRADE"})

	// After the sharer's Listener closes, its subprotocol goes to the owner,
	// which refuses it.
	lnSharer.Close()
	if _, resp, err := dialWS(t, wsURL(base)+"/s", "shared"); err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("after sharer closed: %v %+v", err, resp)
	}
	if d := h.next(); d.st != owner {
		t.Fatalf("went to %s", d.st.Name)
	}
}
