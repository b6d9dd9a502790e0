package test

import (
	"context"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/testutil"
)

type trip struct{ reason string }

// superviseWithTrigger spawns, in sys, a parent whose all-for-one strategy
// applies decide to its children when one fails, with two children: props
// (a stream's actor) and a trigger actor that panics with the reason it is
// sent. It returns the trigger.
func superviseWithTrigger(t *testing.T, sys *actor.System, props *actor.Props, decide actor.DeciderFunc) *actor.PID {
	t.Helper()
	triggers := make(chan *actor.PID, 1)
	parent := actor.Supervised(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			if _, err := actor.SpawnChild(c, props, "stream-"); err != nil {
				t.Error(err)
			}
			tr, err := actor.SpawnChild(c, actor.PropsFromFunc(func(c actor.Context) {
				if m, ok := c.Message().(trip); ok {
					panic(m.reason)
				}
			}), "trigger-")
			if err != nil {
				t.Error(err)
			}
			triggers <- tr
		case *actor.Stopped:
			sys.Forget(c.Self())
		}
	}), actor.AllForOne(10, time.Minute, decide))
	pid, err := sys.Spawn(parent, "parent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Stop(pid) })
	return <-triggers
}

// TestCreatePropsRestartReconnects: a supervisor restarting a stream's
// actor makes the stream reconnect: a connected stream goes DISCONNECTED,
// CONNECTING, CONNECTED and carries data again; a stream waiting out a long
// retry backoff attempts at once.
func TestCreatePropsRestartReconnects(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	sys := actor.NewSystem(nil)
	defer sys.Shutdown(context.Background())
	st := rawType("echo", "127.0.0.1", srv.Port())
	st.NailedUp = true
	down := rawType("down", "127.0.0.1", testutil.FreePort(t))
	down.NailedUp, down.Retry = true, retry(10, 0, 60_000)
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st, down), Actors: sys})
	ctx := context.Background()

	s, props, err := rt.CreateProps(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	trigger := superviseWithTrigger(t, sys, props, actor.Always(actor.Restart))
	r.untilState(wait, ss.Connected)
	sys.Tell(trigger, trip{"restart"})
	r.untilState(wait, ss.Disconnected)
	r.untilState(wait, ss.Connected)
	if err := s.Send(ctx, []byte("again")); err != nil {
		t.Fatal(err)
	}
	r.untilBytes(wait, 5)
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r.closed(wait)
	r.expect("CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED", `rx(0,"again")`, "DISCONNECTED", "DESTROYING")

	// Not connected, waiting a minute before the next attempt: the restart
	// attempts now.
	s2, props2, err := rt.CreateProps(ctx, "down")
	if err != nil {
		t.Fatal(err)
	}
	r2 := record(t, s2)
	trigger2 := superviseWithTrigger(t, sys, props2, actor.Always(actor.Restart))
	r2.untilState(wait, ss.Unreachable)
	sys.Tell(trigger2, trip{"restart"})
	r2.untilState(5*time.Second, ss.Connecting)
	if n := s2.Stats().Attempts; n != 2 {
		t.Fatalf("attempts = %d, want 2 (the first and the restart's)", n)
	}
	if err := s2.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r2.closed(wait)
}

// TestCreatePropsSupervisorStopDestroys: a supervisor stopping a stream's
// actor destroys the stream: DISCONNECTED, DESTROYING, channel closed.
func TestCreatePropsSupervisorStopDestroys(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	sys := actor.NewSystem(nil)
	defer sys.Shutdown(context.Background())
	st := rawType("echo", "127.0.0.1", srv.Port())
	st.NailedUp = true
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st), Actors: sys})
	s, props, err := rt.CreateProps(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	trigger := superviseWithTrigger(t, sys, props, actor.Always(actor.Stop))
	r.untilState(wait, ss.Connected)
	sys.Tell(trigger, trip{"stop"})
	r.closed(wait)
	r.expect("CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
	if n := rt.Stats().Streams; n != 0 {
		t.Fatalf("Streams = %d after the supervisor stopped the stream", n)
	}
}
