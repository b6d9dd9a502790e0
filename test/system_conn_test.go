package test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// TestServeOnInterfaceName: a raw server whose endpoint is the interface
// name "lo" listens on the loopback addresses; a client reaches it on
// 127.0.0.1 (and ::1 when the host has it).
func TestServeOnInterfaceName(t *testing.T) {
	if _, err := net.InterfaceByName("lo"); err != nil {
		t.Skip("no lo interface")
	}
	srvType := &policy.Streamtype{Name: "lo_srv", Protocol: policy.Raw, Server: true, Endpoint: "lo", ClientCert: -1}
	rt := newRuntime(t, ss.Config{Policy: newPolicy(srvType)})
	ctx := context.Background()
	srv, err := rt.Serve(ctx, "lo_srv")
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Addr().(*net.TCPAddr).Port
	hosts := []string{"127.0.0.1"}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		hosts = append(hosts, "[::1]")
	}
	for i, host := range hosts {
		name := "to_lo" + string(rune('a'+i))
		if err := rt.SetPolicy(newPolicy(srvType, rawType(name, host, port))); err != nil {
			t.Fatal(err)
		}
		c, err := rt.Create(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		rc := record(t, c)
		if err := c.Send(ctx, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		a := acceptWithin(t, srv, wait)
		ra := record(t, a)
		ra.untilBytes(wait, 4)
		if ra.payload() != "ping" {
			t.Fatalf("%s: server got %q", host, ra.payload())
		}
		rc.untilState(wait, ss.Connected)
		c.Destroy(ctx)
		rc.closed(wait)
		ra.closed(wait)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNailedUpReconnect: a nailed_up stream reconnects after the server
// drops the connection, also when it is opportunistic (nailed_up keeps the
// connection up; docs/lws-differences.md).
func TestNailedUpReconnect(t *testing.T) {
	for _, opportunistic := range []bool{false, true} {
		name := map[bool]string{false: "nailed", true: "nailed_opportunistic"}[opportunistic]
		t.Run(name, func(t *testing.T) {
			var conns atomic.Int32
			srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
				n := conns.Add(1)
				c.Write([]byte{byte('0' + n)})
				if n == 1 {
					c.Close() // the first connection is dropped
					return
				}
				testutil.Echo(c)
			})
			defer srv.Close()
			st := rawType(name, "127.0.0.1", srv.Port())
			st.NailedUp, st.Opportunistic = true, opportunistic
			st.Retry = retry(3, 0, 50)
			rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
			s, err := rt.Create(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			r := record(t, s)
			r.untilBytes(wait, 2)
			s.Destroy(context.Background())
			r.closed(wait)
			r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(0,"1")`, "DISCONNECTED",
				"POLL", "CONNECTING", "CONNECTED", `rx(0,"2")`, "DISCONNECTED", "DESTROYING")
		})
	}
}
