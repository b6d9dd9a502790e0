// Package ws is the WebSocket protocol adapter (streams.md §11.6), built on
// gorilla/websocket.
package ws

import (
	"context"
	"errors"

	"github.com/gorilla/websocket"

	"github.com/securestreams/ss/event"
	"github.com/securestreams/ss/transport"
)

// ErrFraming is wrapped by CheckFraming errors (tx SOM/EOM misuse).
var ErrFraming = errors.New("ss: ws framing")

// CheckFraming validates one tx chunk's flags against the message state:
// open says whether a message was started (SOM) and not yet finished (EOM).
// SOM while a message is open, or a continuation (no SOM) with none open, is
// refused. It returns nil when the chunk is acceptable.
func CheckFraming(open bool, flags event.Flags) error {
	som := flags&event.SOM != 0
	if som && open {
		return errors.Join(ErrFraming, errors.New("SOM while a message is still open"))
	}
	if !som && !open {
		return errors.Join(ErrFraming, errors.New("continuation with no message open"))
	}
	return nil
}

// RunConn pumps messages over an already-established WebSocket connection c
// until the connection ends or ctx is done, then closes c and returns.
//
// Used by the ws client after its handshake and by the HTTP server after a
// server-side upgrade. The caller has already reported CONNECTED (and
// captured handshake headers); RunConn reports nothing else about the
// connection state.
//
//   - rx: every text or binary message is delivered through sink.Rx as chunks
//     SOM … EOM (one SOM|EOM chunk unless the message is larger than the
//     chunk size, 64 KiB). Control frames are not delivered; pings are
//     answered with pongs, pongs call sink.ValidityConfirmed. Every received
//     data message also confirms validity.
//   - tx: chunks from a.Tx.Next, one chunk = one frame: SOM starts a TEXT
//     message (BINARY when a.Type.WSBinary), no SOM continues it, EOM sets
//     FIN. Chunks failing CheckFraming are logged and dropped.
//   - validity: when a.Type.Retry has SValidHup > 0, a PING is sent after
//     SValidPing seconds without confirmation, and the connection is closed
//     when SValidHup seconds pass without one (streams.md §7).
//   - end: ctx done → a close frame 1000 is sent, Result{Err: ctx.Err()}.
//     Peer close 1000 (or 1005, no status) → Result{} (Err nil). Any other
//     close code → Result{Err} naming code and reason (errors.As *CloseError).
//     Read/write failures → Result{Err}. When a.Type.Perf is set, RunConn
//     does not report perf: the caller does.
//
// RunConn takes ownership of c: it is closed when RunConn returns. Do not
// read or write c concurrently with RunConn.
func RunConn(ctx context.Context, c *websocket.Conn, a *transport.Attempt, sink transport.Sink) transport.Result {
	_ = c.Close()
	return transport.Result{Err: errors.New("ss: ws: RunConn not implemented yet")}
}
