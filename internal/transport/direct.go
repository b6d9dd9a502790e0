package transport

import "github.com/securestreams/ss/internal/event"

// DirectTx is implemented by the stream's transmit queue (a TxSource): a
// transport that can write without blocking (a plain socket) installs a
// DirectWriter, and from then on Send and Write hand their bytes to it from
// the sending goroutine while nothing is queued and no write is under way,
// instead of waking a writer goroutine (one goroutine hand-off less per
// message, and no writer goroutine parked on an idle connection). What the
// socket does not take at once, and what is sent while a write is under
// way, is queued; the transport's writer goroutine, started by
// StartWriter, writes it with TakeQueued until that returns nothing.
// Exactly one party writes at a time: the queue hands the role to a
// sending goroutine or to the writer goroutine, never to both.
type DirectTx interface {
	// SetDirect installs w (nil removes it, at the end of the connection;
	// chunks still queued stay for the next attempt). When chunks are
	// queued as w is installed, SetDirect starts w's writer for them.
	SetDirect(w DirectWriter)
	// TakeQueued appends every queued chunk to dst. When none is queued it
	// returns dst unchanged and gives the write role back: the writer
	// goroutine must then return (it is started again when needed).
	TakeQueued(dst []Chunk) []Chunk
	// Release hands back chunks completely written (their buffers are
	// reused).
	Release(chunks []Chunk)
}

// DirectWriter is the transport side of DirectTx.
type DirectWriter interface {
	// TryWrite writes what the connection takes now without waiting and
	// returns how much of p it took (flags are the chunk's SOM/EOM).
	// n < len(p) with a nil error means the connection would block, or the
	// transport declines to write this chunk directly (n == 0): the queue
	// keeps the rest (the whole chunk, flags unchanged, when n == 0) and
	// calls StartWriter. busy means the transport took p but still holds
	// bytes of it to write (a frame's tail): the queue keeps the write role
	// and calls StartWriter, whose goroutine writes them first. An error
	// means the connection has failed (the transport ends it); the queue
	// drops the chunk.
	TryWrite(p []byte, flags event.Flags) (n int, busy bool, err error)
	// StartWriter starts the goroutine that writes queued chunks
	// (TakeQueued) until none is left. The queue calls it with its lock
	// held: it must only start the goroutine.
	StartWriter()
}
