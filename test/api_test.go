package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
	"github.com/securestreams/ss/policy"
)

// TestIteratorAndSendFromLoop: All() ranges over events; Send and Destroy
// are called from inside the loop.
func TestIteratorAndSendFromLoop(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	st := rawType("it", "127.0.0.1", srv.Port())
	st.NailedUp = true
	rt := newRuntime(t, ss.Config{Policy: newPolicy(st)})
	ctx := context.Background()
	s, err := rt.Create(ctx, "it")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	payload := ""
	defer watchdog(t, s, wait).Stop()
	for ev := range s.All() {
		if ev.Kind == ss.StateEvent {
			got = append(got, ev.State.String())
			if ev.State == ss.Connected {
				if err := s.Send(ctx, []byte("abc")); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		payload += string(ev.Payload)
		if payload == "abc" {
			if err := s.Destroy(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fmt.Sprint(got) != "[CREATING CONNECTING CONNECTED DISCONNECTED DESTROYING]" || payload != "abc" {
		t.Fatalf("states %v payload %q", got, payload)
	}
}

// TestCloseWithUnreadEvents: Close does not hang on an application that
// never reads: once the transports have stopped (well within ctx) the
// undelivered events are dropped, the channel is closed and Close returns
// nil; nothing leaks.
func TestCloseWithUnreadEvents(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	st := rawType("unread", "127.0.0.1", srv.Port())
	st.NailedUp = true
	rt, err := ss.New(context.Background(), ss.Config{Policy: newPolicy(st)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Create(context.Background(), "unread")
	if err != nil {
		t.Fatal(err)
	}
	s.Send(context.Background(), []byte("nobody reads this"))
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("Close = %v, want nil (the transports stopped in time)", err)
	}
	for range s.Events() {
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v, want the first result", err)
	}
	if _, err := rt.Create(context.Background(), "unread"); !errors.Is(err, ss.ErrClosed) {
		t.Fatalf("Create after Close = %v", err)
	}
}

// TestSetPolicyKeepsExisting: streams keep the policy they were created
// with; new streams use the new one (docs/streams.md §13.1).
func TestSetPolicyKeepsExisting(t *testing.T) {
	a := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) { c.Write([]byte("A")); testutil.Discard(c) })
	b := testutil.Listen(t, "tcp", "", nil, func(c net.Conn) { c.Write([]byte("B")); testutil.Discard(c) })
	rt := newRuntime(t, ss.Config{Policy: newPolicy(rawType("x", "127.0.0.1", a.Port()))})
	ctx := context.Background()
	s1, err := rt.Create(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.SetPolicy(newPolicy(rawType("x", "127.0.0.1", b.Port()))); err != nil {
		t.Fatal(err)
	}
	s2, err := rt.Create(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[*ss.Stream]string{s1: "A", s2: "B"} {
		r := record(t, s)
		s.Connect()
		r.untilBytes(wait, 1)
		if r.payload() != want {
			t.Fatalf("stream got %q, want %q", r.payload(), want)
		}
		s.Destroy(ctx)
		r.closed(wait)
	}
	if err := rt.SetPolicy(nil); !errors.Is(err, ss.ErrNoPolicy) {
		t.Fatalf("SetPolicy(nil) = %v", err)
	}
}

// TestMetadataEndpoint: WithMetadata values are substituted into the
// endpoint at every attempt (docs/streams.md §9.3), from a parsed policy.
func TestMetadataEndpoint(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	p, _, err := policy.Parse([]byte(fmt.Sprintf(`{"s": [{"m": {
		"protocol": "raw", "endpoint": "${host}:${port}",
		"metadata": [{"host": ""}, {"port": ""}]}}]}`)), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, ss.Config{Policy: p})
	ctx := context.Background()
	s, err := rt.Create(ctx, "m", ss.WithMetadata("host", "127.0.0.1"), ss.WithMetadata("port", itoa(srv.Port())))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Metadata("host"); !ok || v != "127.0.0.1" {
		t.Fatalf("Metadata(host) = %q, %v", v, ok)
	}
	if err := s.SetMetadata("undeclared", "x"); !errors.Is(err, ss.ErrUndeclaredMetadata) {
		t.Fatalf("SetMetadata(undeclared) = %v", err)
	}
	r := record(t, s)
	s.Send(ctx, []byte("m"))
	r.untilBytes(wait, 1)
	s.Destroy(ctx)
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "CONNECTED", `rx(0,"m")`, "DISCONNECTED", "DESTROYING")
	if _, err := rt.Create(ctx, "m", ss.WithMetadata("nope", "x")); !errors.Is(err, ss.ErrUndeclaredMetadata) {
		t.Fatalf("Create with undeclared metadata = %v", err)
	}
	if rt.Stats().Streams != 0 {
		t.Fatalf("Streams = %d after a failed Create", rt.Stats().Streams)
	}
}

func TestCreateErrors(t *testing.T) {
	sink := rawType("sink", "127.0.0.1", 1)
	sink.LocalSink = true
	rt := newRuntime(t, ss.Config{Policy: newPolicy(sink)})
	if _, err := rt.Create(context.Background(), "sink"); !errors.Is(err, ss.ErrUnsupportedProtocol) {
		t.Fatalf("Create(local_sink) = %v", err)
	}
	if _, err := ss.New(context.Background(), ss.Config{}); !errors.Is(err, ss.ErrNoPolicy) {
		t.Fatalf("New without policy = %v", err)
	}
}
