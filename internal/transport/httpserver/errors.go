package httpserver

import "errors"

// Sentinel errors. Listen errors wrap ErrListen or ErrNotListening. A Serve
// Result error is nil (the peer ended the connection normally), ctx.Err()
// (the stream was destroyed), an error wrapping ErrConnClosed or
// ErrSubprotocol, or the ws pump's error after an upgrade.
var (
	// ErrListen is wrapped by every Listen failure.
	ErrListen = errors.New("ss: httpserver: cannot listen")
	// ErrNotListening is wrapped when a "!name" streamtype asks for the
	// listener of a server streamtype that is not listening.
	ErrNotListening = errors.New("ss: httpserver: shared listener is not open")
	// ErrConnClosed is the Result error of an accepted stream whose
	// connection (or h2 stream) ended before the transaction completed.
	ErrConnClosed = errors.New("ss: httpserver: connection closed")
	// ErrSubprotocol is the Result error of an accepted stream whose
	// websocket upgrade asked for a subprotocol other than ws_subprotocol.
	ErrSubprotocol = errors.New("ss: httpserver: websocket subprotocol refused")
)
