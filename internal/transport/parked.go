package transport

import "github.com/securestreams/ss/internal/event"

// ParkedSink is implemented by Sinks whose stream lets a connection
// outlive Run: a plain socket parked in an event loop
// (Attempt.Poller, internal/evloop), read inline on the loop's thread,
// with no goroutine of its own while it is idle. Such a Run, once
// connected and parked, returns Result{Parked: true} at once and reports
// the connection's real end later with End; until then the sink works as
// while Run runs (the attempt's context, OnCut, State, Rx).
type ParkedSink interface {
	Sink
	// TryRx is Rx without waiting: false, having taken nothing (data is
	// still the caller's), when the stream's receive budget is full. The
	// caller then calls Rx from a goroutine of its own, which waits for
	// the application (receive back-pressure) and stops reading the
	// socket meanwhile. An error means the stream refuses the payload for
	// good (the attempt was cut, the stream ends): end the connection.
	TryRx(data []byte, flags event.Flags) (bool, error)
	// End reports the end of a connection whose Run returned
	// Result{Parked: true}, with the Result Run would have returned. It is
	// called exactly once; afterwards the sink ignores calls, as after Run
	// returns.
	End(res Result)
}
