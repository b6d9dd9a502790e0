package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
	"github.com/securestreams/ss/policy"
)

// recvAll reads with Recv until io.EOF and renders the events.
func recvAll(t *testing.T, s *Stream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for {
		ev, err := s.Recv(ctx)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Recv: %v after %v", err, out)
		}
		if ev.Kind == event.PayloadEvent {
			out = append(out, string(ev.Payload))
		} else {
			out = append(out, ev.State.String())
		}
	}
}

// TestRecvStatesAndEnd: Recv gives the states in order, DESTROYING last,
// then io.EOF; the Events channel is closed after it as in push mode.
func TestRecvStatesAndEnd(t *testing.T) {
	e := newEnv(t)
	s, err := New(e.h, Config{Policy: &policy.Policy{}, Type: st("r", nil), Protocol: &fakeProto{run: connectAndHold}})
	if err != nil {
		t.Fatal(err)
	}
	s.RequestTx()
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Destroy(context.Background())
	}()
	got := fmt.Sprint(recvAll(t, s))
	if want := "[CREATING POLL CONNECTING CONNECTED DISCONNECTED DESTROYING]"; got != want {
		t.Fatalf("Recv gave %s, want %s", got, want)
	}
	if _, ok := <-s.Events(); ok {
		t.Fatal("Events open after DESTROYING")
	}
	if _, err := s.Recv(context.Background()); err != io.EOF {
		t.Fatalf("Recv again: %v, want io.EOF", err)
	}
}

// TestRecvBudget: a transport that receives more than the receive budget
// waits for room (pushRx) and Recv's reads make it (popLocked): every
// chunk arrives once, in order.
func TestRecvBudget(t *testing.T) {
	e := newEnv(t)
	const chunks = 300
	p := &fakeProto{run: func(_ int, ctx context.Context, _ *transport.Attempt, sink transport.Sink) transport.Result {
		sink.State(event.Connected, 0)
		for i := range chunks {
			if err := sink.Rx(ctx, fmt.Appendf(make([]byte, 0, 1024), "%1024d", i), 0); err != nil {
				return transport.Result{Err: err}
			}
		}
		<-ctx.Done()
		return transport.Result{Err: context.Cause(ctx)}
	}}
	s, err := New(e.h, Config{Policy: &policy.Policy{}, Type: st("r", nil), Protocol: p, RxBudget: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s.RequestTx()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < chunks; {
		ev, err := s.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv at chunk %d: %v", i, err)
		}
		if ev.Kind != event.PayloadEvent {
			continue
		}
		if want := fmt.Sprintf("%1024d", i); string(ev.Payload) != want {
			t.Fatalf("chunk %d: got %.20q…", i, ev.Payload)
		}
		i++
	}
	s.Destroy(context.Background())
	if got := fmt.Sprint(recvAll(t, s)); got != "[DISCONNECTED DESTROYING]" {
		t.Fatalf("after the payload: %s", got)
	}
}

// TestRecvDeliverRefused: a stream whose events go to Config.Deliver has
// no queue for Recv.
func TestRecvDeliverRefused(t *testing.T) {
	e := newEnv(t)
	s, err := New(e.h, Config{Policy: &policy.Policy{}, Type: st("r", nil), Protocol: &fakeProto{run: hang},
		Deliver: func(event.Event, bool) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(context.Background()); !errors.Is(err, ErrRecvDeliver) {
		t.Fatalf("Recv: %v, want ErrRecvDeliver", err)
	}
	s.Destroy(context.Background())
}
