package test

import (
	"context"
	"github.com/securestreams/ss/internal/ssbridge"
	"net"
	"testing"
	"time"

	"github.com/securestreams/ss"
	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/proxy"
)

// TestProxyTxCredit: the advisory credit of a proxied stream (docs/wire.md §7.1)
// against a hand-written proxy: EstPeerTxCredit starts at the STREAMTYPE
// credit, drops with each payload byte received and grows with
// AddPeerTxCredit, which sends TXCR_UPDATE 0xAF; TxCredit follows the
// proxy's TXCR_UPDATE 0x58. Local streams report 0 and ignore grants.
func TestProxyTxCredit(t *testing.T) {
	name := abstractName()
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan proxy.Message, 16)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		dec := proxy.NewDecoder(c, proxy.ClientToProxy, proxy.Limits{})
		if _, err := dec.Next(); err != nil { // STREAMTYPE
			return
		}
		b, _ := proxy.Append(nil, &proxy.CreateResult{Result: proxy.ResultOK, Rideshares: []string{"cr"}},
			&proxy.ConnState{State: event.Creating}, &proxy.ConnState{State: event.Connecting},
			&proxy.ConnState{State: event.Connected},
			&proxy.RxCredit{Delta: 5000},
			&proxy.RxPayload{Flags: event.SOM | event.EOM, Payload: make([]byte, 100)})
		c.Write(b)
		for {
			m, err := dec.Next()
			if err != nil {
				return
			}
			got <- m
		}
	}()
	rt := newRuntime(t, ss.Config{Proxy: "unix:" + name})
	ctx := context.Background()
	s, err := rt.Create(ctx, "cr")
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, s)
	r.untilBytes(wait, 100)
	if c := ssbridge.EstPeerTxCredit(s); c != proxy.DefaultCredit-100 {
		t.Fatalf("EstPeerTxCredit %d, want %d", c, proxy.DefaultCredit-100)
	}
	if c := ssbridge.TxCredit(s); c != 5000 {
		t.Fatalf("TxCredit %d, want 5000", c)
	}
	ssbridge.AddPeerTxCredit(s, 1000)
	if c := ssbridge.EstPeerTxCredit(s); c != proxy.DefaultCredit-100+1000 {
		t.Fatalf("EstPeerTxCredit after a grant %d, want %d", c, proxy.DefaultCredit+900)
	}
	deadline := time.After(wait)
	for {
		select {
		case m := <-got:
			if cr, ok := m.(*proxy.TxCredit); ok {
				if cr.Delta != 1000 {
					t.Fatalf("TXCR_UPDATE delta %d, want 1000", cr.Delta)
				}
				goto sent
			}
		case <-deadline:
			t.Fatal("no TXCR_UPDATE after AddPeerTxCredit")
		}
	}
sent:
	if err := s.Send(ctx, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ssbridge.TxCredit(s) != 4990; time.Sleep(time.Millisecond) {
		if time.Since(start) > wait {
			t.Fatalf("TxCredit %d after sending 10 bytes, want 4990", ssbridge.TxCredit(s))
		}
	}

	srv := hangingServer(t)
	local := newRuntime(t, ss.Config{Policy: newPolicy(rawType("l", "127.0.0.1", srv.Port()))})
	ls, err := local.Create(ctx, "l")
	if err != nil {
		t.Fatal(err)
	}
	lr := record(t, ls)
	ssbridge.AddPeerTxCredit(ls, 1000)
	if ssbridge.EstPeerTxCredit(ls) != 0 || ssbridge.TxCredit(ls) != 0 {
		t.Fatalf("local stream credit %d/%d, want 0/0", ssbridge.EstPeerTxCredit(ls), ssbridge.TxCredit(ls))
	}
	ls.Destroy(ctx)
	lr.closed(wait)
	s.Destroy(ctx)
	r.closed(wait)
}
