package ss

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/securestreams/ss/actor"
	"github.com/securestreams/ss/internal/bound"
	"github.com/securestreams/ss/internal/stream"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// Server is a listening stream of a "server": true streamtype (docs/streams.md
// §10). Each accepted connection becomes a *Stream delivered on Accepted.
//
// The listener is an actor whose children are the accepted streams' actors
// (docs/supervision.md): closing the server stops it and so every accepted
// stream; an accepted stream whose actor fails is stopped (destroyed), as it
// cannot reconnect.
type Server struct {
	rt  *Runtime
	pol *policy.Policy
	st  *policy.Streamtype
	ln  transport.Listener

	pid     *actor.PID    // the listener actor
	inbox   *bound.Bound  // accepted connections on their way to the listener actor
	acc     chan *Stream  // accepted, not yet taken; capacity = the backlog bound
	stopped chan struct{} // closed when the listener actor has stopped
	rejects sync.WaitGroup

	live     atomic.Int32 // accepted stream actors alive (the listener's children)
	accepted atomic.Uint64
	rejected atomic.Uint64
	full     atomic.Bool // the backlog is full: logged once until it has room

	mu      sync.Mutex
	streams map[*stream.Stream]*Stream // accepted streams not yet ended
	closed  bool
	done    chan struct{}
	events  chan Event // the listening stream's states: CREATING, DESTROYING
}

// defaultAcceptBacklog is Config.AcceptBacklog's default.
const defaultAcceptBacklog = 64

// ServerStats are a Server's counters.
type ServerStats struct {
	Accepted uint64 // connections accepted and made streams
	Rejected uint64 // connections closed because the backlog was full (or the server closing)
	Backlog  int    // accepted streams waiting to be taken from Accepted
	Live     int    // accepted streams whose actor is alive
}

// Stats returns the server's counters.
func (srv *Server) Stats() ServerStats {
	return ServerStats{Accepted: srv.accepted.Load(), Rejected: srv.rejected.Load(),
		Backlog: len(srv.acc), Live: int(srv.live.Load())}
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
	backlog := rt.backlog
	if backlog <= 0 {
		backlog = defaultAcceptBacklog
	}
	srv := &Server{rt: rt, pol: pol, st: st, streams: map[*stream.Stream]*Stream{},
		inbox: bound.New(backlog), acc: make(chan *Stream, backlog),
		stopped: make(chan struct{}), done: make(chan struct{}), events: make(chan Event, 2)}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil, ErrClosed
	}
	rt.serving[srv] = struct{}{}
	rt.mu.Unlock()
	unserve := func() {
		rt.mu.Lock()
		delete(rt.serving, srv)
		rt.mu.Unlock()
	}
	// Accepted streams cannot reconnect: one whose actor fails is stopped.
	props := actor.Supervised(actor.PropsFromReceiver(&listenerActor{srv: srv}),
		actor.OneForOne(0, 0, actor.Always(actor.Stop)))
	srv.pid, err = rt.actors.Spawn(props, "ss-listener-")
	if err != nil {
		unserve()
		return nil, err
	}
	// The listener lives until Close, not until ctx is done.
	ln, err := sp.Listen(context.WithoutCancel(ctx), st, rt.env, srv.accept)
	if err != nil {
		rt.actors.Stop(srv.pid)
		<-srv.stopped
		unserve()
		return nil, err
	}
	srv.mu.Lock()
	srv.ln = ln
	srv.mu.Unlock()
	srv.events <- Event{Kind: StateEvent, State: Creating}
	return srv, nil
}

// accept is called by the listener for each accepted connection, on the
// transport's goroutine. It never waits for the application: when the
// backlog of streams not taken from Accepted is full the connection is
// closed at once.
func (srv *Server) accept(conn transport.ServerConn) {
	srv.mu.Lock() // Close's drain must see every message sent before it
	if srv.closed {
		srv.mu.Unlock()
		srv.rejected.Add(1)
		reject(conn, srv.st)
		return
	}
	if len(srv.acc)+srv.inbox.Len() >= cap(srv.acc) || !srv.inbox.TryTake() {
		srv.mu.Unlock()
		srv.backlogFull(conn)
		return
	}
	srv.rt.actors.Tell(srv.pid, acceptMsg{conn: conn})
	srv.mu.Unlock()
}

// backlogFull closes conn because the backlog is full (WARN once until the
// backlog has room again, DEBUG for each connection).
func (srv *Server) backlogFull(conn transport.ServerConn) {
	n := srv.rejected.Add(1)
	log := srv.rt.env.Logger
	if !srv.full.Swap(true) {
		log.Warn("ss: server backlog full: closing new connections until the application takes some from Accepted",
			"streamtype", srv.st.Name, "backlog", cap(srv.acc))
	}
	log.Debug("ss: connection closed: backlog full", "streamtype", srv.st.Name, "remote", conn.RemoteAddr(), "rejected", n)
	reject(conn, srv.st)
}

// listenerActor is the Server's actor; its children are the accepted
// streams' actors.
type listenerActor struct{ srv *Server }

type (
	acceptMsg struct{ conn transport.ServerConn }
	// drainMsg: Close waits until the messages sent before it are handled.
	drainMsg struct{ done chan struct{} }
)

// Receive is the listener actor's behaviour.
func (la *listenerActor) Receive(c actor.Context) {
	srv := la.srv
	switch m := c.Message().(type) {
	case acceptMsg:
		srv.inbox.Give()
		srv.spawn(c, m.conn)
	case drainMsg:
		close(m.done)
	case *actor.Terminated:
		srv.live.Add(-1)
	case *actor.Stopped:
		srv.rt.actors.Forget(c.Self())
		close(srv.stopped)
	}
}

// spawn makes conn an accepted stream whose actor is a child of the
// listener actor, and queues it for Accepted.
func (srv *Server) spawn(c actor.Context, conn transport.ServerConn) {
	srv.mu.Lock()
	closed := srv.closed
	srv.mu.Unlock()
	if closed || len(srv.acc) == cap(srv.acc) {
		// Closing, or the backlog filled up between accept's check and now:
		// close it off the actor (reject may wait for the transport).
		srv.rejects.Add(1)
		go func() {
			defer srv.rejects.Done()
			if closed {
				srv.rejected.Add(1)
				reject(conn, srv.st)
			} else {
				srv.backlogFull(conn)
			}
		}()
		return
	}
	cfg := stream.Config{Policy: srv.pol, Type: srv.st, Conn: conn, OnEnd: srv.ended,
		CheckMetadata: metadataCheck(serverMetadataChecks, srv.st)}
	if srv.st.WSSubprotocol != "" {
		// A websocket upgrade makes the stream follow the ws tx rules.
		cfg.UpgradeFraming = txFraming[policy.WS]
	}
	s, props, err := stream.NewProps(srv.rt.host, cfg)
	if err == nil {
		if _, err = actor.SpawnChild(c, props, "ssa-"); err != nil {
			// Not spawned: the runtime's Close ends it (CREATING, DESTROYING).
			srv.rt.env.Logger.Warn("ss: accepted stream not started", "streamtype", srv.st.Name, "err", err)
			return
		}
	}
	if err != nil {
		srv.rt.env.Logger.Warn("ss: accepted connection dropped", "streamtype", srv.st.Name, "remote", conn.RemoteAddr(), "err", err)
		srv.rejects.Add(1)
		go func() {
			defer srv.rejects.Done()
			reject(conn, srv.st)
		}()
		return
	}
	srv.live.Add(1)
	srv.accepted.Add(1)
	ws := &Stream{s: s}
	srv.mu.Lock()
	srv.streams[s] = ws
	srv.mu.Unlock()
	srv.acc <- ws // never blocks: only this actor sends, and there was room
	if len(srv.acc) < cap(srv.acc) {
		srv.full.Store(false)
	}
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

func (srv *Server) ended(s *stream.Stream) {
	srv.mu.Lock()
	delete(srv.streams, s)
	srv.mu.Unlock()
}

// Accepted delivers each accepted connection as a stream (CREATING,
// CONNECTING, then the protocol's states; docs/streams.md §10.2), in accept
// order. At most Config.AcceptBacklog streams wait in it; while it is full,
// new connections are closed at once (docs/supervision.md). It is closed
// when the server is closed; streams that were never taken from it are
// destroyed by Close and not delivered.
func (srv *Server) Accepted() <-chan *Stream { return srv.acc }

// Events returns the listening stream's event channel (docs/streams.md §10.1):
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
	list := make([]*Stream, 0, len(srv.streams))
	for _, s := range srv.streams {
		list = append(list, s)
	}
	srv.mu.Unlock()
	for _, s := range list {
		f(s)
	}
}

// Close closes the listener, destroys every accepted stream (waiting until
// each has queued DESTROYING), stops the listener actor and closes
// Accepted. Idempotent.
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
	// Connections accepted before closed was set are handled (refused)
	// before this returns; none are accepted after.
	drained := make(chan struct{})
	srv.rt.actors.Tell(srv.pid, drainMsg{done: drained})
	select {
	case <-drained:
	case <-srv.stopped: // stopped by the actor system's shutdown
	}
	// Streams never taken from Accepted are not delivered: nobody will read
	// their events, so they are discarded here.
	var readers sync.WaitGroup
	for len(srv.acc) > 0 {
		s := <-srv.acc
		readers.Go(func() {
			for range s.Events() {
			}
		})
	}
	srv.mu.Lock()
	list := make([]*Stream, 0, len(srv.streams))
	for _, s := range srv.streams {
		list = append(list, s)
	}
	srv.mu.Unlock()
	for _, s := range list {
		if err := s.Destroy(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// Stopping the listener actor stops its children (every accepted
	// stream) first; none of them waits for the network to stop.
	srv.rt.actors.Stop(srv.pid)
	<-srv.stopped
	srv.rejects.Wait()
	readers.Wait()
	close(srv.acc)
	srv.rt.mu.Lock()
	delete(srv.rt.serving, srv)
	srv.rt.mu.Unlock()
	srv.events <- Event{Kind: StateEvent, State: Destroying}
	close(srv.events)
	close(srv.done)
	return errors.Join(errs...)
}
