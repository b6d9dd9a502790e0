package transport

import (
	"context"
	"time"
)

// CutNotifier is implemented by Sinks whose attempt context only their
// stream cancels (the stream's sink: Disconnect, Destroy, a validity
// timeout, a restart). OnCut(f) runs f on a goroutine of its own once the
// stream has cut the attempt (at once if it already has), at most once;
// it replaces the function registered before, which then never runs (one
// phase of the attempt at a time: the dial, then the connection).
// It is context.AfterFunc(ctx, f) without its cost: an AfterFunc
// registers in a map allocated in the parent context, about 700 bytes per
// connection while it lives (PERFORMANCE.md "Connected raw stream"). f
// must be safe to call after Run has returned (closing a connection that
// is already closed, say).
type CutNotifier interface {
	OnCut(f func())
}

// AfterCut arranges for f to run once ctx is cancelled: through
// sink.OnCut when the sink is a CutNotifier, otherwise with
// context.AfterFunc. The returned stop unregisters f where it can
// (AfterFunc); after OnCut it does nothing, and f may still run.
func AfterCut(ctx context.Context, sink Sink, f func()) (stop func() bool) {
	if n, ok := sink.(CutNotifier); ok {
		n.OnCut(f)
		return noStop
	}
	return context.AfterFunc(ctx, f)
}

func noStop() bool { return false }

// CutTimeout is context.WithTimeout(ctx, d) for one phase of an attempt
// (a dial): when sink is a CutNotifier the child is not registered in ctx
// (which would allocate ctx's child map and done channel, kept while the
// connection lives) but cancelled through OnCut. Values come from ctx;
// check ctx, not the child, for the cause of a cut.
func CutTimeout(ctx context.Context, sink Sink, d time.Duration) (context.Context, context.CancelFunc) {
	n, ok := sink.(CutNotifier)
	if !ok {
		return context.WithTimeout(ctx, d)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	n.OnCut(cancel)
	return dctx, cancel
}
