package actor

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"), goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1.1"))
}

type timerActor struct {
	sys  *System
	got  chan time.Duration
	t0   time.Time
	self *PID
}

type fire struct{}

func (a *timerActor) Receive(c Context) {
	switch c.Message().(type) {
	case *Started:
		a.t0 = time.Now()
		self := c.Self()
		time.AfterFunc(time.Hour, func() { a.sys.Tell(self, fire{}) })
	case fire:
		a.got <- time.Since(a.t0)
	case *Stopped:
		a.sys.Forget(c.Self())
	}
}

// TestSynctest shows protoactor's goroutines live inside a synctest bubble:
// a one-hour timer fires instantly in fake time and everything exits.
func TestSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := NewSystem(nil)
		a := &timerActor{sys: sys, got: make(chan time.Duration, 1)}
		if _, err := sys.Spawn(PropsFromReceiver(a), "t"); err != nil {
			t.Fatal(err)
		}
		if d := <-a.got; d != time.Hour {
			t.Fatalf("timer after %v, want 1h", d)
		}
		if err := sys.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if sys.tracked() != 0 {
			t.Fatal("actors still live")
		}
		synctest.Wait()
	})
}

func TestSpawnAfterShutdown(t *testing.T) {
	sys := NewSystem(nil)
	if err := sys.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Spawn(PropsFromFunc(func(Context) {}), "x"); err == nil {
		t.Fatal("spawn after shutdown succeeded")
	}
}
