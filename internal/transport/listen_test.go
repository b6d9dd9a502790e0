package transport

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestListenInterface: an interface name ("lo") listens on each of its
// addresses, all reachable, one port; Close ends every address.
func TestListenInterface(t *testing.T) {
	addrs, err := InterfaceAddrs("lo")
	if err != nil || len(addrs) == 0 {
		t.Skipf("no lo interface: %v", err)
	}
	if a, _ := InterfaceAddrs("127.0.0.1"); a != nil {
		t.Fatalf("an IP literal resolved as an interface: %v", a)
	}
	if a, _ := InterfaceAddrs("localhost"); a != nil {
		t.Fatalf("a host name resolved as an interface: %v", a)
	}
	ctx := context.Background()
	ln, err := ListenTCP(ctx, "lo", 0)
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	accepted := make(chan net.Conn, len(addrs))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(a, strconv.Itoa(port)), 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", a, err)
		}
		select {
		case s := <-accepted:
			if got := s.LocalAddr().(*net.TCPAddr).IP.String(); got != net.ParseIP(stripZone(a)).String() {
				t.Errorf("accepted on %s, dialed %s", got, a)
			}
			s.Close()
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing accepted on %s", a)
		}
		c.Close()
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-accepted:
		if ok {
			t.Fatal("accepted after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if _, err := net.DialTimeout("tcp", net.JoinHostPort(addrs[0], strconv.Itoa(port)), time.Second); err == nil {
		t.Fatal("still listening after Close")
	}
	again, err := ListenTCP(ctx, "lo", port)
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	again.Close()
}

func stripZone(a string) string {
	for i := range a {
		if a[i] == '%' {
			return a[:i]
		}
	}
	return a
}
