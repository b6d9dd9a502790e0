package testutil

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SOCKS5 is a minimal SOCKS5 server (RFC 1928 CONNECT; no authentication,
// or user/password per RFC 1929 when User is set) on 127.0.0.1 for tests.
// It connects only to loopback addresses and records every target.
type SOCKS5 struct {
	ln       net.Listener
	User     string
	Password string
	wg       sync.WaitGroup
	mu       sync.Mutex
	targets  []string
	conns    map[net.Conn]struct{}
	closed   bool
}

// NewSOCKS5 starts the server; it is closed when the test ends. Set User
// and Password before the first client connects to require them.
func NewSOCKS5(tb testing.TB) *SOCKS5 {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &SOCKS5{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.loop()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the server's host:port.
func (s *SOCKS5) Addr() string { return s.ln.Addr().String() }

// Targets returns the host:port of every CONNECT request so far.
func (s *SOCKS5) Targets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.targets...)
}

// Close stops the server and closes its connections.
func (s *SOCKS5) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *SOCKS5) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *SOCKS5) loop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

var errSOCKS = errors.New("socks5: bad request")

func (s *SOCKS5) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *SOCKS5) serve(c net.Conn) {
	defer s.untrack(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	target, err := s.handshake(c)
	if err != nil {
		return
	}
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return
	}
	if !s.track(up) {
		return
	}
	defer s.untrack(up)
	c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	c.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

// handshake reads the greeting, authenticates and reads a CONNECT; it
// returns the target, which must be a loopback address.
func (s *SOCKS5) handshake(c net.Conn) (string, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return "", errSOCKS
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return "", errSOCKS
	}
	want := byte(0)
	if s.User != "" {
		want = 2
	}
	ok := false
	for _, m := range methods {
		ok = ok || m == want
	}
	if !ok {
		c.Write([]byte{5, 0xff})
		return "", errSOCKS
	}
	c.Write([]byte{5, want})
	if want == 2 {
		var v [2]byte
		if _, err := io.ReadFull(c, v[:]); err != nil {
			return "", errSOCKS
		}
		user := make([]byte, v[1])
		io.ReadFull(c, user)
		var pl [1]byte
		io.ReadFull(c, pl[:])
		pass := make([]byte, pl[0])
		if _, err := io.ReadFull(c, pass); err != nil || string(user) != s.User || string(pass) != s.Password {
			c.Write([]byte{1, 1})
			return "", errSOCKS
		}
		c.Write([]byte{1, 0})
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 5 || req[1] != 1 {
		return "", errSOCKS
	}
	var host string
	switch req[3] {
	case 1:
		var ip [4]byte
		if _, err := io.ReadFull(c, ip[:]); err != nil {
			return "", errSOCKS
		}
		host = net.IP(ip[:]).String()
	case 4:
		var ip [16]byte
		if _, err := io.ReadFull(c, ip[:]); err != nil {
			return "", errSOCKS
		}
		host = net.IP(ip[:]).String()
	case 3:
		var l [1]byte
		io.ReadFull(c, l[:])
		name := make([]byte, l[0])
		if _, err := io.ReadFull(c, name); err != nil {
			return "", errSOCKS
		}
		host = string(name)
	default:
		return "", errSOCKS
	}
	var pb [2]byte
	if _, err := io.ReadFull(c, pb[:]); err != nil {
		return "", errSOCKS
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb[:]))))
	s.mu.Lock()
	s.targets = append(s.targets, target)
	s.mu.Unlock()
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		c.Write([]byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}) // not allowed: loopback only
		return "", errSOCKS
	}
	return target, nil
}
