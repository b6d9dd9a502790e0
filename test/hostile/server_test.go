package hostile

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/securestreams/ss"
)

// TestServerDecodedAndResponseHeaders: on an h1 server streamtype, the
// request path and query arguments reach the application percent-decoded;
// a response header value with CR LF is refused by SetMetadata naming the
// item (nothing of it reaches the client), and a valid one is sent.
func TestServerDecodedAndResponseHeaders(t *testing.T) {
	p := parse(t, `{"s": [{"srv": {"server": true, "endpoint": "127.0.0.1", "port": 0,
		"metadata": [{"path": "", "arg": "", "resp": "x-resp:"}]}}]}`)
	rt := newRuntime(t, ss.Config{Policy: p})
	ctx := context.Background()
	srv, err := rt.Serve(ctx, "srv")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		srv.Close(cctx)
	}()
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	if _, err := conn.Write([]byte("GET /a%20b%2Fc%0D%0A?arg=x%0D%0AX-Injected%3A%201 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	var s *ss.Stream
	select {
	case s = <-srv.Accepted():
	case <-time.After(wait):
		t.Fatal("nothing accepted")
	}
	defer func() {
		s.Destroy(ctx)
		for range s.Events() {
		}
	}()
	for ev := range s.Events() {
		if ev.Kind == ss.StateEvent && ev.State == ss.ServerTxn {
			break
		}
	}
	if v, _ := s.Metadata("path"); v != "/a b/c\r\n" {
		t.Errorf("path = %q, want the decoded %q", v, "/a b/c\r\n")
	}
	if v, _ := s.Metadata("arg"); v != "x\r\nX-Injected: 1" {
		t.Errorf("arg = %q, want the decoded %q", v, "x\r\nX-Injected: 1")
	}
	wantRefused(t, s.SetMetadata("resp", "v\r\nX-Injected: 1"), "resp", "CR (0x0d) at byte 1")
	if err := s.SetMetadata("resp", "fine"); err != nil {
		t.Fatal(err)
	}
	if err := s.Respond(200); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		b.WriteString(string(buf[:n]))
		if err != nil {
			break
		}
	}
	got := b.String()
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.Contains(got, "\r\nx-resp: fine\r\n") || strings.Contains(strings.ToLower(got), "x-injected") {
		t.Fatalf("response %q: want 200 with x-resp: fine and nothing injected", got)
	}
}
