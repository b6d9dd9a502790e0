package raw

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// handshakeTimeout bounds the TLS handshake of an accepted connection.
const handshakeTimeout = 10 * time.Second

// MaxHandshakes bounds the TLS handshakes in progress on one listener: the
// listener stops accepting while that many are under way (the kernel's
// backlog holds the next connections), so a flood of connections that never
// complete a handshake costs a bounded number of goroutines.
const MaxHandshakes = 128

// Server is the raw server protocol.
type Server struct {
	env *transport.Env
}

// NewServer returns the raw server protocol.
func NewServer(env *transport.Env) transport.ServerProtocol { return &Server{env: env} }

// ListenAddr returns the network and address a server streamtype listens on:
// "+@name" an abstract unix socket, "+path" a unix socket, else TCP on
// endpoint:port (all interfaces when the endpoint is empty).
func ListenAddr(st *policy.Streamtype) (network, addr string, err error) {
	ep := st.Endpoint
	switch {
	case strings.HasPrefix(ep, "+@"):
		if len(ep) == 2 {
			return "", "", fmt.Errorf("%w: empty abstract socket name", transport.ErrEndpoint)
		}
		return "unix", "@" + ep[2:], nil
	case strings.HasPrefix(ep, "+"):
		if len(ep) == 1 {
			return "", "", fmt.Errorf("%w: empty unix socket path", transport.ErrEndpoint)
		}
		return "unix", ep[1:], nil
	case strings.HasPrefix(ep, "!"):
		return "", "", fmt.Errorf("%w: shared listener %q is not supported by raw servers", transport.ErrEndpoint, ep)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(ep, "["), "]")
	return "tcp", net.JoinHostPort(host, strconv.Itoa(int(st.Port))), nil
}

// ServerTLSConfig returns the TLS configuration of a server streamtype from
// its server_cert and server_key, or nil when tls is off.
func ServerTLSConfig(st *policy.Streamtype) (*tls.Config, error) {
	if !st.TLS {
		return nil, nil
	}
	if st.ServerCert == nil || st.ServerKey == nil {
		return nil, fmt.Errorf("%w: streamtype %q: tls needs server_cert and server_key", transport.ErrTLS, st.Name)
	}
	cert := tls.Certificate{Certificate: [][]byte{st.ServerCert.DER}, PrivateKey: st.ServerKey.PrivateKey, Leaf: st.ServerCert.Certificate}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Listen implements transport.ServerProtocol.
func (s *Server) Listen(ctx context.Context, st *policy.Streamtype, env *transport.Env, accept func(transport.ServerConn)) (transport.Listener, error) {
	network, addr, err := ListenAddr(st)
	if err != nil {
		return nil, err
	}
	tcfg, err := ServerTLSConfig(st)
	if err != nil {
		return nil, err
	}
	if network == "unix" && !strings.HasPrefix(addr, "@") {
		removeStaleSocket(addr)
	}
	var ln net.Listener
	if network == "tcp" {
		// The endpoint may name an interface ("lo"): every address of it.
		ln, err = transport.ListenTCP(ctx, transport.ServerHost(st.Endpoint), int(st.Port))
	} else {
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, network, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("ss: streamtype %q: listen %s %s: %w", st.Name, network, addr, err)
	}
	l := &listener{ln: ln, tls: tcfg, accept: accept, done: make(chan struct{}), handshakes: make(chan struct{}, MaxHandshakes)}
	l.ctx, l.cancel = context.WithCancel(ctx)
	l.wg.Add(1)
	go l.loop()
	return l, nil
}

// removeStaleSocket removes a leftover unix socket file (never other files).
func removeStaleSocket(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
}

type listener struct {
	ln     net.Listener
	tls    *tls.Config
	accept func(transport.ServerConn)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	done   chan struct{}

	handshakes chan struct{} // a token per TLS handshake in progress
}

func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, closes the socket and waits for the accept loop and
// pending TLS handshakes.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		// Close the socket before cancelling: the loop's AfterFunc closes it
		// too when the listen ctx ends, and that close is not an error here.
		err = l.ln.Close()
		l.cancel()
		l.wg.Wait()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}

func (l *listener) loop() {
	defer l.wg.Done()
	stop := context.AfterFunc(l.ctx, func() { l.ln.Close() })
	defer stop()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE...): back off a little.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if l.tls == nil {
			l.accept(&conn{c: c})
			continue
		}
		select {
		case l.handshakes <- struct{}{}:
		case <-l.ctx.Done():
			c.Close()
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.handshakes }()
			tc := tls.Server(c, l.tls)
			hctx, cancel := context.WithTimeout(l.ctx, handshakeTimeout)
			err := tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				c.Close()
				return
			}
			l.accept(&conn{c: tc})
		}()
	}
}

// conn is one accepted raw connection.
type conn struct {
	c net.Conn
}

func (c *conn) RemoteAddr() net.Addr { return c.c.RemoteAddr() }

// Serve implements transport.ServerConn: CONNECTED at once, then bytes both
// ways until either side closes.
func (c *conn) Serve(ctx context.Context, a *transport.Attempt, sink transport.Sink) transport.Result {
	sink.State(event.Connected, 0)
	sink.ValidityConfirmed()
	return transport.Result{Err: Pipe(ctx, c.c, a.Tx, sink)}
}
