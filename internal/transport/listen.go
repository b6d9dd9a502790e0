package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// ServerHost is the bind host of a server streamtype's endpoint (brackets
// of an IPv6 literal removed; "" for all interfaces).
func ServerHost(endpoint string) string {
	if len(endpoint) > 1 && endpoint[0] == '[' && endpoint[len(endpoint)-1] == ']' {
		return endpoint[1 : len(endpoint)-1]
	}
	return endpoint
}

// ListenTCP opens a TCP listener for a server streamtype's endpoint and
// port. host may be an IP literal, a host name, empty (all interfaces), or
// the name of a network interface ("lo", "eth0"): then the listener accepts
// on every address the interface has (IPv4 and IPv6, link-local ones with
// their zone), as one net.Listener (docs/lws-differences.md).
func ListenTCP(ctx context.Context, host string, port int) (net.Listener, error) {
	var lc net.ListenConfig
	addrs, err := InterfaceAddrs(host)
	if err != nil {
		return nil, err
	}
	if addrs == nil {
		return lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	var lns []net.Listener
	for _, a := range addrs {
		p := port
		if p == 0 && len(lns) > 0 {
			// Port 0: every address gets the port the first one was given.
			p = lns[0].Addr().(*net.TCPAddr).Port
		}
		ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(a, strconv.Itoa(p)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("ss: interface %q: %w", host, err)
		}
		lns = append(lns, ln)
	}
	if len(lns) == 1 {
		return lns[0], nil
	}
	return newMultiListener(lns), nil
}

// InterfaceAddrs returns the addresses of the network interface named host,
// nil when host is not an interface name (an IP literal, a host name, or
// empty). An interface without addresses is an error.
func InterfaceAddrs(host string) ([]string, error) {
	if host == "" || net.ParseIP(host) != nil {
		return nil, nil
	}
	ifi, err := net.InterfaceByName(host)
	if err != nil {
		return nil, nil // not an interface: a host name
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("ss: interface %q: %w", host, err)
	}
	var out []string
	for _, a := range as {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		s := ipn.IP.String()
		if ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
			s += "%" + ifi.Name
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ss: interface %q has no IP address", host)
	}
	return out, nil
}

// multiListener merges the listeners of one interface's addresses.
type multiListener struct {
	lns   []net.Listener
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newMultiListener(lns []net.Listener) *multiListener {
	m := &multiListener{lns: lns, conns: make(chan net.Conn), errs: make(chan error, len(lns)), done: make(chan struct{})}
	for _, ln := range lns {
		m.wg.Add(1)
		go m.loop(ln)
	}
	return m
}

func (m *multiListener) loop(ln net.Listener) {
	defer m.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.errs <- err // buffered: one per listener
			return
		}
		select {
		case m.conns <- c:
		case <-m.done:
			c.Close()
			return
		}
	}
}

// Accept returns the next connection from any of the addresses.
func (m *multiListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	case err := <-m.errs:
		return nil, err
	}
}

// Close closes every address's listener and waits for their loops.
func (m *multiListener) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		var errs []error
		for _, ln := range m.lns {
			errs = append(errs, ln.Close())
		}
		m.wg.Wait()
		err = errors.Join(errs...)
	})
	return err
}

// Addr is the first address's.
func (m *multiListener) Addr() net.Addr { return m.lns[0].Addr() }
