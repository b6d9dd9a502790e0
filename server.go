package ss

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/securestreams/ss/policy"
	"github.com/securestreams/ss/stream"
	"github.com/securestreams/ss/transport"
)

// Server is a listening stream of a "server": true streamtype (streams.md
// §10). Each accepted connection becomes a *Stream delivered on Accepted.
type Server struct {
	rt  *Runtime
	pol *policy.Policy
	st  *policy.Streamtype
	ln  transport.Listener

	mu      sync.Mutex
	live    map[*stream.Stream]*Stream
	fifo    []*Stream
	pumping bool
	closed  bool
	acc     chan *Stream
	stop    chan struct{}
	pumpWG  sync.WaitGroup
	done    chan struct{}
	events  chan Event // the listening stream's states: CREATING, DESTROYING
}

// Serve opens the listener of the named server streamtype (TCP on
// endpoint:port, a unix socket for "+path" / "+@name", TLS from
// server_cert/server_key when tls is set). Failure to listen is an error.
func (rt *Runtime) Serve(ctx context.Context, streamtype string, opts ...Option) (*Server, error) {
	if err := rt.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pol, st, err := rt.streamtype(streamtype)
	if err != nil {
		return nil, err
	}
	if !st.Server {
		return nil, fmt.Errorf("%w: %q is not a server streamtype", ErrServerStreamtype, streamtype)
	}
	if _, err := applyOptions(opts); err != nil {
		return nil, err
	}
	sp, err := rt.serverProtocol(st.Protocol)
	if err != nil {
		return nil, fmt.Errorf("ss: streamtype %q: %w", streamtype, err)
	}
	srv := &Server{rt: rt, pol: pol, st: st, live: map[*stream.Stream]*Stream{},
		acc: make(chan *Stream), stop: make(chan struct{}), done: make(chan struct{}),
		events: make(chan Event, 2)}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil, ErrClosed
	}
	rt.serving[srv] = struct{}{}
	rt.mu.Unlock()
	// The listener lives until Close, not until ctx is done.
	ln, err := sp.Listen(context.WithoutCancel(ctx), st, rt.env, srv.accept)
	if err != nil {
		rt.mu.Lock()
		delete(rt.serving, srv)
		rt.mu.Unlock()
		return nil, err
	}
	srv.mu.Lock()
	srv.ln = ln
	srv.mu.Unlock()
	srv.events <- Event{Kind: StateEvent, State: Creating}
	return srv, nil
}

// accept is called by the listener for each accepted connection.
func (srv *Server) accept(conn transport.ServerConn) {
	srv.mu.Lock()
	closed := srv.closed
	srv.mu.Unlock()
	if closed {
		reject(conn, srv.st)
		return
	}
	cfg := stream.Config{Policy: srv.pol, Type: srv.st, Conn: conn, OnEnd: srv.ended,
		CheckMetadata: metadataCheck(serverMetadataChecks, srv.st)}
	if srv.st.WSSubprotocol != "" {
		// A websocket upgrade makes the stream follow the ws tx rules.
		cfg.UpgradeFraming = txFraming[policy.WS]
	}
	s, err := stream.New(srv.rt.host, cfg)
	if err != nil {
		srv.rt.env.Logger.Warn("ss: accepted connection dropped", "streamtype", srv.st.Name, "remote", conn.RemoteAddr(), "err", err)
		reject(conn, srv.st)
		return
	}
	ws := &Stream{s: s}
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		_ = s.Destroy(context.Background())
		return
	}
	srv.live[s] = ws
	srv.fifo = append(srv.fifo, ws)
	if !srv.pumping {
		srv.pumping = true
		srv.pumpWG.Add(1)
		go srv.pump()
	}
	srv.mu.Unlock()
}

// reject closes a connection the runtime will not serve: Serve with a
// cancelled context, a sink that discards everything and an empty tx queue.
func reject(conn transport.ServerConn, st *policy.Streamtype) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = conn.Serve(ctx, &transport.Attempt{Type: st, Tx: nopTx{}}, nopSink{})
}

type nopSink struct{}

func (nopSink) State(State, uint32)                     {}
func (nopSink) SetMetadata(string, string)              {}
func (nopSink) Rx(context.Context, []byte, Flags) error { return ErrDestroyed }
func (nopSink) ValidityConfirmed()                      {}
func (nopSink) Logger() *slog.Logger                    { return slog.New(slog.DiscardHandler) }

type nopTx struct{}

func (nopTx) Next(ctx context.Context) (transport.Chunk, error) {
	return transport.Chunk{}, ErrDestroyed
}
func (nopTx) Pending() bool                { return false }
func (nopTx) LenHint() int64               { return -1 }
func (nopTx) Response() transport.Response { return transport.Response{} }
func (nopTx) NewTransaction()              {}

// pump hands accepted streams to the application, in accept order, without
// blocking the listener; it runs only while some are waiting.
func (srv *Server) pump() {
	defer srv.pumpWG.Done()
	for {
		srv.mu.Lock()
		if len(srv.fifo) == 0 || srv.closed {
			srv.pumping = false
			srv.fifo = nil
			srv.mu.Unlock()
			return
		}
		s := srv.fifo[0]
		srv.fifo = srv.fifo[1:]
		srv.mu.Unlock()
		select {
		case srv.acc <- s:
		case <-srv.stop:
			return
		}
	}
}

func (srv *Server) ended(s *stream.Stream) {
	srv.mu.Lock()
	delete(srv.live, s)
	srv.mu.Unlock()
}

// Accepted delivers each accepted connection as a stream (CREATING,
// CONNECTING, then the protocol's states; streams.md §10.2). It is closed
// when the server is closed. Streams that were never taken from it are
// still running and are destroyed by Close.
func (srv *Server) Accepted() <-chan *Stream { return srv.acc }

// Events returns the listening stream's event channel (streams.md §10.1):
// CREATING, which is there when Serve returns, and nothing else until the
// server is closed; then DESTROYING, after the accepted streams have been
// destroyed, and the channel is closed. It never blocks the server: reading
// it is optional. Accepted streams have their own channels.
func (srv *Server) Events() <-chan Event { return srv.events }

// Addr returns the listening address (useful with port 0).
func (srv *Server) Addr() net.Addr {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.ln == nil {
		return nil
	}
	return srv.ln.Addr()
}

// Streamtype returns the server's streamtype name.
func (srv *Server) Streamtype() string { return srv.st.Name }

// ForEachAccepted calls f for every live accepted stream (for example to
// broadcast). f may call any Stream method.
func (srv *Server) ForEachAccepted(f func(*Stream)) {
	srv.mu.Lock()
	list := make([]*Stream, 0, len(srv.live))
	for _, s := range srv.live {
		list = append(list, s)
	}
	srv.mu.Unlock()
	for _, s := range list {
		f(s)
	}
}

// Close closes the listener, destroys every accepted stream (waiting until
// each has queued DESTROYING) and closes Accepted. Idempotent.
func (srv *Server) Close(ctx context.Context) error {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		select {
		case <-srv.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	srv.closed = true
	ln := srv.ln
	srv.mu.Unlock()
	var errs []error
	if ln != nil {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	srv.mu.Lock()
	list := make([]*Stream, 0, len(srv.live))
	for _, s := range srv.live {
		list = append(list, s)
	}
	srv.mu.Unlock()
	for _, s := range list {
		if err := s.Destroy(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	close(srv.stop)
	srv.pumpWG.Wait()
	close(srv.acc)
	srv.rt.mu.Lock()
	delete(srv.rt.serving, srv)
	srv.rt.mu.Unlock()
	srv.events <- Event{Kind: StateEvent, State: Destroying}
	close(srv.events)
	close(srv.done)
	return errors.Join(errs...)
}

// Destroy is Close (streams.md §10.1: destroying the listening stream).
func (srv *Server) Destroy(ctx context.Context) error { return srv.Close(ctx) }
