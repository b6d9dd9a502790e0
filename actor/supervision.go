package actor

import (
	"fmt"
	"time"

	pa "github.com/asynkron/protoactor-go/actor"
)

// Supervision types, so that ss code and applications can supervise actors
// without importing protoactor themselves (docs/supervision.md).
type (
	// SupervisorStrategy decides what happens to a child that failed
	// (panicked while handling a message).
	SupervisorStrategy = pa.SupervisorStrategy
	// Directive is a supervisor's decision about a failed child.
	Directive = pa.Directive
	// DeciderFunc maps a failure reason (the panic value) to a Directive.
	DeciderFunc = pa.DeciderFunc
	// Terminated tells a parent (or watcher) that an actor stopped.
	Terminated = pa.Terminated
)

// Directives.
const (
	// Resume keeps the failed child's state and goes on with the next message.
	Resume = pa.ResumeDirective
	// Restart replaces the child's behaviour (Restarting, then Started) and
	// goes on with the next message.
	Restart = pa.RestartDirective
	// Stop stops the child.
	Stop = pa.StopDirective
	// Escalate fails the parent itself.
	Escalate = pa.EscalateDirective
)

// OneForOne returns a strategy that applies decide to the failed child
// only. A child restarted more than maxRestarts times within window is
// stopped instead.
func OneForOne(maxRestarts int, window time.Duration, decide DeciderFunc) SupervisorStrategy {
	return pa.NewOneForOneStrategy(maxRestarts, window, decide)
}

// AllForOne returns a strategy that applies decide to every child of the
// parent when one fails (for children that only make sense together).
func AllForOne(maxRestarts int, window time.Duration, decide DeciderFunc) SupervisorStrategy {
	return pa.NewAllForOneStrategy(maxRestarts, window, decide)
}

// Always returns a decider that answers d whatever the failure.
func Always(d Directive) DeciderFunc { return func(any) Directive { return d } }

// Supervised returns props whose children are supervised by strategy.
func Supervised(props *Props, strategy SupervisorStrategy) *Props {
	return props.Configure(pa.WithSupervisor(strategy))
}

// SpawnChild starts props as a child of the actor whose context c is, named
// prefix followed by a unique id. It returns errors instead of panicking.
// Children are not tracked by System: their parent stops them.
func SpawnChild(c Context, props *Props, prefix string) (*PID, error) {
	pid, err := c.SpawnNamed(props, prefix+c.ActorSystem().ProcessRegistry.NextId())
	if err != nil {
		return nil, fmt.Errorf("ss: spawn %s: %w", prefix, err)
	}
	return pid, nil
}
