//go:build linux

package transport

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss/policy"
)

// sockopt reads an integer socket option of c.
func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestPriorityAndToS: attr_priority and the ToS attributes both hold on the
// dialed socket (setting IP_TOS after SO_PRIORITY would reset the priority
// on Linux), over IPv4 (IP_TOS) and IPv6 (IPV6_TCLASS).
func TestPriorityAndToS(t *testing.T) {
	for _, c := range []struct {
		network, addr string
		level, opt    int
	}{
		{"tcp4", "127.0.0.1:0", syscall.IPPROTO_IP, syscall.IP_TOS},
		{"tcp6", "[::1]:0", syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS},
	} {
		t.Run(c.network, func(t *testing.T) {
			ln, err := net.Listen(c.network, c.addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", c.network, err)
			}
			defer ln.Close()
			go func() {
				if s, err := ln.Accept(); err == nil {
					s.Close()
				}
			}()
			host, port, _ := net.SplitHostPort(ln.Addr().String())
			st := &policy.Streamtype{Name: "x", Protocol: policy.Raw, Endpoint: "[" + host + "]", ClientCert: -1,
				AttrPriority: 3, AttrLowLatency: true, AttrHighReliability: true, AttrLowCost: true}
			if c.network == "tcp4" {
				st.Endpoint = host
			}
			p, _ := strconv.Atoi(port)
			st.Port = uint16(p)
			a := &Attempt{Type: st, Env: Env{}.Defaults()}
			ep, err := ResolveEndpoint(a)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := Dial(ctx, a, ep, DialOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := sockopt(t, conn, syscall.SOL_SOCKET, syscall.SO_PRIORITY); got != 3 {
				t.Errorf("SO_PRIORITY = %d, want 3", got)
			}
			// low delay 0x10 | reliability 0x04; attr_low_cost (0x02, an
			// ECN bit) is not set.
			if got := sockopt(t, conn, c.level, c.opt); got != 0x14 {
				t.Errorf("ToS = %#x, want 0x14", got)
			}
		})
	}
}
