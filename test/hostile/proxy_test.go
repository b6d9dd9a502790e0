package hostile

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/proxy"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/testutil/ssproxytest"
	"github.com/securestreams/ss/policy"
)

// inProcessProxy serves pol on a fresh abstract socket until cleanup.
func inProcessProxy(t *testing.T, pol *policy.Policy) string {
	t.Helper()
	addr := ssproxytest.AbstractAddress()
	_, name, err := proxy.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	prt := newRuntime(t, ss.Config{Policy: pol})
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- prt.ServeProxy(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeProxy: %v", err)
		}
	})
	return addr
}

// daemonProxy runs the ssproxy binary with pol until cleanup (SIGTERM).
func daemonProxy(t *testing.T, bin string, pol *policy.Policy) string {
	t.Helper()
	js, err := pol.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(file, js, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := ssproxytest.AbstractAddress()
	d := ssproxytest.Start(t, bin, addr, nil, "-policy", file, "-listen", addr)
	t.Cleanup(func() { d.Stop(t, syscall.SIGTERM, 10*time.Second) })
	deadline := time.Now().Add(wait)
	for {
		l, err := ssproxytest.Dial(addr)
		if err == nil {
			l.Close()
			return addr
		}
		select {
		case <-d.Exited():
			t.Fatalf("ssproxy exited:\n%s", d.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssproxy not listening: %v\n%s", err, d.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProxyInjection: a hostile SSSv1 client (raw frames, no library
// checks on its side) sends the HTTP table's metadata through an
// in-process proxy and through the ssproxy binary: accepted values reach
// the raw capture server exactly as locally (encoded), refused ones close
// the link and nothing reaches the server; a streamtype name with control
// characters gets CREATE_RESULT failed.
func TestProxyInjection(t *testing.T) {
	cap := testutil.NewRawCapture(t, nil, "")
	pol := httpPolicy(t, "h1", cap.Port(), false)
	for _, via := range []string{"in-process", "ssproxy"} {
		t.Run(via, func(t *testing.T) {
			var addr string
			if via == "ssproxy" {
				if testing.Short() {
					t.Skip("-short: no ssproxy binary")
				}
				addr = daemonProxy(t, testutil.BuildBinary(t, "github.com/securestreams/ss/cmd/ssproxy"), pol)
			} else {
				addr = inProcessProxy(t, pol)
			}
			for _, name := range []string{"x\r\n", "x\x00", "\xff"} {
				l := ssproxytest.MustDial(t, addr)
				cr, err := l.Create(name, wait)
				if err == nil && cr.OK() {
					t.Fatalf("streamtype %q created", name)
				}
				l.Close()
			}
			for _, c := range httpCases {
				if len(c.md) == 1 && len(c.md[0].name) > 30 {
					continue // not expressible in SSSv1
				}
				t.Run(c.name, func(t *testing.T) {
					before := len(cap.Conns())
					l := ssproxytest.MustDial(t, addr)
					l.MustCreate(t, "x")
					var msgs []proxy.Message
					for _, m := range c.md {
						msgs = append(msgs, &proxy.TxMetadata{Name: m.name, Value: []byte(m.value)})
					}
					msgs = append(msgs, &proxy.OnwardConnect{})
					werr := l.Send(msgs...)
					if c.refused != "" {
						// The proxy closes the link: reading ends in an error.
						for {
							if _, err := l.Next(wait); err != nil {
								break
							}
						}
						time.Sleep(100 * time.Millisecond)
						if got := cap.Conns(); len(got) != before {
							t.Fatalf("a refused value reached the server: %q", got[before:])
						}
						return
					}
					if werr != nil {
						t.Fatal(werr)
					}
					got := cap.Wait(before+1, wait)
					if len(got) != before+1 {
						t.Fatalf("%d connections, want %d", len(got), before+1)
					}
					checkRawHead(t, got[before])
					want := "GET " + c.target + " HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(cap.Port()) + "\r\n"
					for _, h := range c.headers {
						want += h + "\r\n"
					}
					want += "Connection: close\r\n\r\n"
					if got[before] != want {
						t.Fatalf("server received\n%q\nwant\n%q", got[before], want)
					}
				})
			}
		})
	}
}

// TestProxiedClientRefusesLocally: a proxied runtime whose own policy
// knows the streamtype refuses a bad value at Create, naming the item,
// before anything is sent to the proxy; one whose policy does not know it
// leaves the check to the proxy, which closes the link (the client keeps
// re-creating the link: it is not told why), and nothing reaches the
// server either way.
func TestProxiedClientRefusesLocally(t *testing.T) {
	cap := testutil.NewRawCapture(t, nil, "")
	pol := httpPolicy(t, "h1", cap.Port(), false)
	addr := inProcessProxy(t, pol)
	local := newRuntime(t, ss.Config{Proxy: addr, Policy: pol})
	_, err := local.Create(context.Background(), "x", ss.WithMetadata("h", "v\r\nX-Injected: 1"))
	wantRefused(t, err, "h", "CR (0x0d) at byte 1")

	remote := newRuntime(t, ss.Config{Proxy: addr})
	ctx := context.Background()
	s, err := remote.Create(ctx, "x", ss.WithMetadata("h", "v\r\nX-Injected: 1"))
	if err != nil {
		t.Fatalf("Create: %v (the proxy, not the client, refuses)", err)
	}
	defer func() {
		s.Destroy(ctx)
		for range s.Events() {
		}
	}()
	if err := s.RequestTx(); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	for done := false; !done; {
		select {
		case ev := <-s.Events():
			if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
				t.Fatal("CONNECTED with a refused value")
			}
		case <-timer.C:
			done = true
		}
	}
	if got := cap.Conns(); len(got) != 0 {
		t.Fatalf("a refused value reached the server: %q", got)
	}
}
