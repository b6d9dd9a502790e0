package stream

import "errors"

// Errors returned by stream operations. The root package ss re-exports them.
var (
	// ErrDestroyed: the stream has been destroyed.
	ErrDestroyed = errors.New("ss: stream destroyed")
	// ErrUndeclaredMetadata: the name is not declared by the streamtype (and
	// is not a "name:" header on a direct_proto_str streamtype).
	ErrUndeclaredMetadata = errors.New("ss: undeclared metadata")
	// ErrValidityTimeout is the cancel cause of an attempt whose connection
	// failed its validity check (streams.md §7).
	ErrValidityTimeout = errors.New("ss: connection validity timeout")
	// ErrDisconnect is the cancel cause of an attempt ended by Disconnect.
	ErrDisconnect = errors.New("ss: disconnect requested")
	// ErrClosed: the runtime is closed.
	ErrClosed = errors.New("ss: runtime closed")
	// ErrNotServer: the operation needs an accepted server stream.
	ErrNotServer = errors.New("ss: not an accepted server stream")
)
