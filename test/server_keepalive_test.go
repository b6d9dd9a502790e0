package test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/policy"
)

// TestH1KeepAliveMetadataCleared: on an h1 keep-alive connection, request
// fields the previous request had and this one lacks (a query argument,
// Authorization) are unset for the second SERVER_TXN, not "" (docs/streams.md
// §10.2 steps 2 and 6); fields it has are replaced.
func TestH1KeepAliveMetadataCleared(t *testing.T) {
	st := &policy.Streamtype{Name: "web", Protocol: policy.H1, Server: true, Endpoint: "127.0.0.1", ClientCert: -1}
	for i, n := range []string{"method", "path", "auth", "q"} {
		st.Metadata = append(st.Metadata, &policy.MetadataItem{Name: n, Index: i})
	}
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx := context.Background()
	srv, err := rt.Serve(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	roundTrip := func(req string) string {
		t.Helper()
		c.SetDeadline(time.Now().Add(wait))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b)
	}
	var s *ss.Stream
	var r *recorder
	type md struct {
		v  string
		ok bool
	}
	got := map[string]md{}
	respond := func() {
		r.untilState(wait, ss.ServerTxn)
		for _, n := range []string{"method", "path", "auth", "q"} {
			v, ok := s.Metadata(n)
			got[n] = md{v, ok}
		}
		if err := s.Respond(200); err != nil {
			t.Error(err)
		}
		if err := s.Send(ctx, []byte("ok")); err != nil {
			t.Error(err)
		}
	}
	done := make(chan string, 1)
	go func() {
		done <- roundTrip("GET /first?q=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n")
	}()
	select {
	case s = <-srv.Accepted():
	case <-time.After(wait):
		t.Fatal("nothing accepted")
	}
	r = record(t, s)
	respond()
	if resp := <-done; resp != "200 OK ok" {
		t.Fatalf("first response %q", resp)
	}
	want1 := map[string]md{"method": {"GET", true}, "path": {"/first", true}, "auth": {"Bearer t", true}, "q": {"1", true}}
	for n, w := range want1 {
		if got[n] != w {
			t.Fatalf("first request: Metadata(%q) = %q, %v; want %q, %v", n, got[n].v, got[n].ok, w.v, w.ok)
		}
	}
	go func() { done <- roundTrip("POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") }()
	respond()
	if resp := <-done; resp != "200 OK ok" {
		t.Fatalf("second response %q", resp)
	}
	want2 := map[string]md{"method": {"POST", true}, "path": {"/second", true}, "auth": {"", false}, "q": {"", false}}
	for n, w := range want2 {
		if got[n] != w {
			t.Fatalf("second request: Metadata(%q) = %q, %v; want %q, %v", n, got[n].v, got[n].ok, w.v, w.ok)
		}
	}
	c.Close()
	r.closed(wait)
	r.expect("CREATING", "CONNECTING", "CONNECTED", "SERVER_TXN", "SERVER_TXN", "DISCONNECTED", "DESTROYING")
}
