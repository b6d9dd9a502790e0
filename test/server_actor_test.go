package test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// TestServerBacklogBound: a flood of connections that the application never
// takes from Accepted leaves exactly AcceptBacklog accepted streams (the
// listener actor's children); every other connection is closed at once and
// counted. Taking one makes room for one more. Close destroys the accepted
// streams (stopping the listener actor stops its children) and closes
// Accepted without delivering the ones never taken.
func TestServerBacklogBound(t *testing.T) {
	const backlog, flood = 4, 40
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawServerType("srv", "127.0.0.1")), AcceptBacklog: backlog})
	srv, err := rt.Serve(context.Background(), "srv")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	ctx := ctx10(t)
	if !testutil.WaitFor(ctx, func() bool { st := srv.Stats(); return st.Accepted+st.Rejected == flood }) {
		t.Fatalf("stats %+v after %d connections", srv.Stats(), flood)
	}
	st := srv.Stats()
	if st.Accepted != backlog || st.Backlog != backlog || st.Live != backlog || st.Rejected != flood-backlog {
		t.Fatalf("stats %+v, want %d accepted, waiting and live, %d rejected", st, backlog, flood-backlog)
	}
	// The refused connections were closed by the server.
	closed := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closed++
		}
	}
	if closed != flood-backlog {
		t.Fatalf("%d connections closed by the server, want %d", closed, flood-backlog)
	}
	// Taking one makes room for exactly one more.
	first := acceptWithin(t, srv, wait)
	r := record(t, first)
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, c)
	if !testutil.WaitFor(ctx, func() bool { return srv.Stats().Accepted == backlog+1 }) {
		t.Fatalf("stats %+v after taking one", srv.Stats())
	}
	if st := srv.Stats(); st.Backlog != backlog || st.Live != backlog+1 {
		t.Fatalf("stats %+v, want %d waiting and %d live", st, backlog, backlog+1)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r.closed(wait) // DESTROYING, then the channel closes
	if st := srv.Stats(); st.Live != 0 || st.Backlog != 0 {
		t.Fatalf("after Close: stats %+v, want nothing live or waiting", st)
	}
	for s := range srv.Accepted() {
		t.Fatalf("Accepted delivered %v after Close", s)
	}
}
