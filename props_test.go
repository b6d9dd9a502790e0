package ss_test

import (
	"context"
	"errors"
	"testing"

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
