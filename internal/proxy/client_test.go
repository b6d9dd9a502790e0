package proxy

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
	"github.com/securestreams/ss/internal/transport"
)

// fakeLocal is a Local recording states and rx, with a simple tx queue.
type fakeLocal struct {
	mu        sync.Mutex
	states    []event.State
	acks      []uint32
	rx        [][]byte
	chunks    []transport.Chunk
	avail     chan struct{}
	connected bool
	cur       event.State
	stateCh   chan event.State
	wg        sync.WaitGroup
	start     time.Time
}

func newFakeLocal() *fakeLocal {
	return &fakeLocal{avail: make(chan struct{}, 1), stateCh: make(chan event.State, 64), start: time.Now()}
}

func (f *fakeLocal) State(st event.State, ack uint32, _ error) {
	f.mu.Lock()
	f.states = append(f.states, st)
	f.acks = append(f.acks, ack)
	if st == event.Connected {
		f.connected = true
	}
	if st == event.Disconnected || st == event.Unreachable {
		f.connected = false
	}
	if st != event.UpstreamLinkRetry {
		f.cur = st
	}
	f.mu.Unlock()
	f.stateCh <- st
}
func (f *fakeLocal) WaitRoom(context.Context) error { return nil }

// LinkEnded decides as stream.Remote does: DISCONNECTED when connected, or
// when asked and an attempt was under way.
func (f *fakeLocal) LinkEnded(asked bool, cause error) {
	f.mu.Lock()
	up, cur := f.connected, f.cur
	f.mu.Unlock()
	switch {
	case up:
	case asked && (cur == event.Connecting || cur == event.Poll):
	default:
		return
	}
	f.State(event.Disconnected, 0, cause)
}

func (f *fakeLocal) Rx(ctx context.Context, data []byte, flags event.Flags) error {
	f.mu.Lock()
	f.rx = append(f.rx, data)
	f.mu.Unlock()
	return nil
}
func (f *fakeLocal) push(c transport.Chunk) {
	f.mu.Lock()
	f.chunks = append(f.chunks, c)
	f.mu.Unlock()
	select {
	case f.avail <- struct{}{}:
	default:
	}
}
func (f *fakeLocal) TakeTx(dst []transport.Chunk) []transport.Chunk {
	f.mu.Lock()
	defer f.mu.Unlock()
	dst = append(dst, f.chunks...)
	f.chunks = nil
	return dst
}
func (f *fakeLocal) NextTx(ctx context.Context, dst []transport.Chunk) ([]transport.Chunk, error) {
	for {
		if d := f.TakeTx(dst); len(d) > len(dst) {
			return d, nil
		}
		select {
		case <-f.avail:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}
func (f *fakeLocal) ReleaseTx([]transport.Chunk) {}
func (f *fakeLocal) PeekTx() (int64, bool, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.chunks) > 0 && f.chunks[0].Len >= 0 {
		return -1, true, f.chunks[0].Len
	}
	return -1, len(f.chunks) > 0, -1
}
func (f *fakeLocal) ArmTx() bool          { f.mu.Lock(); defer f.mu.Unlock(); return len(f.chunks) > 0 }
func (f *fakeLocal) SetRideshare(string)  {}
func (f *fakeLocal) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }
func (f *fakeLocal) Since() time.Duration { return time.Since(f.start) }
func (f *fakeLocal) Go(fn func())         { f.wg.Add(1); go func() { defer f.wg.Done(); fn() }() }
func (f *fakeLocal) waitState(t *testing.T, want event.State) {
	t.Helper()
	for {
		select {
		case st := <-f.stateCh:
			if st == want {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s; states %v", want, f.states)
		}
	}
}

// proxyPeer accepts links on an abstract socket and hands each to the test.
func proxyPeer(t *testing.T) (string, chan net.Conn) {
	t.Helper()
	name := "@ss-proxy-client-" + t.Name() + "-" + time.Now().Format("150405.000000000")
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return "unix:" + name, conns
}

func startClient(t *testing.T, addr, name string) (*ClientStream, *fakeLocal) {
	t.Helper()
	c, err := NewClient(ClientConfig{Address: addr, RetryInterval: 50 * time.Millisecond, CreateTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := c.NewStream(name)
	if err != nil {
		t.Fatal(err)
	}
	l := newFakeLocal()
	cs.Start(l)
	t.Cleanup(func() { cs.Close(); l.wg.Wait() })
	return cs, l
}

// peerLink wraps the proxy side of one link.
type peerLink struct {
	t   *testing.T
	c   net.Conn
	dec *Decoder
}

func acceptLink(t *testing.T, conns chan net.Conn) *peerLink {
	t.Helper()
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return &peerLink{t: t, c: c, dec: NewDecoder(c, ClientToProxy, Limits{})}
	case <-time.After(5 * time.Second):
		t.Fatal("no link")
		return nil
	}
}

func (p *peerLink) next() Message {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	m, err := p.dec.Next()
	if err != nil {
		p.t.Fatalf("proxy side: %v", err)
	}
	return m
}

// nothing asserts the client sends nothing for d.
func (p *peerLink) nothing(d time.Duration) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(d))
	if m, err := p.dec.Next(); err == nil {
		p.t.Fatalf("client sent %#v", m)
	}
	p.dec.Reset(p.c) // clear the sticky timeout
}

func (p *peerLink) send(raw []byte) {
	p.t.Helper()
	if _, err := p.c.Write(raw); err != nil {
		p.t.Fatal(err)
	}
}

// TestClientLinkLifecycle: queued operations wait for CREATE_RESULT (W12),
// a list without the leading comma is accepted (W1), CREATING once, TX
// split into ≤ 4061-byte frames only in OPERATIONAL, link loss gives
// DISCONNECTED and a re-creation that re-sends metadata without a second
// CREATING.
func TestClientLinkLifecycle(t *testing.T) {
	addr, conns := proxyPeer(t)
	cs, l := startClient(t, addr, "mintest")
	if err := cs.SetMetadata("ctype", "text/plain"); err != nil {
		t.Fatal(err)
	}
	if err := cs.SetMetadata("", "x"); err == nil {
		t.Fatal("empty name accepted")
	}
	if err := cs.SetMetadata("ctype", ""); err == nil {
		t.Fatal("empty value accepted")
	}
	cs.StartTimeout(5 * time.Second)
	big := make([]byte, 10000)
	l.push(transport.Chunk{Data: big, Flags: event.SOM | event.EOM, Len: int64(len(big))})
	cs.Tx()

	p := acceptLink(t, conns)
	if m, ok := p.next().(*StreamType); !ok || m.Name != "mintest" || m.Credit != DefaultCredit {
		t.Fatalf("first frame %#v", m)
	}
	p.nothing(100 * time.Millisecond)                                             // nothing pipelined behind STREAMTYPE
	p.send([]byte{0x56, 0, 12, 0, 0, 0, 0, 0, 'm', 'i', 'n', 't', 'e', 's', 't'}) // no leading comma
	p.send([]byte{0x57, 0, 5, 1, 0, 0, 0, 0})
	l.waitState(t, event.Creating)
	if to, ok := p.next().(*TimeoutUpdate); !ok || to.Millis != 5000 {
		t.Fatalf("want TIMEOUT_UPDATE first, got %#v", to)
	}
	if md, ok := p.next().(*TxMetadata); !ok || md.Name != "ctype" || string(md.Value) != "text/plain" {
		t.Fatalf("want METADATA, got %#v", md)
	}
	if h, ok := p.next().(*PayloadLengthHint); !ok || h.Length != 10000 {
		t.Fatalf("want PAYLOAD_LENGTH_HINT, got %#v", h)
	}
	p.nothing(100 * time.Millisecond) // no TX before CONNECTED
	p.send([]byte{0x57, 0, 5, 8, 0, 0, 0, 0, 0x57, 0, 5, 6, 0, 0, 0, 0, 0x57, 0, 5, 5, 0, 0, 0, 0})
	l.waitState(t, event.Connected)
	var sizes []int
	var flags []event.Flags
	for total := 0; total < len(big); {
		m, ok := p.next().(*TxPayload)
		if !ok {
			t.Fatalf("want TX_PAYLOAD, got %#v", m)
		}
		sizes = append(sizes, len(m.Payload))
		flags = append(flags, m.Flags)
		total += len(m.Payload)
	}
	if len(sizes) != 3 || sizes[0] != 4061 || sizes[1] != 4061 || flags[0] != event.SOM|event.RelatedStart || flags[1] != 0 || flags[2] != event.EOM|event.RelatedEnd {
		t.Fatalf("TX frames %v flags %v", sizes, flags)
	}
	// rx, metadata, perf, credit (0xAF accepted, W7)
	p.send([]byte{0x55, 0, 18, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'h', 'i'})
	p.send([]byte{0x59, 0, 6, 2, 'e', 't', 'v', '1', '2'})
	p.send([]byte{0xAF, 0, 4, 0, 0, 16, 0})
	p.send([]byte{0x5B, 0, 5, '{', '"', 'p', 'e', 'e'})
	time.Sleep(100 * time.Millisecond)
	if v, ok := cs.Metadata("et"); !ok || v != "v12" {
		t.Fatalf("received metadata %q %v", v, ok)
	}
	if cs.TxCredit() != 4096-int64(len(big)) {
		t.Fatalf("tx credit %d", cs.TxCredit())
	}
	l.mu.Lock()
	nrx := len(l.rx)
	l.mu.Unlock()
	if nrx != 2 {
		t.Fatalf("%d rx events, want 2 (payload, perf)", nrx)
	}

	// Link loss: DISCONNECTED, re-creation, metadata again, no CREATING.
	p.c.Close()
	l.waitState(t, event.Disconnected)
	p = acceptLink(t, conns)
	if _, ok := p.next().(*StreamType); !ok {
		t.Fatal("no STREAMTYPE after link loss")
	}
	p.send([]byte{0x56, 0, 13, 0, 0, 0, 0, 0, ',', 'm', 'i', 'n', 't', 'e', 's', 't', 0x57, 0, 5, 1, 0, 0, 0, 0})
	if md, ok := p.next().(*TxMetadata); !ok || md.Name != "ctype" {
		t.Fatalf("metadata not re-sent: %#v", md)
	}
	if _, ok := p.next().(*OnwardConnect); !ok {
		t.Fatal("no ONWARD_CONNECT after re-creation of a connected stream")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, st := range l.states {
		if st == event.Creating {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("CREATING %d times: %v", n, l.states)
	}
}

// TestClientLinkRetry: unreachable proxy → UPSTREAM_LINK_RETRY with the
// ms since creation; a failed CREATE_RESULT and a missing one close the link
// and retry.
func TestClientLinkRetry(t *testing.T) {
	name := "@ss-proxy-client-retry-" + time.Now().Format("150405.000000000")
	_, l := startClient(t, "unix:"+name, "mintest")
	l.waitState(t, event.UpstreamLinkRetry)
	l.waitState(t, event.UpstreamLinkRetry)
	l.mu.Lock()
	ack := l.acks[1]
	l.mu.Unlock()
	// ms since creation: ≥ one RetryInterval; the cap catches a wrong unit
	// (µs would be ≥ 40000) with room for a loaded machine.
	if ack < 40 || ack > 10000 {
		t.Fatalf("second retry ack %d ms", ack)
	}
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The retried link cannot connect before the client has read this
	// failure, so its CreateTimeout ends ≥ 200ms after start, however late
	// the test's Accept below returns.
	start := time.Now()
	c.Write([]byte{0x56, 0, 5, 1, 0, 0, 0, 0}) // failed
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			break // the client closed it (W3)
		}
	}
	c.Close()
	c, err = ln.Accept() // retried; never answered: closed after CreateTimeout
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	// Well under the 10 s read deadline: the client closed it.
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Fatalf("link without CREATE_RESULT closed after %v", d)
	}
	c.Close()
}

func TestParseAddress(t *testing.T) {
	for in, want := range map[string][2]string{
		"":                   {"unix", "@proxy.ss.lws"},
		"unix:@x":            {"unix", "@x"},
		"unix:/tmp/p.sock":   {"unix", "/tmp/p.sock"},
		"+@proxy.ss.lws":     {"unix", "@proxy.ss.lws"},
		"tcp:127.0.0.1:1234": {"tcp", "127.0.0.1:1234"},
		"127.0.0.1:99":       {"tcp", "127.0.0.1:99"},
	} {
		n, a, err := ParseAddress(in)
		if err != nil || n != want[0] || a != want[1] {
			t.Errorf("ParseAddress(%q) = %q %q %v", in, n, a, err)
		}
	}
	for _, bad := range []string{"unix:", "tcp:nohost", "unix:@"} {
		if _, _, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) succeeded", bad)
		}
	}
}
