package raw

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// TestHandshakesBounded: connections that never start their TLS handshake
// occupy at most MaxHandshakes handshake goroutines; while they do, the
// listener stops accepting (a good client waits in the kernel's backlog),
// and as soon as they go away the good client is served.
func TestHandshakesBounded(t *testing.T) {
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "127.0.0.1")
	st := &policy.Streamtype{Name: "s", Protocol: policy.Raw, Endpoint: "127.0.0.1", Server: true, TLS: true,
		ServerCert: leaf.PolicyCert("c"), ServerKey: leaf.PolicyKey("k")}
	accepted := make(chan transport.ServerConn, 1)
	lnI, err := NewServer(nil).Listen(context.Background(), st, transport.Env{}.Defaults(), func(c transport.ServerConn) { accepted <- c })
	if err != nil {
		t.Fatal(err)
	}
	defer lnI.Close()
	l := lnI.(*listener)
	var idle []net.Conn
	closeIdle := func() {
		for _, c := range idle {
			c.Close()
		}
		idle = nil
	}
	defer closeIdle()
	for range MaxHandshakes + 20 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(l.handshakes) < MaxHandshakes && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // give the accept loop time to overrun, if it would
	if n := len(l.handshakes); n != MaxHandshakes {
		t.Fatalf("%d handshakes in progress, want %d", n, MaxHandshakes)
	}
	good := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
		if err == nil {
			c.Close()
		}
		good <- err
	}()
	select {
	case <-accepted:
		t.Fatal("a connection was served while every handshake slot was taken")
	case <-time.After(100 * time.Millisecond):
	}
	closeIdle()
	select {
	case err := <-good:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("good client not served after the idle connections left")
	}
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("good client not accepted")
	}
}
