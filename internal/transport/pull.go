package transport

import (
	"errors"

	"github.com/securestreams/ss/internal/event"
)

// ErrInterrupted is what PullReader.Read returns when Interrupt stopped it
// before anything was read.
var ErrInterrupted = errors.New("ss: pull read interrupted")

// PullOfferer is implemented by the Sink of a stream that can read its
// connection on the application's goroutine (Stream.Recv). A transport
// whose connection can be read that way (a plain socket) offers its read
// role once connected with OfferPull(r) and withdraws it with
// OfferPull(nil) before Run returns. The stream takes the role (r.Take)
// only once the application has switched the stream to pull mode; until
// then the transport's reader goroutine reads as usual.
type PullOfferer interface {
	OfferPull(r PullReader)
}

// PullReader is a connection's read role as a transport hands it to the
// stream (PullOfferer). Exactly one party reads the connection at a time:
// the transport's reader goroutine until Take, then Read's callers, one at
// a time.
type PullReader interface {
	// Take asks the reader goroutine to give up the role: it is woken once
	// (a read deadline in the past), queues what it had read and then only
	// waits for the end of the connection, which Read reports. Ready is
	// closed once it has stopped reading. Called at most once; it does not
	// block.
	Take()
	// Ready is closed once Take has taken effect (or the connection has
	// ended): from then on Read may be called.
	Ready() <-chan struct{}
	// Read waits on the caller's goroutine until the connection has data
	// and returns it (a buffer the caller owns), or ErrInterrupted after
	// Interrupt, or the end of the connection: io.EOF when the peer closed
	// it, another error when it failed or was closed. After an end the
	// connection is over (the transport's Run returns) and Read returns
	// the same end again.
	Read() ([]byte, error)
	// Interrupt makes the Read under way, or the next one, return
	// ErrInterrupted (a read deadline of now). It does not block.
	Interrupt()
	// Resume clears an Interrupt, so that the next Read waits again.
	Resume()
}

// FramedPullReader is a PullReader whose reads are parts of messages (a ws
// connection): the stream reads with ReadFramed, which also gives the
// chunk's SOM/EOM flags as the transport's Sink.Rx would have, instead of
// Read. An empty chunk with flags is data too (an empty message).
type FramedPullReader interface {
	PullReader
	ReadFramed() ([]byte, event.Flags, error)
}
