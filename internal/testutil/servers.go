package testutil

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Server is a loopback server running handler for each connection. Close
// (also registered with t.Cleanup) closes the listener and every
// connection and waits for the handlers.
type Server struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	once  sync.Once
}

// Listen opens a listener on network ("tcp" → 127.0.0.1:0, "tcp6" → [::1]:0,
// "unix" → addr) and serves handler on every connection, with TLS when
// cfg is non-nil.
func Listen(tb testing.TB, network, addr string, cfg *tls.Config, handler func(net.Conn)) *Server {
	tb.Helper()
	switch {
	case network == "tcp" && addr == "":
		addr = "127.0.0.1:0"
	case network == "tcp6" && addr == "":
		addr = "[::1]:0"
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	s := &Server{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.loop(handler)
	tb.Cleanup(s.Close)
	return s
}

func (s *Server) loop(handler func(net.Conn)) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.Lock()
		if s.conns == nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			handler(c)
		}()
	}
}

// Addr returns the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Port returns the TCP port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and waits for its handlers; idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.conns = nil
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// Echo copies everything it reads back to the peer.
func Echo(c net.Conn) { _, _ = io.Copy(c, c) }

// Discard reads and drops everything.
func Discard(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on (it was
// free a moment ago).
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
