package proxy

import (
	"context"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
)

// countOnward creates countStreams: they count the operations applied
// and never block, so a flood can be measured.
type countOnward struct {
	info    OnwardInfo
	mu      sync.Mutex
	streams []*countStream
}

func (f *countOnward) Create(ctx context.Context, req CreateRequest) (OnwardStream, OnwardInfo, error) {
	s := &countStream{ev: make(chan event.Event, 4), md: map[string]string{}}
	s.ev <- event.Event{Kind: event.StateEvent, State: event.Creating}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	return s, f.info, nil
}

func (f *countOnward) stream(i int) *countStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams[i]
}

type countStream struct {
	ev                           chan event.Event
	connects, timeouts, lens, tx atomic.Int64
	lastTimeout                  atomic.Int64 // ms, -1 for cancel
	lenBeforeTx                  atomic.Bool  // a length hint came before the first write
	destroyed                    atomic.Bool
	mu                           sync.Mutex
	md                           map[string]string
	writes                       []countWrite // under mu
	once                         sync.Once
}

// countWrite is one Write a countStream was given.
type countWrite struct {
	n     int
	flags event.Flags
}

// written returns the Writes so far.
func (s *countStream) written() []countWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.writes)
}

func (s *countStream) Events() <-chan event.Event { return s.ev }
func (s *countStream) SetTxLen(n int64) error     { s.lens.Add(1); return nil }
func (s *countStream) RequestTx(context.Context) error {
	return nil
}
func (s *countStream) Connect(context.Context) error { s.connects.Add(1); return nil }
func (s *countStream) CancelTimeout() error {
	s.timeouts.Add(1)
	s.lastTimeout.Store(-1)
	return nil
}
func (s *countStream) StartTimeout(d time.Duration) error {
	s.timeouts.Add(1)
	s.lastTimeout.Store(d.Milliseconds())
	return nil
}
func (s *countStream) Rideshare() string { return "" }
func (s *countStream) Write(ctx context.Context, p []byte, flags event.Flags) error {
	s.mu.Lock()
	s.writes = append(s.writes, countWrite{len(p), flags})
	s.mu.Unlock()
	if s.tx.Add(1) == 1 && s.lens.Load() > 0 {
		s.lenBeforeTx.Store(true)
	}
	return nil
}
func (s *countStream) SetMetadata(name, value string) error {
	s.mu.Lock()
	s.md[name] = value
	s.mu.Unlock()
	return nil
}
func (s *countStream) Metadata(name string) (string, bool) { return "", false }
func (s *countStream) Destroy(context.Context) error {
	s.once.Do(func() {
		s.destroyed.Store(true)
		close(s.ev)
	})
	return nil
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// createResult dials and sends STREAMTYPE, returning whether the stream
// was created (a refused link gets CREATE_RESULT failed, then EOF).
func createResult(t *testing.T, name string) (*rawClient, bool) {
	t.Helper()
	c := dialRaw(t, name)
	b, _ := (&StreamType{Name: "x"}).AppendBinary(nil)
	c.c.Write(b) // a refused link may be closed already
	m := c.next()
	cr, ok := m.(*CreateResult)
	if !ok {
		t.Fatalf("got %#v, want CREATE_RESULT", m)
	}
	return c, cr.OK()
}

// TestControlFloodCoalesced: a flood of control frames on several links
// reaches the onward streams at the configured rate, costs no memory, keeps
// the latest timeout, and a length hint still precedes its payload.
func TestControlFloodCoalesced(t *testing.T) {
	f := &countOnward{}
	const rate, burst, links, frames = 50, 5, 4, 250_000
	srv, name := startServer(t, f, func(s *Server) { s.Limits = ServerLimits{ControlRate: rate, ControlBurst: burst} })
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	start := time.Now()
	var clients []*rawClient
	var wg sync.WaitGroup
	for i := range links {
		c, ok := createResult(t, name)
		if !ok {
			t.Fatal("not created")
		}
		clients = append(clients, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b []byte
			for j := range frames / 2 {
				b, _ = (&OnwardConnect{}).AppendBinary(b)
				b, _ = (&TimeoutUpdate{Millis: uint32(1000 + j)}).AppendBinary(b)
				if len(b) > 64<<10 {
					c.c.Write(b)
					b = b[:0]
				}
			}
			b, _ = (&TimeoutUpdate{Millis: 777}).AppendBinary(b)
			b, _ = (&PayloadLengthHint{Length: 1}).AppendBinary(b)
			b, _ = (&TxPayload{Flags: event.SOM | event.EOM, Payload: []byte{byte(i)}}).AppendBinary(b)
			c.c.Write(b)
		}()
	}
	wg.Wait()
	for i := range links {
		s := f.stream(i)
		waitFor(t, "the payload after the flood", func() bool { return s.tx.Load() == 1 })
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grew := int64(ms.HeapAlloc) - int64(base)
	elapsed := time.Since(start).Seconds()
	for i := range links {
		s := f.stream(i)
		// Each application spends one token; connect and timeout share it.
		max := int64(burst + rate*elapsed + 2)
		if n := s.connects.Load(); n < 1 || n > max {
			t.Errorf("link %d: %d connects reached the onward stream for %d frames in %.1fs; want 1..%d", i, n, frames/2, elapsed, max)
		}
		if n := s.timeouts.Load(); n > max {
			t.Errorf("link %d: %d timeouts reached the onward stream; want ≤ %d", i, n, max)
		}
		if got := s.lastTimeout.Load(); got != 777 {
			t.Errorf("link %d: last timeout applied %d ms, want the last one sent (777)", i, got)
		}
		if !s.lenBeforeTx.Load() {
			t.Errorf("link %d: the length hint was not applied before its payload", i)
		}
	}
	// The frames themselves were 5 MB per link; coalescing keeps none.
	if grew > 8<<20 {
		t.Errorf("heap grew by %d bytes during a flood of %d control frames", grew, links*frames)
	}
	t.Logf("%d links × %d control frames in %.2fs; heap grew %d bytes; links %d", links, frames, elapsed, grew, srv.Links())
}

// TestControlTimerApplies: a control frame over the rate is applied later
// by the link's timer, without further frames.
func TestControlTimerApplies(t *testing.T) {
	f := &countOnward{}
	_, name := startServer(t, f, func(s *Server) { s.Limits = ServerLimits{ControlRate: 10, ControlBurst: 1} })
	c, _ := createResult(t, name)
	c.send(&TimeoutUpdate{Millis: 100}, &TimeoutUpdate{Millis: 200}, &TimeoutUpdate{Millis: TimeoutCancel}, &OnwardConnect{})
	s := f.stream(0)
	waitFor(t, "the deferred cancel and connect", func() bool {
		return s.lastTimeout.Load() == -1 && s.connects.Load() == 1
	})
	if n := s.timeouts.Load(); n != 2 {
		t.Errorf("%d timeout operations, want 2 (the first, then the coalesced latest)", n)
	}
}

// TestEmptyPayloads: an empty TX_PAYLOAD without flags is dropped; with
// flags it is rate-limited like a control frame.
func TestEmptyPayloads(t *testing.T) {
	f := &countOnward{}
	_, name := startServer(t, f, func(s *Server) { s.Limits = ServerLimits{ControlRate: 20, ControlBurst: 2} })
	c, _ := createResult(t, name)
	var b []byte
	for range 1000 {
		b, _ = (&TxPayload{}).AppendBinary(b)
	}
	b, _ = (&TxPayload{Payload: []byte("x")}).AppendBinary(b)
	c.write(b)
	s := f.stream(0)
	waitFor(t, "the non-empty payload", func() bool { return s.tx.Load() == 1 })
	b = b[:0]
	for range 1000 {
		b, _ = (&TxPayload{Flags: event.SOM | event.EOM}).AppendBinary(b)
	}
	start := time.Now()
	c.write(b)
	time.Sleep(500 * time.Millisecond)
	max := int64(1 + 2 + 20*time.Since(start).Seconds() + 2)
	if n := s.tx.Load(); n < 2 || n > max {
		t.Errorf("%d writes after 1000 empty SOM|EOM payloads in %v; want 2..%d", n, time.Since(start), max)
	}
}

func TestMaxLinks(t *testing.T) {
	f := &countOnward{}
	srv, name := startServer(t, f, func(s *Server) { s.Limits = ServerLimits{MaxLinks: 3} })
	var open []*rawClient
	for range 3 {
		c, ok := createResult(t, name)
		if !ok {
			t.Fatal("refused under the limit")
		}
		open = append(open, c)
	}
	c, ok := createResult(t, name)
	if ok {
		t.Fatal("4th link created with MaxLinks 3")
	}
	c.closed(5 * time.Second)
	if srv.Refused() != 1 {
		t.Errorf("Refused() = %d", srv.Refused())
	}
	open[0].c.Close()
	waitFor(t, "the closed link to go", func() bool { return srv.Links() == 2 })
	if _, ok := createResult(t, name); !ok {
		t.Fatal("refused after a link closed")
	}
}

func TestMaxLinksPerPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		lim  ServerLimits
	}{
		{"process", ServerLimits{MaxLinksPerProcess: 2}},
		{"uid", ServerLimits{MaxLinksPerUID: 2, MaxLinksPerProcess: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &countOnward{}
			_, name := startServer(t, f, func(s *Server) { s.Limits = tc.lim })
			for range 2 {
				if _, ok := createResult(t, name); !ok {
					t.Fatal("refused under the limit")
				}
			}
			if _, ok := createResult(t, name); ok {
				t.Fatalf("3rd link from one %s created", tc.name)
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	for _, tc := range []struct {
		name string
		lim  ServerLimits
		ok   bool
	}{
		{"other uid", ServerLimits{AllowUIDs: []uint32{uid + 1}}, false},
		{"our uid", ServerLimits{AllowUIDs: []uint32{uid}}, true},
		{"our gid", ServerLimits{AllowUIDs: []uint32{uid + 1}, AllowGIDs: []uint32{gid}}, true},
		{"other gid", ServerLimits{AllowGIDs: []uint32{gid + 1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, name := startServer(t, &countOnward{}, func(s *Server) { s.Limits = tc.lim })
			if _, ok := createResult(t, name); ok != tc.ok {
				t.Fatalf("created %v, want %v", ok, tc.ok)
			}
		})
	}
	// TCP peers have no credentials: an allow-list refuses them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Onward: &countOnward{}, Limits: ServerLimits{AllowUIDs: []uint32{uid}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The refusal is sent at once (reading it before sending STREAMTYPE
	// avoids a TCP reset racing the answer).
	rc := &rawClient{t: t, c: c, dec: NewDecoder(c, ProxyToClient, Limits{})}
	if cr, ok := rc.next().(*CreateResult); !ok || cr.OK() {
		t.Fatalf("TCP peer with an allow-list: %#v", cr)
	}
}

func TestMetadataLimits(t *testing.T) {
	f := &countOnward{}
	_, name := startServer(t, f, func(s *Server) { s.Limits = ServerLimits{MaxMetadata: 2, MaxMetadataBytes: 100} })
	// Replacing a value does not count twice.
	c, _ := createResult(t, name)
	for range 50 {
		c.send(&TxMetadata{Name: "a", Value: make([]byte, 40)}, &TxMetadata{Name: "b", Value: make([]byte, 40)})
	}
	c.send(&TxPayload{Payload: []byte("x")})
	waitFor(t, "the payload after the metadata", func() bool { return f.stream(0).tx.Load() == 1 })
	// A third name closes the link.
	c.send(&TxMetadata{Name: "c", Value: []byte("v")})
	c.closed(5 * time.Second)
	waitFor(t, "the stream destroyed", func() bool { return f.stream(0).destroyed.Load() })
	// Over the byte budget closes the link.
	c, _ = createResult(t, name)
	c.send(&TxMetadata{Name: "a", Value: make([]byte, 60)}, &TxMetadata{Name: "b", Value: make([]byte, 60)})
	c.closed(5 * time.Second)
	// One value over the budget is a malformed frame for the decoder.
	c, _ = createResult(t, name)
	c.send(&TxMetadata{Name: "a", Value: make([]byte, 101)})
	c.closed(5 * time.Second)
}

func TestMaxQueuedBytes(t *testing.T) {
	f := &countOnward{info: OnwardInfo{ProxyBuflen: 1000, RxflowOnAbove: 1000}}
	srv, name := startServer(t, f, func(s *Server) { s.Limits = ServerLimits{MaxQueuedBytes: 4000} })
	a, ok1 := createResult(t, name)
	_, ok2 := createResult(t, name)
	if !ok1 || !ok2 {
		t.Fatal("refused within the budget")
	}
	c, ok := createResult(t, name)
	if ok {
		t.Fatal("third link created over MaxQueuedBytes")
	}
	c.closed(5 * time.Second)
	waitFor(t, "the refused link's stream destroyed", func() bool { return f.stream(2).destroyed.Load() })
	a.c.Close()
	waitFor(t, "the closed link to go", func() bool { return srv.Links() == 1 })
	if _, ok := createResult(t, name); !ok {
		t.Fatal("refused after a link released its bytes")
	}
}

// TestFrameTimeout: a frame that stops arriving half-way closes its link
// (slowloris); a link idle between frames stays open.
func TestFrameTimeout(t *testing.T) {
	f := &countOnward{}
	_, name := startServer(t, f, func(s *Server) { s.Limits = ServerLimits{FrameTimeout: 300 * time.Millisecond} })
	idle, _ := createResult(t, name)
	slow, _ := createResult(t, name)
	b, _ := (&TxPayload{Payload: []byte("hello")}).AppendBinary(nil)
	start := time.Now()
	// One byte, then the next only after the timeout: the link closes.
	slow.write(b[:1])
	time.Sleep(50 * time.Millisecond)
	slow.write(b[1:2])
	slow.closed(5 * time.Second)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("closed after %v, before the frame timeout", d)
	}
	time.Sleep(400 * time.Millisecond)
	idle.send(&TxPayload{Payload: []byte("still open")})
	waitFor(t, "the idle link's payload", func() bool { return f.stream(0).tx.Load() == 1 })
}

// TestOneStreamPerLink: a second STREAMTYPE on a link closes it.
func TestOneStreamPerLink(t *testing.T) {
	f := &countOnward{}
	_, name := startServer(t, f, nil)
	c, _ := createResult(t, name)
	c.send(&StreamType{Name: "x"})
	c.closed(5 * time.Second)
	waitFor(t, "the stream destroyed", func() bool { return f.stream(0).destroyed.Load() })
	if n := len(f.streams); n != 1 {
		t.Errorf("%d onward streams for one link", n)
	}
}

func TestLimitsCheck(t *testing.T) {
	if err := (ServerLimits{ControlRate: 5, ControlBurst: -1}).Check(); err == nil {
		t.Error("rate without burst accepted")
	}
	if err := (ServerLimits{}).Check(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	e := effective(ServerLimits{MaxLinks: -1})
	if e.maxLinks != 0 || e.perUID != DefaultMaxLinksPerUID {
		t.Errorf("effective: %+v", e)
	}
}

func TestWarnBudget(t *testing.T) {
	var w warnBudget
	now := time.Now()
	for i := range warnsPerSecond {
		if ok, _ := w.allow(now); !ok {
			t.Fatalf("line %d refused within the budget", i)
		}
	}
	for range 5 {
		if ok, _ := w.allow(now.Add(500 * time.Millisecond)); ok {
			t.Fatal("line over the budget logged")
		}
	}
	if ok, skipped := w.allow(now.Add(time.Second)); !ok || skipped != 5 {
		t.Fatalf("next second: %v, %d skipped; want true, 5", ok, skipped)
	}
}

// TestDefaultLimitsAgree: with the default limits and streamtypes of up
// to 64 KiB + 64 KiB of proxy buffers, -max-links is reached before
// -max-queued-bytes (the queued-bytes default once refused the 2731st link
// of 96 KiB, well under 4096 links).
func TestDefaultLimitsAgree(t *testing.T) {
	e := effective(ServerLimits{})
	perLink := int64(64<<10 + 64<<10)
	if e.maxQueued < int64(e.maxLinks)*perLink {
		t.Fatalf("MaxQueuedBytes %d admits %d links of %d bytes, fewer than MaxLinks %d",
			e.maxQueued, e.maxQueued/perLink, perLink, e.maxLinks)
	}
}
