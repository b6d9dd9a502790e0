// Package actor is ss's only door to protoactor-go. It sets an actor system up
// the way ss needs it (silent logger, no metrics provider, short dead-letter
// throttle), spawns with errors instead of panics, and tracks the actors ss
// spawned so that they are stopped explicitly before the system shuts down
// (ActorSystem.Shutdown does not stop actors).
//
// Everything else in ss refers to protoactor types through the aliases here.
package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// Aliases of the protoactor types ss code uses.
type (
	// Context is what an actor's Receive gets.
	Context = pa.Context
	// PID identifies an actor.
	PID = pa.PID
	// Props describe how to create an actor; spawn them in any actor system
	// (for example as children of a user's supervisor).
	Props = pa.Props
	// Started is delivered first to every actor.
	Started = pa.Started
	// Stopping is delivered when an actor begins to stop.
	Stopping = pa.Stopping
	// Stopped is delivered last to every actor.
	Stopped = pa.Stopped
	// Restarting is delivered before a supervisor restarts an actor.
	Restarting = pa.Restarting
	// ReceiveFunc is an actor's behaviour.
	ReceiveFunc = pa.ReceiveFunc
)

// ErrStopped is returned when the system has been shut down.
var ErrStopped = errors.New("ss: actor system stopped")

// deadLetterThrottle is the dead-letter throttle interval ss configures: a
// message sent to a stopped actor (for example a timer that fired during
// Destroy) starts a goroutine that lives this long.
const deadLetterThrottle = 10 * time.Millisecond

// System is an actor system together with the actors ss spawned in it.
type System struct {
	sys *pa.ActorSystem
	own bool

	mu      sync.Mutex
	stopped bool
	live    map[*PID]struct{}
	idle    chan struct{} // closed when live becomes empty while someone waits
}

// NewSystem creates a private actor system that logs to logger (nil: silent)
// and never starts a metrics provider.
func NewSystem(logger *slog.Logger) *System {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sys := pa.NewActorSystem(
		pa.WithLoggerFactory(func(*pa.ActorSystem) *slog.Logger { return logger }),
		pa.WithDeadLetterThrottleInterval(deadLetterThrottle),
		pa.WithDeadLetterRequestLogging(false),
	)
	return &System{sys: sys, own: true, live: map[*PID]struct{}{}}
}

// Wrap uses an actor system the application owns. Shutdown then stops only
// the actors ss spawned and leaves the system running.
func Wrap(sys *pa.ActorSystem) *System {
	return &System{sys: sys, live: map[*PID]struct{}{}}
}

// ActorSystem returns the underlying protoactor system.
func (s *System) ActorSystem() *pa.ActorSystem { return s.sys }

// PropsFromFunc returns Props for an actor behaving as receive.
func PropsFromFunc(receive ReceiveFunc) *Props { return pa.PropsFromFunc(receive) }

// PropsFromReceiver returns Props whose actor is r itself (every spawn of the
// Props uses the same r, so spawn them once).
func PropsFromReceiver(r interface{ Receive(Context) }) *Props {
	return pa.PropsFromProducer(func() pa.Actor { return r })
}

// PropsInline is PropsFromReceiver for an actor whose messages are processed
// on the goroutine that sends them (protoactor's synchronized dispatcher):
// a Tell to an idle actor runs its Receive at once on the caller's goroutine,
// and messages sent meanwhile by others are queued and processed by that
// same call, one at a time as always. The default dispatcher starts a
// goroutine per wake of an idle actor instead; the hand-off to it costs more
// than most Receives (PERFORMANCE.md, "h1/h2/h3 GET rate"). Use it only for
// an actor whose Receive never blocks and whose senders never hold a lock
// its Receive takes, or call back into it.
func PropsInline(r interface{ Receive(Context) }) *Props {
	return pa.PropsFromProducer(func() pa.Actor { return r }, pa.WithDispatcher(pa.NewSynchronizedDispatcher(inlineThroughput)))
}

// inlineThroughput is how many messages an inline actor processes before
// it yields the processor (runtime.Gosched), as protoactor's default.
const inlineThroughput = 300

// Spawn starts an actor named prefix followed by a unique id. Unlike
// protoactor's Root.Spawn it returns errors instead of panicking. The actor
// is tracked until Forget is called for it (normally from its Stopped
// handler) so that Shutdown can stop it.
func (s *System) Spawn(props *Props, prefix string) (*PID, error) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil, ErrStopped
	}
	s.mu.Unlock()
	pid, err := s.sys.Root.SpawnNamed(props, prefix+s.sys.ProcessRegistry.NextId())
	if err != nil {
		return nil, fmt.Errorf("ss: spawn %s: %w", prefix, err)
	}
	s.mu.Lock()
	// An actor may have stopped (and called Forget) already, inside
	// SpawnNamed (PropsInline) or on its own goroutine: it left the
	// registry before it could call Forget, and Forget waits for s.mu.
	if _, alive := s.sys.ProcessRegistry.GetLocal(pid.Id); alive {
		s.live[pid] = struct{}{}
	}
	s.mu.Unlock()
	return pid, nil
}

// Forget stops tracking pid; an actor calls it when it receives Stopped.
func (s *System) Forget(pid *PID) {
	s.mu.Lock()
	delete(s.live, pid)
	if len(s.live) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// Tell sends msg to pid without waiting. It never blocks.
func (s *System) Tell(pid *PID, msg any) { s.sys.Root.Send(pid, msg) }

// Stop stops pid at once (pending user messages are dropped).
func (s *System) Stop(pid *PID) { s.sys.Root.Stop(pid) }

// tracked returns the number of tracked actors.
func (s *System) tracked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// Shutdown stops every tracked actor, waits until they have all called
// Forget (or ctx is done), and shuts the system down if it is private.
// Idempotent.
func (s *System) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	pids := make([]*PID, 0, len(s.live))
	for pid := range s.live {
		pids = append(pids, pid)
	}
	s.mu.Unlock()
	for _, pid := range pids {
		s.sys.Root.Stop(pid)
	}
	var err error
	s.mu.Lock()
	if len(s.live) > 0 {
		if s.idle == nil {
			s.idle = make(chan struct{})
		}
		idle := s.idle
		s.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			err = ctx.Err()
		}
	} else {
		s.mu.Unlock()
	}
	if s.own && !s.sys.IsStopped() {
		s.sys.Shutdown()
	}
	return err
}
