package test

import (
	"context"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/testutil"
)

// closeBound is how long Close(context.Background()) may take once the
// transports have stopped: the documented bound is 1 s; the rest is room
// for a loaded machine.
const closeBound = 3 * time.Second

// closeReturns closes rt with context.Background() and checks it returns
// within closeBound, then that every stream's channel is closed.
func closeReturns(t *testing.T, rt *ss.Runtime, streams ...*ss.Stream) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- rt.Close(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(closeBound):
		t.Fatalf("Close(context.Background()) still running after %v", closeBound)
	}
	t.Logf("Close took %v", time.Since(start))
	for i, s := range streams {
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for range s.Events() {
			}
		}()
		select {
		case <-drained:
		case <-time.After(wait):
			t.Fatalf("stream %d: channel not closed after Close", i)
		}
	}
	if n := rt.Stats().IllegalTransitions; n != 0 {
		t.Fatalf("IllegalTransitions = %d", n)
	}
}

// TestCloseNeverConnectedUnread: a stream that never connected and whose
// events nobody read does not keep Close from returning.
func TestCloseNeverConnectedUnread(t *testing.T) {
	rt, err := ss.New(context.Background(), ss.Config{Policy: newPolicy(rawType("idle", "127.0.0.1", 1))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Create(context.Background(), "idle")
	if err != nil {
		t.Fatal(err)
	}
	closeReturns(t, rt, s)
}

// TestCloseAfterBreak: breaking out of All() leaves the rest unread; Close
// still returns and closes the channel.
func TestCloseAfterBreak(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt, err := ss.New(context.Background(), ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := rt.Create(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for ev := range s.All() {
		if ev.Kind == ss.StateEvent && ev.State == ss.Connected {
			break
		}
	}
	closeReturns(t, rt, s)
}

// TestCloseUnreadConnected: connected streams with payload queued and
// nobody reading; Close returns.
func TestCloseUnreadConnected(t *testing.T) {
	srv := testutil.Listen(t, "tcp", "", nil, testutil.Echo)
	rt, err := ss.New(context.Background(), ss.Config{Policy: newPolicy(rawType("echo", "127.0.0.1", srv.Port()))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var streams []*ss.Stream
	for range 3 {
		s, err := rt.Create(ctx, "echo")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, []byte("unread reply")); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	time.Sleep(200 * time.Millisecond) // the replies arrive and wait
	closeReturns(t, rt, streams...)
}

// TestCloseDeliversToReaders: a stream whose events are being read gets
// them all, DESTROYING last, when the runtime closes.
func TestCloseDeliversToReaders(t *testing.T) {
	rt, err := ss.New(context.Background(), ss.Config{Policy: newPolicy(rawType("idle", "127.0.0.1", 1))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.Create(context.Background(), "idle")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	r.untilState(wait, ss.Creating)
	go rt.Close(context.Background())
	r.closed(wait)
	r.expect("CREATING", "DESTROYING")
	<-rt.Done()
}
