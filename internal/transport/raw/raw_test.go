package raw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, testutil.GoleakOptions()...)
}

// sink records what the transport reports.
type sink struct {
	mu     sync.Mutex
	states []event.State
	rx     []byte
	flags  []event.Flags
	perf   [][]byte
	valid  int
}

func (s *sink) State(st event.State, _ uint32) {
	s.mu.Lock()
	s.states = append(s.states, st)
	s.mu.Unlock()
}
func (s *sink) SetMetadata(string, string) {}
func (s *sink) ValidityConfirmed()         { s.mu.Lock(); s.valid++; s.mu.Unlock() }
func (s *sink) Logger() *slog.Logger       { return slog.New(slog.DiscardHandler) }
func (s *sink) Rx(_ context.Context, p []byte, f event.Flags) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f&event.PerfJSON != 0 {
		s.perf = append(s.perf, p)
		return nil
	}
	s.rx = append(s.rx, p...)
	s.flags = append(s.flags, f)
	return nil
}

// tx is a TxSource fed by a channel.
type tx struct{ ch chan []byte }

func (t *tx) Next(ctx context.Context) (transport.Chunk, error) {
	select {
	case p := <-t.ch:
		return transport.Chunk{Data: p, Len: -1}, nil
	case <-ctx.Done():
		return transport.Chunk{}, context.Cause(ctx)
	}
}
func (t *tx) Pending() bool  { return len(t.ch) > 0 }
func (t *tx) LenHint() int64 { return -1 }

func attempt(st *policy.Streamtype, t *tx) *transport.Attempt {
	return &transport.Attempt{Type: st, Tx: t, Env: transport.Env{}.Defaults()}
}

func TestClientEchoAndPeerClose(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) {
		buf := make([]byte, 5)
		io.ReadFull(c, buf)
		c.Write(buf) // then close: an orderly end
	})
	st := &policy.Streamtype{Name: "r", Protocol: policy.Raw, Endpoint: "127.0.0.1", Port: uint16(srv.Port()), ClientCert: -1, Perf: true}
	tq := &tx{ch: make(chan []byte, 1)}
	tq.ch <- []byte("hello")
	k := &sink{}
	res := New(transport.Env{}.Defaults()).Run(context.Background(), attempt(st, tq), k)
	if res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	if string(k.rx) != "hello" || len(k.states) != 1 || k.states[0] != event.Connected || k.valid != 1 {
		t.Fatalf("rx %q states %v valid %d", k.rx, k.states, k.valid)
	}
	for _, f := range k.flags {
		if f != 0 {
			t.Fatalf("raw rx flags %v", f)
		}
	}
	if len(k.perf) != 1 {
		t.Fatalf("%d perf reports", len(k.perf))
	}
	var rep map[string]any
	if err := json.Unmarshal(k.perf[0], &rep); err != nil || rep["peer"] != "127.0.0.1" {
		t.Fatalf("perf %s: %v", k.perf[0], err)
	}
	if _, ok := rep["prot_specific"]; ok {
		t.Fatal("raw perf report has prot_specific")
	}
}

func TestClientCancel(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Discard)
	st := &policy.Streamtype{Name: "r", Protocol: policy.Raw, Endpoint: "127.0.0.1", Port: uint16(srv.Port()), ClientCert: -1}
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop")
	time.AfterFunc(50*time.Millisecond, func() { cancel(stop) })
	res := New(transport.Env{}.Defaults()).Run(ctx, attempt(st, &tx{ch: make(chan []byte)}), &sink{})
	if !errors.Is(res.Err, stop) {
		t.Fatalf("Run after cancel: %v, want the cause", res.Err)
	}
}

func TestClientRefusedAndBadEndpoint(t *testing.T) {
	// Nothing listens at a socket path in a fresh directory: refused at once.
	missing := "+" + filepath.Join(t.TempDir(), "none.sock")
	for _, ep := range []string{missing, "", "[::1"} {
		st := &policy.Streamtype{Name: "r", Protocol: policy.Raw, Endpoint: ep, Port: 1, ClientCert: -1, Perf: true}
		k := &sink{}
		res := New(transport.Env{}.Defaults()).Run(context.Background(), attempt(st, &tx{}), k)
		if res.Err == nil || len(k.states) != 0 || len(k.perf) != 1 {
			t.Fatalf("endpoint %q: err %v states %v perf %d", ep, res.Err, k.states, len(k.perf))
		}
	}
}

func TestListenAddr(t *testing.T) {
	for _, c := range []struct {
		ep      string
		port    uint16
		network string
		addr    string
	}{
		{"127.0.0.1", 80, "tcp", "127.0.0.1:80"},
		{"", 8080, "tcp", ":8080"},
		{"[::1]", 1, "tcp", "[::1]:1"},
		{"+/tmp/x.sock", 0, "unix", "/tmp/x.sock"},
		{"+@name", 0, "unix", "@name"},
	} {
		n, a, err := ListenAddr(&policy.Streamtype{Endpoint: c.ep, Port: c.port})
		if err != nil || n != c.network || a != c.addr {
			t.Errorf("%q: %s %s %v", c.ep, n, a, err)
		}
	}
	for _, ep := range []string{"+", "+@", "!other"} {
		if _, _, err := ListenAddr(&policy.Streamtype{Endpoint: ep}); !errors.Is(err, transport.ErrEndpoint) {
			t.Errorf("%q: %v", ep, err)
		}
	}
	if _, err := ServerTLSConfig(&policy.Streamtype{Name: "s", TLS: true}); !errors.Is(err, transport.ErrTLS) {
		t.Errorf("TLS without cert: %v", err)
	}
}

// TestServerListenerClose: Close stops accepting and waits; connections
// accepted before are the runtime's to serve.
func TestServerListenerClose(t *testing.T) {
	st := &policy.Streamtype{Name: "s", Protocol: policy.Raw, Endpoint: "127.0.0.1", Server: true}
	accepted := make(chan transport.ServerConn, 1)
	ln, err := NewServer(nil).Listen(context.Background(), st, transport.Env{}.Defaults(), func(c transport.ServerConn) { accepted <- c })
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	k := &sink{}
	done := make(chan transport.Result)
	go func() { done <- sc.Serve(context.Background(), attempt(st, &tx{ch: make(chan []byte)}), k) }()
	c.Write([]byte("x"))
	c.Close()
	if res := <-done; res.Err != nil {
		t.Fatalf("Serve: %v", res.Err)
	}
	if string(k.rx) != "x" || len(k.states) != 1 || k.states[0] != event.Connected {
		t.Fatalf("rx %q states %v", k.rx, k.states)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("dial after Close succeeded")
	}
}
