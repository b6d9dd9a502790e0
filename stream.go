package ss

import (
	"context"
	"time"

	"github.com/securestreams/ss/internal/stream"
)

// Stream is one stream: a client stream from Runtime.Create or an accepted
// server stream from Server.Accepted. Every method is safe from any
// goroutine, including the one ranging over Events. After Destroy every
// operation returns ErrDestroyed (Destroy itself returns nil); after the
// runtime's Close it returns an error matching both ErrClosed and
// ErrDestroyed. Methods that can block (Send, Write, Destroy) take a ctx;
// the others never block and take none (docs/stream-states.md).
type Stream struct {
	s  *stream.Stream
	px *proxied // proxied streams only (Config.Proxy)
}

// Streamtype returns the name of the stream's streamtype.
func (s *Stream) Streamtype() string { return s.s.Type().Name }

// PayloadFormat returns the streamtype's payload_fmt.
func (s *Stream) PayloadFormat() string { return s.s.PayloadFormat() }

// Rideshare returns the streamtype whose data is currently being sent in a
// rideshare chain (docs/streams.md §11.2.6); the stream's own streamtype outside
// one.
func (s *Stream) Rideshare() string { return s.s.Rideshare() }

// StreamStats are a stream's counters, for metrics (Stream.Stats).
//
//	type StreamStats struct {
//		Attempts  uint32 // connection attempts started
//		Failures  uint32 // current consecutive failures (the backoff counter)
//		RxBytes   uint64 // payload bytes received
//		TxBytes   uint64 // payload bytes queued for transmission
//		LastError error  // cause of the last failed attempt or lost connection (nil: none yet; a success does not clear it)
//	}
type StreamStats = stream.Stats

// Stats returns the stream's counters: attempts, the current consecutive
// failure count, payload bytes received and queued for transmission.
func (s *Stream) Stats() StreamStats { return s.s.Stats() }

// Accepted reports whether s is an accepted server stream.
func (s *Stream) Accepted() bool { return s.s.Accepted() }

// Send transmits p as one whole message (flags SOM|EOM, length len(p)). It
// copies p, queues it and returns; it connects an idle stream (POLL,
// CONNECTING) and blocks while the stream's transmit queue is full
// (backpressure) or until ctx is done. A ctx already done transmits nothing
// and returns its error. raw streams write the bytes as-is.
func (s *Stream) Send(ctx context.Context, p []byte) error { return s.s.Send(ctx, p) }

// Write transmits one fragment of a message with payload flags: SOM on the
// first fragment, EOM on the last (docs/streams.md §4). It copies p and blocks
// like Send. Announce the message length first with SetTxLen when it is
// known (HTTP Content-Length). On ws streams each chunk is one frame, and a
// chunk that breaks the message framing (SOM while a message is open, or no
// SOM while none is) is refused: it is not queued and the error wraps
// ErrFraming (docs/ws.md); Send is refused likewise while a
// message started with Write is open.
func (s *Stream) Write(ctx context.Context, p []byte, flags Flags) error {
	return s.s.Write(ctx, p, flags)
}

// SetTxLen announces n as the total length of the next message or body and
// asks for transmission (RequestTxLen).
func (s *Stream) SetTxLen(n int64) error { return s.s.RequestTxLen(n) }

// RequestTx asks for a transmit opportunity: an idle stream starts an attempt
// (POLL, CONNECTING); during an attempt or a pending retry the request is
// remembered (docs/streams.md §5.2). Every request is honoured once, whenever it
// arrives: one made while a connection is ending (an HTTP transaction after
// its CONNECTED, right after Disconnect, before ALL_RETRIES_FAILED) starts a
// new attempt as soon as the stream is idle; requests made before an
// attempt's CONNECTED are served by it, and on raw, ws and mqtt a request
// made while connected is served by that connection. It never blocks.
func (s *Stream) RequestTx() error { return s.s.RequestTx() }

// Connect starts an attempt now if the stream is idle or waiting for a
// retry, resetting the failure counter (docs/streams.md §5.2); it does nothing
// while connected or connecting. It returns without waiting for the
// outcome, which arrives as states.
func (s *Stream) Connect() error { return s.s.Connect() }

// Disconnect closes the connection, aborts the running attempt or cancels a
// pending retry, and leaves the stream idle: no reconnection (docs/streams.md
// §5.6). DISCONNECTED follows on the event channel when a connection or
// attempt was running. It never blocks.
func (s *Stream) Disconnect() error { return s.s.Disconnect() }

// SetMetadata sets a declared metadata value (or, on direct_proto_str
// streamtypes, a raw header "name:"). Values survive reconnections; they
// are substituted at the next attempt (docs/streams.md §9).
func (s *Stream) SetMetadata(name, value string) error {
	if s.px != nil {
		return s.px.setMetadata(name, value)
	}
	return s.s.SetMetadata(name, value)
}

// Metadata returns the value of a metadata item and whether it is set: the
// later of what the application set and what the peer sent (a captured
// response header, a server request field); requests always send what the
// application set (docs/streams.md §9.2). An undeclared name gives "", false.
func (s *Stream) Metadata(name string) (string, bool) {
	if s.px != nil {
		return s.px.cs.Metadata(name)
	}
	v, ok, _ := s.s.Metadata(name)
	return v, ok
}

// StartTimeout arms the stream timeout (docs/streams.md §8): d > 0 arms d; 0 uses
// the streamtype's timeout_ms (nothing when that is 0). Starting again
// replaces it. On expiry TIMEOUT is emitted and nothing else happens.
func (s *Stream) StartTimeout(d time.Duration) error { return s.s.StartTimeout(d) }

// CancelTimeout cancels the stream timeout.
func (s *Stream) CancelTimeout() error { return s.s.CancelTimeout() }

// ValidityConfirmed tells the stream its connection is proven alive
// (docs/streams.md §7).
func (s *Stream) ValidityConfirmed() { s.s.ValidityConfirmed() }

// Respond sets the status of the current server transaction on an accepted
// HTTP stream (0 means 200; no call means 404). Response metadata is set
// with SetMetadata, the body with SetTxLen and Send/Write. It never blocks.
func (s *Stream) Respond(status int) error { return s.s.Respond(status) }

// Recv returns the stream's next event, the one Events would give next,
// waiting until there is one or ctx is done (then ctx.Err(), and no event
// is lost: the next Recv returns it). It is the pull form of Events: the
// first call switches the stream to pull mode for good (no goroutine
// delivers its events from then on; do not read Events as well, though
// the channel still closes after DESTROYING). After DESTROYING was
// returned Recv returns io.EOF; after the runtime's Close gave up on the
// stream, ErrClosed. One Recv at a time: a concurrent call returns
// ErrRecvBusy.
//
// On a raw stream over a plain socket (no TLS), Recv with nothing queued
// reads the socket itself on the calling goroutine, with no goroutine
// hand-off: the socket is then read only inside Recv, as a net.Conn is,
// so a peer closing is seen at the next Recv and what is received waits
// in the socket until the application asks (docs/streams.md, "Recv").
func (s *Stream) Recv(ctx context.Context) (Event, error) { return s.s.Recv(ctx) }

// Destroy ends the stream (docs/streams.md §5.7): a connection is closed
// (DISCONNECTED), timers are cancelled, DESTROYING is emitted and the event
// channel closes after it. Destroy waits until DESTROYING is queued (not
// delivered: it may be called while handling events) or ctx is done; it
// never fails because of ctx: the stream is being destroyed either way and
// Destroy returns nil. Calling it again returns nil.
func (s *Stream) Destroy(ctx context.Context) error { return s.s.Destroy(ctx) }
