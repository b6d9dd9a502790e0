package test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/testutil"
)

// TestCreateProps: a stream supervised by an application actor in the
// application's own actor system. Requests made before the Props are
// spawned are served once the actor runs; the parent stopping ends the
// stream cleanly.
func TestCreateProps(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	sys := actor.NewSystem(nil)
	defer sys.Shutdown(context.Background())
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port())), Actors: sys})
	ctx := context.Background()
	s, props, err := rt.CreateProps(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	if err := s.Send(ctx, []byte("early")); err != nil { // before the actor exists
		t.Fatal(err)
	}
	parent, err := sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			c.Spawn(props)
		case *actor.Stopped:
			sys.Forget(c.Self()) // actors spawned with System.Spawn say when they stop
		}
	}), "supervisor-")
	if err != nil {
		t.Fatal(err)
	}
	r.untilBytes(wait, 5)
	sys.Stop(parent) // stops its children: the stream ends
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"early")`, "DISCONNECTED", "DESTROYING")

	plain := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	if _, _, err := plain.CreateProps(ctx, "echo"); !errors.Is(err, ss.ErrNoActorSystem) {
		t.Fatalf("CreateProps without Config.Actors = %v", err)
	}
}

// TestCreatePropsNeverSpawned: Close ends a stream whose Props were never
// spawned (CREATING, DESTROYING) instead of waiting for it forever.
func TestCreatePropsNeverSpawned(t *testing.T) {
	sys := actor.NewSystem(nil)
	defer sys.Shutdown(context.Background())
	rt, err := ss.New(context.Background(), ss.Config{Policy: newPolicy(rawType("x", "127.0.0.1", 9)), Actors: sys})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := rt.CreateProps(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	s.Connect()
	var got []string
	read := make(chan struct{})
	go func() {
		defer close(read)
		for ev := range s.Events() {
			got = append(got, ev.String())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-read
	if fmt.Sprint(got) != "[CREATING DESTROYING]" {
		t.Fatalf("events %v", got)
	}
}

// TestCreatePropsProxied: CreateProps on a proxied runtime fails clearly
// instead of creating a local stream behind the proxy's back.
func TestCreatePropsProxied(t *testing.T) {
	sys := actor.NewSystem(nil)
	defer sys.Shutdown(context.Background())
	st := rawType("echo", "127.0.0.1", 1)
	for _, cfg := range []ss.Config{
		{Proxy: "unix:" + t.TempDir() + "/none.sock", Actors: sys},
		{Proxy: "unix:" + t.TempDir() + "/none.sock", Actors: sys, Policy: newPolicy(st)},
	} {
		rt := newRuntime(t, cfg)
		s, props, err := rt.CreateProps(context.Background(), "echo")
		if !errors.Is(err, ss.ErrProxiedProps) || s != nil || props != nil {
			t.Fatalf("CreateProps on a proxied runtime: %v, %v, %v; want ErrProxiedProps", s, props, err)
		}
		if n := rt.Stats().Streams; n != 0 {
			t.Fatalf("Streams = %d, want 0", n)
		}
	}
}
