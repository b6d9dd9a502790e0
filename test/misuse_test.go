package test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// The calls that never block take no ctx (a compile-time check).
var (
	_ func() error    = (*ss.Stream)(nil).RequestTx
	_ func() error    = (*ss.Stream)(nil).Connect
	_ func() error    = (*ss.Stream)(nil).Disconnect
	_ func(int) error = (*ss.Stream)(nil).Respond
)

// TestCancelledSendTransmitsNothing: Send and Write with a ctx that is
// already done return its error and queue nothing; the peer receives only
// what was sent with a live ctx.
func TestCancelledSendTransmitsNothing(t *testing.T) {
	var mu sync.Mutex
	var got []byte
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 256)
		for {
			n, err := c.Read(buf)
			mu.Lock()
			got = append(got, buf[:n]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("sink", "127.0.0.1", srv.Port()))})
	ctx := context.Background()
	s, err := rt.Create(ctx, "sink")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Send(done, []byte("bad")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send(cancelled) = %v, want context.Canceled", err)
	}
	if err := s.Write(done, []byte("worse"), ss.SOM|ss.EOM); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write(cancelled) = %v, want context.Canceled", err)
	}
	if tx := s.Stats().TxBytes; tx != 0 {
		t.Fatalf("TxBytes = %d after cancelled sends, want 0", tx)
	}
	if err := s.Send(ctx, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	r.untilState(wait, ss.Connected)
	deadline := time.Now().Add(wait)
	for {
		mu.Lock()
		g := string(got)
		mu.Unlock()
		if g == "ok" {
			break
		}
		if len(g) > 2 || time.Now().After(deadline) {
			t.Fatalf("peer received %q, want \"ok\"", g)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if string(got) != "ok" {
		t.Fatalf("peer received %q, want \"ok\"", got)
	}
}

// TestDestroyCancelledCtx: Destroy with a ctx already done destroys the
// stream and returns nil.
func TestDestroyCancelledCtx(t *testing.T) {
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("idle", "127.0.0.1", 1))})
	s, err := rt.Create(context.Background(), "idle")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Destroy(done); err != nil {
		t.Fatalf("Destroy(cancelled) = %v, want nil", err)
	}
	r.closed(wait)
	r.expect("CREATING", "DESTROYING")
	if err := s.Send(context.Background(), []byte("x")); !errors.Is(err, ss.ErrDestroyed) {
		t.Fatalf("Send after Destroy = %v, want ErrDestroyed", err)
	}
}

// TestNilOption: a nil Option is an error naming its position, not a panic.
func TestNilOption(t *testing.T) {
	srvType := &policy.Streamtype{Name: "srv", Protocol: policy.Raw, Server: true, Endpoint: "127.0.0.1", ClientCert: -1}
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("idle", "127.0.0.1", 1), srvType)})
	ctx := context.Background()
	var nilOpt ss.Option
	if _, err := rt.Create(ctx, "idle", nilOpt); !errors.Is(err, ss.ErrNilOption) {
		t.Fatalf("Create(nil option) = %v, want ErrNilOption", err)
	}
	if _, err := rt.Serve(ctx, "srv", nilOpt); !errors.Is(err, ss.ErrNilOption) {
		t.Fatalf("Serve(nil option) = %v, want ErrNilOption", err)
	}
}

// TestCallsAfterClose: every call after Close is ErrClosed; a stream's
// calls return an error that is both ErrClosed and ErrDestroyed.
func TestCallsAfterClose(t *testing.T) {
	srvType := &policy.Streamtype{Name: "srv", Protocol: policy.Raw, Server: true, Endpoint: "127.0.0.1", ClientCert: -1}
	pol := newPolicy(rawType("idle", "127.0.0.1", 1), srvType)
	rt, err := ss.New(context.Background(), ss.Config{Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := rt.Create(ctx, "idle")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Create(ctx, "idle"); !errors.Is(err, ss.ErrClosed) {
		t.Errorf("Create = %v", err)
	}
	if _, err := rt.Create(ctx, "no such type"); !errors.Is(err, ss.ErrClosed) {
		t.Errorf("Create(unknown) = %v", err)
	}
	if _, _, err := rt.CreateProps(ctx, "idle"); !errors.Is(err, ss.ErrClosed) {
		t.Errorf("CreateProps = %v", err)
	}
	if _, err := rt.Serve(ctx, "srv"); !errors.Is(err, ss.ErrClosed) {
		t.Errorf("Serve = %v", err)
	}
	if err := rt.SetPolicy(pol); !errors.Is(err, ss.ErrClosed) {
		t.Errorf("SetPolicy = %v", err)
	}
	ln, err := net.Listen("unix", abstractName())
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.ServeProxy(ctx, ln); !errors.Is(err, ss.ErrClosed) {
		t.Errorf("ServeProxy = %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("ServeProxy after Close left the listener open")
	}
	for name, err := range map[string]error{
		"Send":         s.Send(ctx, []byte("x")),
		"Write":        s.Write(ctx, []byte("x"), ss.SOM|ss.EOM),
		"RequestTx":    s.RequestTx(),
		"Connect":      s.Connect(),
		"Disconnect":   s.Disconnect(),
		"SetMetadata":  s.SetMetadata("x", "y"),
		"StartTimeout": s.StartTimeout(time.Second),
	} {
		if !errors.Is(err, ss.ErrClosed) || !errors.Is(err, ss.ErrDestroyed) {
			t.Errorf("%s after Close = %v, want ErrClosed and ErrDestroyed", name, err)
		}
	}
	if err := s.Destroy(ctx); err != nil {
		t.Errorf("Destroy after Close = %v, want nil", err)
	}
}

// TestProxiedFirstEventCreating: a proxied stream whose proxy is not
// running starts with CREATING, then UPSTREAM_LINK_RETRY.
func TestProxiedFirstEventCreating(t *testing.T) {
	rt := newRuntime(t, ss.Config{Proxy: "unix:" + abstractName()})
	ctx := context.Background()
	s, err := rt.Create(ctx, "anything")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	r.untilState(wait, ss.UpstreamLinkRetry)
	if r.ev[0].State != ss.Creating {
		t.Fatalf("first event %v, want CREATING; events %s", r.ev[0], r.String())
	}
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r.closed(wait)
}
