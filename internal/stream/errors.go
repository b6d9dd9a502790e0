package stream

import (
	"errors"
	"time"
)

// Errors returned by stream operations. The root package ss re-exports them.
var (
	// ErrDestroyed: the stream has been destroyed.
	ErrDestroyed = errors.New("ss: stream destroyed")
	// ErrUndeclaredMetadata: the name is not declared by the streamtype (and
	// is not a "name:" header on a direct_proto_str streamtype).
	ErrUndeclaredMetadata = errors.New("ss: undeclared metadata")
	// ErrValidityTimeout is the cancel cause of an attempt whose connection
	// failed its validity check (docs/streams.md §7).
	ErrValidityTimeout = errors.New("ss: connection validity timeout")
	// ErrDisconnect is the cancel cause of an attempt ended by Disconnect.
	ErrDisconnect = errors.New("ss: disconnect requested")
	// ErrClosed: the runtime is closed.
	ErrClosed = errors.New("ss: runtime closed")
	// ErrNotServer: the operation needs an accepted server stream.
	ErrNotServer = errors.New("ss: not an accepted server stream")
	// ErrNoCause is the Err of an UNREACHABLE whose transport ended the
	// attempt before CONNECTED without saying why.
	ErrNoCause = errors.New("ss: the attempt ended before CONNECTED (no cause reported)")
	// ErrStreamTimeout is wrapped by *TimeoutError, TIMEOUT's Err.
	ErrStreamTimeout = errors.New("ss: stream timeout expired")
)

// errClosedStream is returned by a stream's methods after its runtime
// closed.
var errClosedStream error = closedStreamError{}

type closedStreamError struct{}

func (closedStreamError) Error() string { return "ss: runtime closed (stream destroyed)" }

// Is makes errors.Is true for ErrClosed and ErrDestroyed.
func (closedStreamError) Is(target error) bool { return target == ErrClosed || target == ErrDestroyed }

// TimeoutError is the Err of a TIMEOUT event: the stream timeout armed with
// StartTimeout expired (docs/streams.md §8). It wraps ErrStreamTimeout.
type TimeoutError struct {
	// After is the duration that was armed.
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return ErrStreamTimeout.Error() + " after " + e.After.String()
}

// Unwrap returns ErrStreamTimeout.
func (e *TimeoutError) Unwrap() error { return ErrStreamTimeout }
