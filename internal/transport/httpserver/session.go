package httpserver

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/securestreams/ss/internal/transport"
)

// session is one accepted stream's connection: a whole h1 connection (all
// its keep-alive requests, or its websocket after an upgrade) or one h2
// stream. It is the transport.ServerConn handed to the runtime.
//
// Requests are handled on net/http's goroutine for the connection (h1) or the
// stream (h2); Serve only publishes the stream's sink and waits until the
// connection is over, so every Sink call happens between Serve's start and
// its return.
type session struct {
	l     *listener
	conn  net.Conn // the h1 connection, or the h2 connection carrying the stream
	h2    bool
	route *route // set once by bind, before the first request is handled

	started chan struct{} // closed by Serve once ctx, a and sink are set
	ctx     context.Context
	a       *transport.Attempt
	sink    transport.Sink

	done     chan struct{} // closed when the connection (h2: the stream) is over
	doneOnce sync.Once
	hijacked atomic.Bool

	mu   sync.Mutex
	err  error
	busy bool                     // a handler is between enter and leave (may call sink)
	idle chan struct{}            // closed by leave when Serve waits for !busy
	rc   *http.ResponseController // the request being handled (h2 abort)

	// Request-handler state (h1 requests are handled one at a time).
	txns int             // transactions and upgrades seen
	prev map[string]bool // metadata names the previous request set
}

var _ transport.ServerConn = (*session)(nil)

func newSession(l *listener, c net.Conn, h2 bool) *session {
	return &session{l: l, conn: c, h2: h2, started: make(chan struct{}), done: make(chan struct{})}
}

// bind attaches the session to the streamtype that serves it and hands it
// to the runtime, which creates the accepted stream and calls Serve.
func (s *session) bind(r *route) {
	s.route = r
	r.accept(s)
}

// RemoteAddr is the peer's address.
func (s *session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// Serve runs the accepted stream's side of the connection until it ends or
// ctx is cancelled (the stream was destroyed): then an h1 connection is
// closed, an h2 stream is reset, and an upgraded websocket is closed by the
// ws pump. It returns once nothing will call sink any more. Serve may be
// called from inside the accept func with a cancelled ctx (a runtime
// refusing the connection): it closes the connection and returns at once.
func (s *session) Serve(ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
	s.ctx, s.a, s.sink = ctx, a, sink
	close(s.started)
	select {
	case <-s.done:
	case <-ctx.Done():
		s.abort()
		s.waitIdle()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.err
	if err == nil {
		err = ctx.Err()
	}
	return transport.Result{Err: err}
}

// enter marks a handler as working for the stream (it may call the sink
// until leave); false when the stream is already destroyed.
func (s *session) enter(rc *http.ResponseController) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.busy, s.rc = true, rc
	return true
}

func (s *session) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy, s.rc = false, nil
	if s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// waitIdle waits until no handler is working for the stream.
func (s *session) waitIdle() {
	for {
		s.mu.Lock()
		if !s.busy {
			s.mu.Unlock()
			return
		}
		if s.idle == nil {
			s.idle = make(chan struct{})
		}
		idle := s.idle
		s.mu.Unlock()
		select {
		case <-idle:
		case <-s.done:
			return
		}
	}
}

// abort ends the connection on behalf of a destroyed stream.
func (s *session) abort() {
	if s.hijacked.Load() {
		return // ws.RunConn watches the stream's ctx and closes with 1000
	}
	if !s.h2 {
		_ = s.conn.Close()
		return
	}
	s.mu.Lock()
	rc := s.rc
	s.mu.Unlock()
	if rc != nil {
		// Unblocks a body read and resets the h2 stream.
		now := time.Now()
		_ = rc.SetReadDeadline(now)
		_ = rc.SetWriteDeadline(now)
	}
}

// finish marks the connection (h2: the stream) as over.
func (s *session) finish() { s.doneOnce.Do(func() { close(s.done) }) }

// fail records why the connection ended (the first reason wins).
func (s *session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// waitStarted waits until the runtime has called Serve; false when the
// request or the listener went away first.
func (s *session) waitStarted(r *http.Request) bool {
	select {
	case <-s.started:
		return true
	case <-r.Context().Done():
		return false
	case <-s.l.closed:
		return false
	}
}

// serveHTTP is the http.Server handler for every request on the listener.
func (l *listener) serveHTTP(w http.ResponseWriter, r *http.Request) {
	info, _ := r.Context().Value(connKey{}).(*connInfo)
	if info == nil {
		panic(http.ErrAbortHandler)
	}
	if info.s != nil {
		s := info.s
		if s.route == nil {
			s.bind(l.routeFor(r))
		}
		s.handle(w, r)
		return
	}
	// h2: every stream is an accepted stream of its own.
	s := newSession(l, info.conn, true)
	defer s.finish()
	s.bind(l.routeFor(r))
	s.handle(w, r)
}

// handle runs one request on behalf of the session's stream. It panics with
// http.ErrAbortHandler to close the connection (h2: reset the stream)
// without a response.
func (s *session) handle(w http.ResponseWriter, r *http.Request) {
	if !s.waitStarted(r) {
		s.fail(ErrConnClosed)
		panic(http.ErrAbortHandler)
	}
	if !s.enter(http.NewResponseController(w)) {
		s.fail(s.ctx.Err())
		panic(http.ErrAbortHandler)
	}
	defer s.leave()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if !s.h2 && s.a.Type.WSSubprotocol != "" && isUpgrade(r) {
		s.upgrade(w, r)
		return
	}
	if err := s.transaction(ctx, w, r); err != nil {
		if s.ctx.Err() != nil {
			err = s.ctx.Err()
		}
		s.fail(err)
		panic(http.ErrAbortHandler)
	}
}
