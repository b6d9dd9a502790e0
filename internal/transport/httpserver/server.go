package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// idleTimeout closes an h1 keep-alive connection (ending its accepted stream)
// or an h2 connection after this long without a request.
const idleTimeout = 60 * time.Second

// MaxHandshakes bounds the connections of one listener that are accepted
// but not yet handed to the HTTP server (TLS handshake in progress).
const MaxHandshakes = 128

// MaxH2Streams bounds the concurrent streams of one h2 connection
// (SETTINGS_MAX_CONCURRENT_STREAMS); each is an accepted stream.
const MaxH2Streams = 100

// Server is the h1/h2 transport.ServerProtocol of one runtime.
//
// Open listeners are registered by (Env, streamtype name), so that a
// streamtype whose endpoint is "!name" can share the listener of streamtype
// name even when the runtime made separate Server values for h1 and h2: they
// share the runtime's *transport.Env, which Listen receives.
type Server struct {
	env *transport.Env
}

// registry holds every open listener of the process, keyed by the Env
// passed to Listen (the runtime's) and the owner streamtype's name. A
// listener removes itself when it closes.
var registry = struct {
	sync.Mutex
	m map[registryKey]*listener
}{m: make(map[registryKey]*listener)}

type registryKey struct {
	scope any // the *transport.Env given to Listen, or the *Server when nil
	name  string
}

// New returns the h1/h2 server protocol. env may be nil (defaults apply).
func New(env *transport.Env) transport.ServerProtocol {
	if env == nil {
		env = transport.Env{}.Defaults()
	} else {
		env = env.Defaults()
	}
	return &Server{env: env}
}

// Listen opens the listener of the h1/h2 server streamtype st and calls
// accept for every accepted h1 connection and every h2 stream.
//
// A streamtype whose endpoint is "!name" does not open a socket: it joins the
// listener of server streamtype name, which must already be listening in this
// Server. On a shared listener, a websocket upgrade goes to the streamtype
// whose ws_subprotocol the client offers (first match in the client's order);
// every other request goes to the streamtype that owns the listener. Closing
// a sharer's Listener only stops routing to it; closing the owner's closes
// the socket for all.
func (s *Server) Listen(ctx context.Context, st *policy.Streamtype, env *transport.Env, accept func(transport.ServerConn)) (transport.Listener, error) {
	if st == nil || accept == nil {
		return nil, fmt.Errorf("%w: nil streamtype or accept func", ErrListen)
	}
	if st.Protocol != policy.H1 && st.Protocol != policy.H2 {
		return nil, fmt.Errorf("%w: streamtype %q: protocol %s is not served here (want h1 or h2)", ErrListen, st.Name, st.Protocol)
	}
	var scope any = env
	if env == nil {
		scope, env = s, s.env
	} else {
		env = env.Defaults()
	}
	r := &route{st: st, accept: accept, env: env}
	if owner, ok := sharedOwner(st); ok {
		return join(ctx, registryKey{scope, owner}, r)
	}

	key := registryKey{scope, st.Name}
	registry.Lock()
	if _, busy := registry.m[key]; busy {
		registry.Unlock()
		return nil, fmt.Errorf("%w: streamtype %q is already listening", ErrListen, st.Name)
	}
	// Reserve the name while the socket opens.
	registry.m[key] = nil
	registry.Unlock()

	l, err := openListener(st, env, r)
	registry.Lock()
	if err != nil {
		delete(registry.m, key)
	} else {
		registry.m[key] = l
		l.unregister = func() {
			registry.Lock()
			if registry.m[key] == l {
				delete(registry.m, key)
			}
			registry.Unlock()
		}
	}
	registry.Unlock()
	if err != nil {
		return nil, err
	}
	l.start(ctx)
	return l, nil
}

// sharedOwner returns the name of the server streamtype whose listener st
// shares, if its endpoint is "!name".
func sharedOwner(st *policy.Streamtype) (string, bool) {
	if st.ListenerOf != nil {
		return st.ListenerOf.Name, true
	}
	if name, ok := strings.CutPrefix(st.Endpoint, "!"); ok {
		return name, true
	}
	return "", false
}

// join adds r to the open listener registered under owner.
func join(ctx context.Context, owner registryKey, r *route) (transport.Listener, error) {
	registry.Lock()
	l := registry.m[owner]
	registry.Unlock()
	if l == nil {
		return nil, fmt.Errorf("%w: streamtype %q wants the listener of %q", ErrNotListening, r.st.Name, owner.name)
	}
	if err := l.addSharer(r); err != nil {
		return nil, err
	}
	h := &sharedHandle{l: l, r: r}
	stop := context.AfterFunc(ctx, func() { _ = h.Close() })
	h.mu.Lock()
	h.stop = stop
	h.mu.Unlock()
	return h, nil
}

// route is one streamtype served by a listener.
type route struct {
	st     *policy.Streamtype
	accept func(transport.ServerConn)
	env    *transport.Env
}

// listener is one open socket with its http.Server. It alone owns its
// connections; accepted sessions are handed to the runtime through the
// route's accept func.
type listener struct {
	owner   *route
	ln      net.Listener
	tlsConf *tls.Config // nil: plain TCP/unix
	hs      *http.Server
	log     *slog.Logger

	conns   chan net.Conn // handshaken connections for hs.Serve
	closed  chan struct{}
	closing sync.Once
	wg      sync.WaitGroup // accept loop, TLS handshakes, hs.Serve
	stopCtx func() bool

	unregister func()

	mu         sync.Mutex
	sharers    []*route // "!name" streamtypes, in join order
	sessions   map[net.Conn]*session
	pending    map[net.Conn]struct{} // accepted, not yet handed to hs
	handshakes chan struct{}         // a token per connection in pending (MaxHandshakes)
}

type connKey struct{}

// connInfo is attached to each connection's context.
type connInfo struct {
	conn net.Conn
	s    *session // nil for h2 connections
}

func openListener(st *policy.Streamtype, env *transport.Env, r *route) (*listener, error) {
	network, addr, err := listenAddress(st)
	if err != nil {
		return nil, err
	}
	var tlsConf *tls.Config
	if st.TLS {
		if tlsConf, err = serverTLS(st); err != nil {
			return nil, err
		}
	}
	if network == "unix" && !strings.HasPrefix(addr, "@") {
		removeStaleSocket(addr)
	}
	var ln net.Listener
	if network == "tcp" {
		// The endpoint may name an interface ("lo"): every address of it.
		ln, err = transport.ListenTCP(context.Background(), transport.ServerHost(st.Endpoint), int(st.Port))
	} else {
		ln, err = net.Listen(network, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: streamtype %q: %w", ErrListen, st.Name, err)
	}
	l := &listener{
		owner:      r,
		ln:         ln,
		tlsConf:    tlsConf,
		log:        env.Logger,
		conns:      make(chan net.Conn),
		closed:     make(chan struct{}),
		sessions:   make(map[net.Conn]*session),
		pending:    make(map[net.Conn]struct{}),
		handshakes: make(chan struct{}, MaxHandshakes),
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	if st.Protocol == policy.H2 && tlsConf != nil {
		protos.SetHTTP2(true)
	}
	l.hs = &http.Server{
		Handler:           http.HandlerFunc(l.serveHTTP),
		Protocols:         &protos,
		ReadHeaderTimeout: env.HeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(env.Logger.Handler(), slog.LevelDebug),
		ConnContext:       l.connContext,
		ConnState:         l.connState,
		// Each h2 stream becomes an accepted stream: a client may not open
		// more than this many at once on one connection.
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: MaxH2Streams},
	}
	return l, nil
}

// listenAddress maps the streamtype's endpoint and port to a net.Listen
// network and address.
func listenAddress(st *policy.Streamtype) (network, addr string, err error) {
	ep := st.Endpoint
	if path, ok := strings.CutPrefix(ep, "+"); ok {
		if path == "" || path == "@" {
			return "", "", fmt.Errorf("%w: streamtype %q: empty unix socket name", ErrListen, st.Name)
		}
		return "unix", path, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(ep, "["), "]")
	return "tcp", net.JoinHostPort(host, strconv.Itoa(int(st.Port))), nil
}

// removeStaleSocket removes a unix socket file left by an earlier process
// (lws unlinks it too). A socket that still accepts connections, and
// anything that is not a socket, is left alone (Listen then fails).
func removeStaleSocket(path string) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	if c, err := net.DialTimeout("unix", path, 100*time.Millisecond); err == nil {
		_ = c.Close()
		return
	}
	_ = os.Remove(path)
}

// serverTLS builds the server TLS configuration from server_cert/server_key:
// ALPN h2 and http/1.1 for h2 streamtypes, http/1.1 for h1.
func serverTLS(st *policy.Streamtype) (*tls.Config, error) {
	if st.ServerCert == nil || st.ServerKey == nil || st.ServerKey.PrivateKey == nil {
		return nil, fmt.Errorf("%w: streamtype %q: tls needs server_cert and server_key", ErrListen, st.Name)
	}
	der := st.ServerCert.DER
	if st.ServerCert.Certificate != nil {
		der = st.ServerCert.Certificate.Raw
	}
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: streamtype %q: server_cert %q holds no certificate", ErrListen, st.Name, st.ServerCertName)
	}
	cert := tls.Certificate{
		Certificate: [][]byte{der},
		PrivateKey:  st.ServerKey.PrivateKey,
		Leaf:        st.ServerCert.Certificate,
	}
	alpn := []string{"http/1.1"}
	if st.Protocol == policy.H2 {
		alpn = []string{"h2", "http/1.1"}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpn, MinVersion: tls.VersionTLS12}, nil
}

func (l *listener) start(ctx context.Context) {
	l.wg.Add(2)
	go l.acceptLoop()
	go func() {
		defer l.wg.Done()
		_ = l.hs.Serve(chanListener{l})
	}()
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	l.mu.Lock()
	l.stopCtx = stop
	l.mu.Unlock()
}

// Addr returns the listening address.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, closes the socket and every connection of the
// listener that is not an upgraded websocket (those end with their streams),
// and waits for the listener's own goroutines. Idempotent.
func (l *listener) Close() error {
	l.closing.Do(func() {
		l.mu.Lock()
		stop := l.stopCtx
		l.mu.Unlock()
		if stop != nil {
			stop()
		}
		if l.unregister != nil {
			l.unregister()
		}
		close(l.closed)
		_ = l.ln.Close()
		l.mu.Lock()
		for c := range l.pending {
			_ = c.Close()
		}
		l.mu.Unlock()
		_ = l.hs.Close()
	})
	l.wg.Wait()
	return nil
}

func (l *listener) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

func (l *listener) addSharer(r *route) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed() {
		return fmt.Errorf("%w: streamtype %q wants the listener of %q", ErrNotListening, r.st.Name, l.owner.st.Name)
	}
	for _, o := range l.sharers {
		if o.st.Name == r.st.Name {
			return fmt.Errorf("%w: streamtype %q is already listening", ErrListen, r.st.Name)
		}
	}
	l.sharers = append(l.sharers, r)
	return nil
}

func (l *listener) removeSharer(r *route) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, o := range l.sharers {
		if o == r {
			l.sharers = append(l.sharers[:i:i], l.sharers[i+1:]...)
			return
		}
	}
}

// shared reports whether other streamtypes share this listener.
func (l *listener) shared() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sharers) > 0
}

// routeFor picks the streamtype for a request: for a websocket upgrade the
// first route whose ws_subprotocol the client offers, else the owner.
func (l *listener) routeFor(r *http.Request) *route {
	if !isUpgrade(r) {
		return l.owner
	}
	l.mu.Lock()
	routes := append([]*route{l.owner}, l.sharers...)
	l.mu.Unlock()
	for _, want := range offeredSubprotocols(r) {
		for _, rt := range routes {
			if rt.st.WSSubprotocol != "" && rt.st.WSSubprotocol == want {
				return rt
			}
		}
	}
	return l.owner
}

// acceptLoop accepts connections, runs TLS handshakes (each on its own
// goroutine, so a slow client cannot hold the others up) and hands finished
// connections to hs.Serve through l.conns.
func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.log.Debug("httpserver: accept failed", "listener", l.owner.st.Name, "err", err)
			select {
			case <-l.closed:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		// At most MaxHandshakes connections between accept and hs.Serve:
		// beyond that the loop stops accepting (the kernel's backlog holds
		// the next ones), so connections that never finish a handshake cost
		// a bounded number of goroutines.
		select {
		case l.handshakes <- struct{}{}:
		case <-l.closed:
			_ = c.Close()
			return
		}
		if !l.track(c) {
			<-l.handshakes
			_ = c.Close()
			return
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// track records c as pending (so Close can close it); false when closed.
func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed() {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
}

// handshake completes TLS (when configured) and hands c to hs.Serve. The
// accepted stream is created only after a successful handshake.
func (l *listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.handshakes }()
	var c net.Conn = raw
	if l.tlsConf != nil {
		tc := tls.Server(raw, l.tlsConf)
		ctx, cancel := context.WithTimeout(context.Background(), l.owner.env.ConnectTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			l.log.Debug("httpserver: tls handshake failed", "listener", l.owner.st.Name, "remote", raw.RemoteAddr(), "err", err)
			l.untrack(raw)
			_ = raw.Close()
			return
		}
		c = tc
	}
	select {
	case l.conns <- c:
		l.untrack(raw)
	case <-l.closed:
		l.untrack(raw)
		_ = c.Close()
	}
}

// connContext runs in hs.Serve for every connection: an h1 connection gets
// its session (and, unless the listener is shared, its accepted stream now);
// an h2 connection makes one session per stream in serveHTTP instead.
func (l *listener) connContext(ctx context.Context, c net.Conn) context.Context {
	info := &connInfo{conn: c}
	if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
		return context.WithValue(ctx, connKey{}, info)
	}
	s := newSession(l, c, false)
	info.s = s
	l.mu.Lock()
	l.sessions[c] = s
	l.mu.Unlock()
	if !l.shared() {
		s.bind(l.owner)
	}
	return context.WithValue(ctx, connKey{}, info)
}

// connState ends an h1 session when net/http is done with its connection.
func (l *listener) connState(c net.Conn, state http.ConnState) {
	if state != http.StateClosed {
		return
	}
	l.mu.Lock()
	s := l.sessions[c]
	delete(l.sessions, c)
	l.mu.Unlock()
	if s != nil && !s.hijacked.Load() {
		s.finish()
	}
}

// forget drops a hijacked connection's session from the table.
func (l *listener) forget(c net.Conn) {
	l.mu.Lock()
	delete(l.sessions, c)
	l.mu.Unlock()
}

// chanListener feeds hs.Serve with the connections the accept loop has
// finished (TLS handshakes done).
type chanListener struct{ l *listener }

func (cl chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-cl.l.conns:
		return c, nil
	case <-cl.l.closed:
		return nil, net.ErrClosed
	}
}

func (cl chanListener) Close() error   { return nil }
func (cl chanListener) Addr() net.Addr { return cl.l.ln.Addr() }

// sharedHandle is the Listener of a "!name" streamtype.
type sharedHandle struct {
	l    *listener
	r    *route
	once sync.Once
	mu   sync.Mutex
	stop func() bool
}

func (h *sharedHandle) Addr() net.Addr { return h.l.Addr() }

func (h *sharedHandle) Close() error {
	h.once.Do(func() {
		h.mu.Lock()
		stop := h.stop
		h.mu.Unlock()
		if stop != nil {
			stop()
		}
		h.l.removeSharer(h.r)
	})
	return nil
}
