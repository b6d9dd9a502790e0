package test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil"
)

// TestProxyThroughSOCKS5: Config.Proxy "socks5://…/tcp:…" reaches a TCP SS
// proxy through a SOCKS5 server on loopback (without and with
// user/password), and the stream works end to end.
func TestProxyThroughSOCKS5(t *testing.T) {
	echo := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	prt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", echo.Port()))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(serveProxy(t, prt, ln))
	proxyAddr := ln.Addr().String()

	for _, c := range []struct{ name, user, pass string }{{"no auth", "", ""}, {"user and password", "dev", "s3cret"}} {
		t.Run(c.name, func(t *testing.T) {
			socks := testutil.NewSOCKS5(t)
			socks.User, socks.Password = c.user, c.pass
			cred := ""
			if c.user != "" {
				cred = c.user + ":" + c.pass + "@"
			}
			rt := newRuntime(t, ss.Config{Proxy: "socks5://" + cred + socks.Addr() + "/tcp:" + proxyAddr})
			ctx := context.Background()
			s, err := rt.Create(ctx, "echo")
			if err != nil {
				t.Fatal(err)
			}
			r := record(t, s)
			if err := s.Send(ctx, []byte("via socks")); err != nil {
				t.Fatal(err)
			}
			r.untilBytes(wait, 9)
			if r.payload() != "via socks" {
				t.Fatalf("payload %q", r.payload())
			}
			s.Destroy(ctx)
			r.closed(wait)
			if got := socks.Targets(); len(got) == 0 || got[0] != proxyAddr {
				t.Fatalf("SOCKS5 targets %v, want %s", got, proxyAddr)
			}
		})
	}
	t.Run("malformed", func(t *testing.T) {
		for _, addr := range []string{"socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080/unix:@x", "socks5:///tcp:127.0.0.1:1", "socks5://u:pw@nohost/tcp:127.0.0.1:1"} {
			_, err := ss.New(context.Background(), ss.Config{Proxy: addr})
			if !errors.Is(err, proxy.ErrAddress) || strings.Contains(err.Error(), "pw") {
				t.Errorf("%s: %v, want a proxy.ErrAddress without the password", addr, err)
			}
		}
	})
}
