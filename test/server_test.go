package test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

func rawServerType(name, endpoint string) *policy.Streamtype {
	return &policy.Streamtype{Name: name, Protocol: policy.Raw, Endpoint: endpoint, Server: true, ClientCert: -1}
}

// TestRawServerAccepted: a plain TCP client against a raw server stream:
// CREATING, CONNECTING, CONNECTED at accept, rx with flags 0, tx as-is,
// DISCONNECTED and DESTROYING when the client closes.
func TestRawServerAccepted(t *testing.T) {
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawServerType("srv", "127.0.0.1"))})
	ctx := context.Background()
	srv, err := rt.Serve(ctx, "srv")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var s *ss.Stream
	select {
	case s = <-srv.Accepted():
	case <-time.After(wait):
		t.Fatal("no accepted stream")
	}
	r := record(t, s)
	r.untilState(wait, ss.Connected)
	c.Write([]byte("ping"))
	r.untilBytes(wait, 4)
	if err := s.Send(ctx, []byte("pong")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	n := 0
	srv.ForEachAccepted(func(*ss.Stream) { n++ })
	if n != 1 {
		t.Fatalf("ForEachAccepted saw %d streams, want 1", n)
	}
	c.Close()
	r.closed(wait)
	r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(0,"ping")`, "DISCONNECTED", "DESTROYING")
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-srv.Accepted(); ok {
		t.Fatal("Accepted not closed after Close")
	}
}

// TestRawServerTLSWithClient: ss client stream to ss server stream over TLS
// (server_cert/server_key, client trust store), both ends observed.
func TestRawServerTLSWithClient(t *testing.T) {
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "127.0.0.1")
	sst := rawServerType("tlssrv", "127.0.0.1") // port 0: the listener picks one
	sst.TLS = true
	sst.ServerCert, sst.ServerKey = leaf.PolicyCert("c"), leaf.PolicyKey("k")
	rt := newRuntime(t, ss.Config{Policy: newPolicy(sst)})
	ctx := context.Background()
	srv, err := rt.Serve(ctx, "tlssrv")
	if err != nil {
		t.Fatal(err)
	}
	// The client streamtype names the port the listener got.
	cst := rawType("tlscli", "127.0.0.1", srv.Addr().(*net.TCPAddr).Port)
	cst.TLS = true
	cst.TrustStore = ca.TrustStore("ts")
	if err := rt.SetPolicy(newPolicy(sst, cst)); err != nil {
		t.Fatal(err)
	}
	cli, err := rt.Create(ctx, "tlscli")
	if err != nil {
		t.Fatal(err)
	}
	rc := record(t, cli)
	cli.Send(ctx, []byte("hi server"))
	acc := acceptWithin(t, srv, wait)
	ra := record(t, acc)
	ra.untilBytes(wait, 9)
	acc.Send(ctx, []byte("hi client"))
	rc.untilBytes(wait, 9)
	// Destroying the server destroys its accepted streams; the client sees
	// the connection end and, with no retry policy, gives up.
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ra.closed(wait)
	ra.expect("CREATING", "CONNECTING", "CONNECTED", `rx(0,"hi server")`, "DISCONNECTED", "DESTROYING")
	rc.untilState(wait, ss.AllRetriesFailed)
	cli.Destroy(ctx)
	rc.closed(wait)
	rc.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"hi client")`, "DISCONNECTED",
		"ALL_RETRIES_FAILED", "DESTROYING")
}

func TestRawServerUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "srv.sock")
	abstract := fmt.Sprintf("ss-srv-%d-%d", os.Getpid(), time.Now().UnixNano())
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawServerType("p", "+"+path), rawServerType("a", "+@"+abstract))})
	ctx := context.Background()
	for _, c := range []struct{ name, addr string }{{"p", path}, {"a", "@" + abstract}} {
		srv, err := rt.Serve(ctx, c.name)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("unix", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		s := acceptWithin(t, srv, wait)
		r := record(t, s)
		conn.Write([]byte(c.name))
		r.untilBytes(wait, 1)
		conn.Close()
		r.closed(wait)
		r.expect("CREATING", "CONNECTING", "CONNECTED", `rx(0,"`+c.name+`")`, "DISCONNECTED", "DESTROYING")
		srv.Close(ctx)
	}
}

// TestRawServerTLSBadClient: a client that fails the handshake never becomes
// a stream.
func TestRawServerTLSBadClient(t *testing.T) {
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "127.0.0.1")
	sst := rawServerType("tlssrv", "127.0.0.1")
	sst.TLS = true
	sst.ServerCert, sst.ServerKey = leaf.PolicyCert("c"), leaf.PolicyKey("k")
	rt := newRuntime(t, ss.Config{Policy: newPolicy(sst)})
	ctx := context.Background()
	srv, err := rt.Serve(ctx, "tlssrv")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tls.Dial("tcp", srv.Addr().String(), &tls.Config{RootCAs: testutil.NewCA(t).Pool})
	if err == nil {
		t.Fatal("handshake with an untrusted server succeeded")
	}
	select {
	case s := <-srv.Accepted():
		t.Fatalf("stream accepted for a failed handshake: %v", s)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestServeErrors(t *testing.T) {
	busy := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	sst := rawServerType("busy", "127.0.0.1")
	sst.Port = uint16(busy.Port())
	rt := newRuntime(t, ss.Config{Policy: newPolicy(sst, rawType("cli", "127.0.0.1", 1))})
	ctx := context.Background()
	if _, err := rt.Serve(ctx, "busy"); err == nil {
		t.Fatal("Serve on a busy port succeeded")
	}
	if _, err := rt.Serve(ctx, "cli"); !errors.Is(err, ss.ErrServerStreamtype) {
		t.Fatalf("Serve(client type) = %v", err)
	}
	if _, err := rt.Create(ctx, "busy"); !errors.Is(err, ss.ErrServerStreamtype) {
		t.Fatalf("Create(server type) = %v", err)
	}
	if _, err := rt.Create(ctx, "nope"); !errors.Is(err, ss.ErrUnknownStreamtype) {
		t.Fatalf("Create(unknown) = %v", err)
	}
}
