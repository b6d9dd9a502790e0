package ss

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss/policy"
)

// TestListenerActorStopEndsChildren: the accepted streams' actors are
// children of the listener actor (docs/supervision.md): stopping the
// listener actor alone, as its supervisor or the actor system would,
// without Destroy or Close, ends every accepted stream (DISCONNECTED,
// DESTROYING, channel closed, connection closed), and Close still returns.
func TestListenerActorStopEndsChildren(t *testing.T) {
	st := &policy.Streamtype{Name: "srv", Protocol: policy.Raw, Endpoint: "127.0.0.1", Server: true, ClientCert: -1}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := New(ctx, Config{Policy: &policy.Policy{SchemaVersion: 1, Streamtypes: []*policy.Streamtype{st}}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := rt.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	srv, err := rt.Serve(ctx, "srv")
	if err != nil {
		t.Fatal(err)
	}
	const n = 2
	var conns []net.Conn
	var streams []*Stream
	for range n {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		select {
		case s := <-srv.Accepted():
			streams = append(streams, s)
		case <-ctx.Done():
			t.Fatal("nothing accepted")
		}
	}
	// Each accepted stream is connected.
	next := func(s *Stream) Event {
		t.Helper()
		select {
		case ev, ok := <-s.Events():
			if !ok {
				t.Fatal("channel closed early")
			}
			return ev
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return Event{}
	}
	for _, s := range streams {
		for ev := next(s); ev.Kind != StateEvent || ev.State != Connected; ev = next(s) {
		}
	}
	if live := srv.Stats().Live; live != n {
		t.Fatalf("%d live accepted streams, want %d", live, n)
	}

	rt.actors.Stop(srv.pid)
	select {
	case <-srv.stopped:
	case <-ctx.Done():
		t.Fatal("listener actor not stopped")
	}
	for i, s := range streams {
		var got []State
	read:
		for {
			select {
			case ev, ok := <-s.Events():
				if !ok {
					break read
				}
				if ev.Kind == StateEvent {
					got = append(got, ev.State)
				}
			case <-ctx.Done():
				break read // got says what arrived
			}
		}
		if len(got) != 2 || got[0] != Disconnected || got[1] != Destroying {
			t.Fatalf("accepted stream %d after its parent stopped: %v, want DISCONNECTED, DESTROYING", i, got)
		}
		conns[i].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conns[i].Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("connection %d: read %v, want EOF (closed by the server)", i, err)
		}
	}
	if live := srv.Stats().Live; live != 0 {
		t.Fatalf("%d live accepted streams after the listener actor stopped", live)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("Close after the listener actor stopped: %v", err)
	}
}
