package httpserver

import (
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss/policy"
)

// TestHandshakesBounded: connections that never start their TLS handshake
// hold at most MaxHandshakes slots; while they do the listener stops
// accepting (a good client waits in the kernel's backlog), and once they
// go away the good client is served.
func TestHandshakesBounded(t *testing.T) {
	h := newHarness(t)
	ln := h.listen(withTLS(t, serverType("srv", policy.H1)))
	var idle []net.Conn
	closeIdle := func() {
		for _, c := range idle {
			c.Close()
		}
		idle = nil
	}
	defer closeIdle()
	for range MaxHandshakes + 20 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond) // let the accept loop take what it will
	res := get(tlsClient(t, false), baseURL(ln, true)+"/", nil)
	select {
	case a := <-h.acc:
		t.Fatalf("a request from %v was accepted while every handshake slot was taken", a.conn.RemoteAddr())
	case <-time.After(200 * time.Millisecond):
	}
	closeIdle()
	a := h.next()
	a.sink.waitFor(t, "SERVER_TXN", 1)
	a.tx.respond(200)
	a.tx.whole("served")
	if r := h.recv(res); r.err != nil || r.body != "served" {
		t.Fatalf("response: %+v %v", r.resp, r.err)
	}
}
