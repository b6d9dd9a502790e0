package test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
)

// fakeLink is one link of a fake SS proxy speaking SSSv1 through the proxy
// package's codec.
type fakeLink struct {
	t    *testing.T
	c    net.Conn
	dec  *proxy.Decoder
	msgs chan proxy.Message
	errs chan error
}

func acceptFakeLink(t *testing.T, ln net.Listener) *fakeLink {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	var r res
	select {
	case r = <-ch:
	case <-time.After(wait):
		t.Fatal("no link from the client")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	l := &fakeLink{t: t, c: r.c, dec: proxy.NewDecoder(r.c, proxy.ClientToProxy, proxy.Limits{}),
		msgs: make(chan proxy.Message, 1024), errs: make(chan error, 1)}
	go func() {
		for {
			m, err := l.dec.Next()
			if err != nil {
				l.errs <- err
				close(l.msgs)
				return
			}
			l.msgs <- m
		}
	}()
	t.Cleanup(func() { l.c.Close() })
	return l
}

// next returns the next frame from the client.
func (l *fakeLink) next() proxy.Message {
	l.t.Helper()
	select {
	case m, ok := <-l.msgs:
		if !ok {
			l.t.Fatalf("link ended: %v", <-l.errs)
		}
		return m
	case <-time.After(wait):
		l.t.Fatal("no frame from the client")
	}
	return nil
}

func (l *fakeLink) send(m interface{ AppendBinary([]byte) ([]byte, error) }) {
	l.t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		l.t.Fatal(err)
	}
	if _, err := l.c.Write(b); err != nil {
		l.t.Fatal(err)
	}
}

// create answers STREAMTYPE with CREATE_RESULT ok and CONNSTATE CREATING.
func (l *fakeLink) create(name string) {
	l.t.Helper()
	if m, ok := l.next().(*proxy.StreamType); !ok || m.Name != name {
		l.t.Fatalf("first frame %#v, want STREAMTYPE %q", m, name)
	}
	l.send(&proxy.CreateResult{Result: proxy.ResultOK, Rideshares: []string{name}})
	l.send(&proxy.ConnState{State: event.Creating})
}

// waitConnectRequest reads frames until ONWARD_CONNECT or
// PAYLOAD_LENGTH_HINT (either asks the onward stream to connect).
func (l *fakeLink) waitConnectRequest() proxy.Message {
	l.t.Helper()
	for {
		switch m := l.next().(type) {
		case *proxy.OnwardConnect, *proxy.PayloadLengthHint:
			return m
		case *proxy.TxPayload:
			l.t.Fatalf("TX_PAYLOAD before CONNECTED")
		}
	}
}

// TestProxiedReconnectTxPending: the proxy reports DISCONNECTED and then
// drops the link while a Send is blocked (the client's tx queue is full):
// on the new link the client asks for the onward connection again, and the
// blocked Send completes once it is up.
func TestProxiedReconnectTxPending(t *testing.T) {
	t.Parallel()
	name := abstractName()
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rt := newRuntime(t, ss.Config{Proxy: "unix:" + name, TxBuffer: 1024})
	ctx := context.Background()
	s, err := rt.Create(ctx, "fake")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	first := make([]byte, 1024)
	if err := s.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- s.Send(ctx, []byte("second")) }()

	l1 := acceptFakeLink(t, ln)
	l1.create("fake")
	l1.waitConnectRequest()
	l1.send(&proxy.ConnState{State: event.Poll})
	l1.send(&proxy.ConnState{State: event.Connecting})
	select {
	case err := <-sent:
		t.Fatalf("second Send returned %v before the stream connected (want it blocked)", err)
	case <-time.After(100 * time.Millisecond):
	}
	l1.send(&proxy.ConnState{State: event.Disconnected})
	r.untilState(wait, ss.Disconnected)
	l1.c.Close()

	l2 := acceptFakeLink(t, ln)
	l2.create("fake")
	l2.waitConnectRequest()
	l2.send(&proxy.ConnState{State: event.Connecting})
	l2.send(&proxy.ConnState{State: event.Connected})
	got := 0
	for got < len(first)+len("second") {
		m, ok := l2.next().(*proxy.TxPayload)
		if !ok {
			continue
		}
		got += len(m.Payload)
	}
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("second Send: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("second Send still blocked after the new link connected")
	}
	r.untilState(wait, ss.Connected)
	if err := s.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r.closed(wait)
	r.expect("CREATING", "POLL", "CONNECTING", "DISCONNECTED", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING")
}
