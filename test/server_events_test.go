package test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss"
)

// TestServerEvents: the listening stream emits CREATING and nothing else
// while it accepts (docs/streams.md §10.1); closing it destroys its accepted
// streams first, then DESTROYING, then its channel is closed.
func TestServerEvents(t *testing.T) {
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawServerType("srv", "127.0.0.1"))})
	ctx := context.Background()
	srv, err := rt.Serve(ctx, "srv")
	if err != nil {
		t.Fatal(err)
	}
	next := func() (ss.Event, bool) {
		t.Helper()
		select {
		case ev, ok := <-srv.Events():
			return ev, ok
		case <-time.After(wait):
			t.Fatal("no server event")
			return ss.Event{}, false
		}
	}
	if ev, ok := next(); !ok || ev.Kind != ss.StateEvent || ev.State != ss.Creating {
		t.Fatalf("first server event %v, %v; want CREATING", ev, ok)
	}
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acc := record(t, acceptWithin(t, srv, wait))
	acc.untilState(wait, ss.Connected)
	select {
	case ev := <-srv.Events():
		t.Fatalf("server event %v while accepting", ev)
	case <-time.After(50 * time.Millisecond):
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	acc.closed(wait) // accepted streams were destroyed first
	acc.expect("CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
	if ev, ok := next(); !ok || ev.State != ss.Destroying {
		t.Fatalf("server event after Close %v, %v; want DESTROYING", ev, ok)
	}
	if ev, ok := next(); ok {
		t.Fatalf("server event after DESTROYING: %v", ev)
	}
	// The runtime closing a server it still serves ends its channel too.
	srv2, err := rt.Serve(ctx, "srv")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev := range srv2.Events() {
		got = append(got, ev.State.String())
	}
	if len(got) != 2 || got[0] != "CREATING" || got[1] != "DESTROYING" {
		t.Fatalf("events of a server closed by Runtime.Close: %v", got)
	}
}
