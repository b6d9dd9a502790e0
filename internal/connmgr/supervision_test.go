package connmgr

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/testutil"
)

func receiveOne(t *testing.T, a *Attachment, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-a.Ready():
			for _, m := range a.Receive(nil) {
				if string(m.Payload) == want {
					return
				}
			}
		case <-deadline:
			t.Fatalf("%q not received", want)
		}
	}
}

// TestPanicRestartsOneConnection: a panic in one connection actor restarts
// it under the manager's supervision: its attachments end with
// ErrConnectionLost/ErrRestarted, attaching again connects afresh and
// receives; the connection of another broker identity is untouched.
func TestPanicRestartsOneConnection(t *testing.T) {
	b := broker(t)
	m := New(Config{})
	defer closeManager(t, m)
	ctx := ctxT(t)
	req1 := request(b.Addr, "one", 0)
	req2 := request(b.Addr, "two", 0)
	req2.Identity.ClientID = "ss-other"
	a1, err := m.Attach(ctx, req1)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := m.Attach(ctx, req2)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Detach()
	if err := a1.Subscribe(ctx, "t/1", 1, true); err != nil {
		t.Fatal(err)
	}
	if err := a2.Subscribe(ctx, "t/2", 1, true); err != nil {
		t.Fatal(err)
	}
	if m.PanicConnection(Identity{Network: "tcp", Address: "nowhere"}) {
		t.Fatal("PanicConnection found a connection that does not exist")
	}
	if !m.PanicConnection(req1.Identity) {
		t.Fatal("PanicConnection found no connection")
	}
	select {
	case <-a1.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("attachment of the restarted connection not ended")
	}
	if err := a1.Err(); !errors.Is(err, ErrConnectionLost) || !errors.Is(err, ErrRestarted) {
		t.Fatalf("err = %v, want ErrConnectionLost and ErrRestarted", err)
	}
	a1.Detach()
	// The other identity's connection never noticed.
	if err := b.Publish("t/2", []byte("still here"), false, 1); err != nil {
		t.Fatal(err)
	}
	receiveOne(t, a2, "still here")
	if a2.Err() != nil {
		t.Fatal(a2.Err())
	}
	// Attaching again reconnects through the restarted actor.
	a1, err = m.Attach(ctx, req1)
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Detach()
	if err := a1.Subscribe(ctx, "t/1", 1, true); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("t/1", []byte("back"), false, 1); err != nil {
		t.Fatal(err)
	}
	receiveOne(t, a1, "back")
	if n := len(b.Connects()); n != 3 {
		t.Fatalf("%d broker connections, want 3 (two, then one again)", n)
	}
	if n := m.Connections(); n != 2 {
		t.Fatalf("Connections() = %d, want 2", n)
	}
}

// TestInboundBounded: a stream that never receives holds the broker
// connection's reader back instead of growing its queue: a flood of
// PUBLISHes leaves at most the bound queued (plus what paho had already
// read), and the attachment is evicted after RxStall.
func TestInboundBounded(t *testing.T) {
	b := broker(t)
	const bound = 8
	m := New(Config{RxQueue: bound, RxStall: time.Second})
	defer closeManager(t, m)
	ctx := ctxT(t)
	a, err := m.Attach(ctx, request(b.Addr, "deaf", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	if err := a.Subscribe(ctx, "flood", 0, true); err != nil {
		t.Fatal(err)
	}
	pub := make(chan struct{})
	go func() {
		defer close(pub)
		for range 2000 {
			if b.Publish("flood", []byte("x"), false, 0) != nil {
				return
			}
		}
	}()
	max := 0
	for done := false; !done; {
		select {
		case <-a.Done():
			done = true
		case <-time.After(10 * time.Millisecond):
		}
		a.qmu.Lock()
		if n := len(a.q); n > max {
			max = n
		}
		a.qmu.Unlock()
	}
	<-pub
	if !errors.Is(a.Err(), ErrSlowConsumer) {
		t.Fatalf("err = %v, want ErrSlowConsumer", a.Err())
	}
	// paho reads a few packets past the gate before it shuts.
	if max < bound || max > 4*bound {
		t.Fatalf("queue peaked at %d, want between %d and %d", max, bound, 4*bound)
	}
	t.Logf("queue peaked at %d", max)
}

// TestPanicLoopStopsConnectionActor: a connection actor that keeps
// panicking is stopped after maxRestarts restarts within restartWindow; its
// attachments end, and the next Attach gets a fresh connection actor.
func TestPanicLoopStopsConnectionActor(t *testing.T) {
	b := broker(t)
	m := New(Config{})
	defer closeManager(t, m)
	ctx := ctxT(t)
	req := request(b.Addr, "loop", 0)
	a, err := m.Attach(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	panics := 0
	for m.PanicConnection(req.Identity) {
		panics++
		if panics > 100 {
			t.Fatal("connection actor never stopped")
		}
		time.Sleep(5 * time.Millisecond) // let the restart happen before the next panic
	}
	if panics < maxRestarts+1 {
		t.Fatalf("stopped after %d panics, want at least %d", panics, maxRestarts+1)
	}
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("attachment not ended")
	}
	a2, err := m.Attach(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	a2.Detach()
}

// TestAttachCancelled: an Attach whose ctx ends while the broker connection
// is still being opened returns the ctx's error and leaves nothing behind.
func TestAttachCancelled(t *testing.T) {
	m := New(Config{})
	defer closeManager(t, m)
	dialing := make(chan struct{})
	req := request("127.0.0.1:1", "slow", 0)
	req.Dial = func(ctx context.Context) (net.Conn, error) {
		close(dialing)
		<-ctx.Done() // a broker that never answers
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-dialing; cancel() }()
	if _, err := m.Attach(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("Attach = %v, want context.Canceled", err)
	}
	if !testutil.WaitFor(ctxT(t), func() bool { return m.Connections() == 0 }) {
		t.Fatalf("Connections() = %d after a cancelled Attach", m.Connections())
	}
}
