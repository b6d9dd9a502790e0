// Package raw is the raw transport (streams.md §11.7): a TCP or unix socket,
// with TLS when the streamtype says so, carrying an ordered byte stream with
// no message boundaries. The client is a transport.Protocol; the server a
// transport.ServerProtocol (§10.2).
package raw

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/securestreams/ss/event"
	"github.com/securestreams/ss/transport"
)

// readSize is the read buffer size. A read that fills at least half of it
// hands the buffer itself to the stream; a shorter one is copied out so the
// buffer can be reused.
const readSize = 64 << 10

// Client is the raw client protocol.
type Client struct {
	env *transport.Env
}

// New returns the raw client protocol.
func New(env *transport.Env) transport.Protocol { return &Client{env: env} }

// Run implements transport.Protocol: dial (unix, TCP, TLS), CONNECTED, then
// move bytes both ways until either side closes or ctx is cancelled.
func (c *Client) Run(ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
	var timing transport.Timing
	ep, err := transport.ResolveEndpoint(a)
	if err != nil {
		c.perf(a, sink, &timing)
		return transport.Result{Err: err}
	}
	env := a.Env
	if env == nil {
		env = c.env
	}
	dctx, cancel := context.WithTimeout(ctx, env.ConnectTimeout)
	conn, err := transport.Dial(dctx, a, ep, transport.DialOptions{}, &timing)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		c.perf(a, sink, &timing)
		return transport.Result{Err: err}
	}
	sink.State(event.Connected, 0)
	sink.ValidityConfirmed()
	err = Pipe(ctx, conn, a.Tx, sink)
	c.perf(a, sink, &timing)
	return transport.Result{Err: err}
}

func (c *Client) perf(a *transport.Attempt, sink transport.Sink, t *transport.Timing) {
	if a.Type.Perf {
		_ = sink.Rx(context.Background(), transport.PerfReport(t, 0, -1), event.SOM|event.EOM|event.PerfJSON)
	}
}

// Close implements transport.Protocol.
func (c *Client) Close(context.Context) error { return nil }

// batcher is implemented by the stream's transmit queue: all queued chunks
// at once, for one writev, and Release to recycle their buffers once
// written.
type batcher interface {
	NextBatch(ctx context.Context, dst []transport.Chunk) ([]transport.Chunk, error)
	Release(chunks []transport.Chunk)
}

// Pipe moves bytes between conn and the stream until the peer closes (nil),
// an I/O error, or ctx is done (its cause). It closes conn.
func Pipe(parent context.Context, conn net.Conn, tx transport.TxSource, sink transport.Sink) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := writeLoop(ctx, conn, tx)
		if ctx.Err() == nil {
			werr = err
			cancel()
		}
	}()
	rerr := readLoop(ctx, conn, sink)
	cancel()
	<-done
	conn.Close()
	switch {
	case parent.Err() != nil:
		return context.Cause(parent)
	case werr != nil:
		return werr
	}
	return rerr
}

func readLoop(ctx context.Context, conn net.Conn, sink transport.Sink) error {
	buf := make([]byte, readSize)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			var data []byte
			if n >= readSize/2 {
				data = buf[:n:n]
				buf = make([]byte, readSize)
			} else {
				data = make([]byte, n)
				copy(data, buf[:n])
			}
			if rerr := sink.Rx(ctx, data, 0); rerr != nil {
				return rerr
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func writeLoop(ctx context.Context, conn net.Conn, tx transport.TxSource) error {
	if b, ok := tx.(batcher); ok {
		var chunks []transport.Chunk
		var bufs net.Buffers
		for {
			var err error
			chunks, err = b.NextBatch(ctx, chunks[:0])
			if err != nil {
				return err
			}
			if len(chunks) == 1 {
				if _, err := conn.Write(chunks[0].Data); err != nil {
					return err
				}
			} else {
				bufs = bufs[:0]
				for i := range chunks {
					bufs = append(bufs, chunks[i].Data)
				}
				if _, err := bufs.WriteTo(conn); err != nil {
					return err
				}
				clear(bufs[:cap(bufs)])
			}
			b.Release(chunks)
			clear(chunks)
		}
	}
	for {
		c, err := tx.Next(ctx)
		if err != nil {
			return err
		}
		if _, err := conn.Write(c.Data); err != nil {
			return err
		}
	}
}
