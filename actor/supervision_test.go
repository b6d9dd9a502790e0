package actor

import (
	"context"
	"testing"
	"time"
)

type boom struct{}

// supervised spawns a parent whose strategy is strategy and one child that
// panics on boom; it returns the child and a channel of what the child
// and the parent saw.
func supervised(t *testing.T, sys *System, strategy SupervisorStrategy) (*PID, *PID, chan string) {
	t.Helper()
	seen := make(chan string, 16)
	child := PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			seen <- "child started"
		case *Restarting:
			seen <- "child restarting"
		case *Stopped:
			seen <- "child stopped"
		case boom:
			panic("boom")
		}
	})
	pids := make(chan *PID, 1)
	parent := Supervised(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			pid, err := SpawnChild(c, child, "child-")
			if err != nil {
				t.Error(err)
			}
			pids <- pid
		case *Terminated:
			seen <- "parent saw child terminate"
		case *Stopped:
			sys.Forget(c.Self())
		}
	}), strategy)
	ppid, err := sys.Spawn(parent, "parent-")
	if err != nil {
		t.Fatal(err)
	}
	return ppid, <-pids, seen
}

func expectSeen(t *testing.T, seen chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-seen:
			if got != w {
				t.Fatalf("saw %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q not seen", w)
		}
	}
}

func TestSupervisedRestart(t *testing.T) {
	sys := NewSystem(nil)
	defer sys.Shutdown(context.Background())
	_, child, seen := supervised(t, sys, OneForOne(3, time.Minute, Always(Restart)))
	expectSeen(t, seen, "child started")
	sys.Tell(child, boom{})
	expectSeen(t, seen, "child restarting", "child started")
	// A fourth failure within the window stops it instead.
	for range 3 {
		sys.Tell(child, boom{})
	}
	expectSeen(t, seen, "child restarting", "child started", "child restarting", "child started",
		"child stopped", "parent saw child terminate")
}

func TestSupervisedStop(t *testing.T) {
	sys := NewSystem(nil)
	defer sys.Shutdown(context.Background())
	_, child, seen := supervised(t, sys, AllForOne(10, time.Minute, Always(Stop)))
	expectSeen(t, seen, "child started")
	sys.Tell(child, boom{})
	expectSeen(t, seen, "child stopped", "parent saw child terminate")
}
