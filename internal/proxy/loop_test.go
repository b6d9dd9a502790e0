package proxy

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securestreams/ss/internal/event"
)

// testLoopEnv, set to "off", makes startServer use LoopOff, and set to
// "busy" makes the loop busy-poll: TestNetPath runs the server tests
// again both ways in child processes.
const testLoopEnv = "SS_PROXY_TEST_LOOP"

// TestNetPath runs the server tests again in child processes, side by
// side: with LoopOff (one goroutine per link, the path kept for other
// OSes and by -event-loop off), and with the event loop busy polling
// (Server.BusyPoll: the spin must not change what a link does).
func TestNetPath(t *testing.T) {
	if os.Getenv(testLoopEnv) != "" {
		t.Skip("already a child run")
	}
	if testing.Short() {
		t.Skip("short")
	}
	for _, mode := range []string{"off", "busy"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.count=1",
				"-test.run", "^(TestServer|TestFrameTimeout|TestMaxLinks|TestMaxQueuedBytes|TestEmptyPayloads|TestControl|TestOneStreamPerLink|TestMetadataLimits|TestLoop)")
			cmd.Env = append(os.Environ(), testLoopEnv+"="+mode)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("server tests with %s=%s: %v\n%s", testLoopEnv, mode, err, out)
			}
		})
	}
}

func testLoopMode() LoopMode {
	if os.Getenv(testLoopEnv) == "off" {
		return LoopOff
	}
	return LoopAuto
}

// testBusyPoll is the Server.BusyPoll of the tests' servers: 200 µs in
// TestNetPath's "busy" child run, else 0.
func testBusyPoll() time.Duration {
	if os.Getenv(testLoopEnv) == "busy" {
		return 200 * time.Microsecond
	}
	return 0
}

// TestLoopIdleLinks: with the event loop, idle links have no goroutine
// (LoopOff: one each), and a parked link still applies what it is sent.
func TestLoopIdleLinks(t *testing.T) {
	const n = 200
	f := &countOnward{info: OnwardInfo{Delivers: true}}
	srv, name := startServer(t, f, nil)
	before := runtime.NumGoroutine()
	clients := make([]*rawClient, n)
	for i := range clients {
		c, ok := createResult(t, name)
		if !ok {
			t.Fatal("refused")
		}
		clients[i] = c
	}
	waitFor(t, "the links", func() bool { return srv.Links() == n })
	time.Sleep(50 * time.Millisecond) // the setup goroutines exit
	g := runtime.NumGoroutine() - before
	if srv.Loop == LoopOff {
		// One each, give or take goroutines of earlier work ending between
		// the two counts (a clean CI run saw 199 for 200 links).
		if g < n-10 {
			t.Errorf("LoopOff: %d goroutines for %d links, want one each", g, n)
		}
	} else if runtime.GOOS == "linux" && g > 20 {
		t.Errorf("%d goroutines for %d idle links, want none per link", g, n)
	}
	for _, c := range clients {
		c.send(&TxPayload{Flags: event.SOM | event.EOM, Payload: []byte("x")})
	}
	for i := range clients {
		s := f.stream(i)
		waitFor(t, "payload "+strconv.Itoa(i), func() bool { return s.tx.Load() == 1 })
	}
	for _, c := range clients {
		c.c.Close()
	}
	waitFor(t, "every link gone", func() bool { return srv.Links() == 0 })
}

// gateOnward creates gateStreams.
type gateOnward struct {
	mu      sync.Mutex
	streams []*gateStream
}

func (f *gateOnward) Create(ctx context.Context, req CreateRequest) (OnwardStream, OnwardInfo, error) {
	s := &gateStream{countStream: countStream{ev: make(chan event.Event, 4), md: map[string]string{}}, open: make(chan struct{})}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	return s, OnwardInfo{}, nil
}

// gateStream's transmit queue is full until open is closed: TryWrite
// refuses, Write waits. It records the payloads in order.
type gateStream struct {
	countStream
	open chan struct{}
	mu   sync.Mutex
	got  []string
}

func (s *gateStream) TryWrite(p []byte, flags event.Flags) (bool, error) {
	select {
	case <-s.open:
		s.record(p)
		return true, nil
	default:
		return false, nil
	}
}

func (s *gateStream) Write(ctx context.Context, p []byte, flags event.Flags) error {
	select {
	case <-s.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.record(p)
	return nil
}

func (s *gateStream) record(p []byte) {
	s.mu.Lock()
	s.got = append(s.got, string(p))
	s.mu.Unlock()
}

func (s *gateStream) payloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// TestLoopTxBackpressure: while the onward queue is full the link waits
// (on a goroutine, not the event loop: other links keep working) without
// reading on; once it has room every payload arrives, in order.
func TestLoopTxBackpressure(t *testing.T) {
	f := &gateOnward{}
	_, name := startServer(t, f, nil)
	full, _ := createResult(t, name)
	other, _ := createResult(t, name)
	for i := range 50 {
		full.send(&TxPayload{Flags: event.SOM | event.EOM, Payload: []byte(strconv.Itoa(i))})
	}
	f.mu.Lock()
	fs, ot := f.streams[0], f.streams[1]
	f.mu.Unlock()
	close(ot.open)
	other.send(&TxPayload{Flags: event.SOM | event.EOM, Payload: []byte("other")})
	waitFor(t, "the other link's payload while the first waits", func() bool { return len(ot.payloads()) == 1 })
	if n := len(fs.payloads()); n != 0 {
		t.Fatalf("%d payloads through a full queue", n)
	}
	close(fs.open)
	waitFor(t, "every payload", func() bool { return len(fs.payloads()) == 50 })
	for i, p := range fs.payloads() {
		if p != strconv.Itoa(i) {
			t.Fatalf("payload %d is %q", i, p)
		}
	}
}

// TestLoopPollers: links spread over several event-loop goroutines all work.
func TestLoopPollers(t *testing.T) {
	f := &countOnward{info: OnwardInfo{Delivers: true}}
	srv, name := startServer(t, f, func(s *Server) { s.Pollers = 3 })
	clients := make([]*rawClient, 9)
	for i := range clients {
		c, ok := createResult(t, name)
		if !ok {
			t.Fatal("refused")
		}
		clients[i] = c
	}
	for round := range 3 {
		for _, c := range clients {
			c.send(&TxPayload{Flags: event.SOM | event.EOM, Payload: []byte("x")})
		}
		for i := range clients {
			s := f.stream(i)
			waitFor(t, "payload "+strconv.Itoa(i), func() bool { return s.tx.Load() == int64(round+1) })
		}
	}
	for _, c := range clients {
		c.c.Close()
	}
	waitFor(t, "every link gone", func() bool { return srv.Links() == 0 })
}

// TestLoopJoinsSplitPieces: the pieces of a chunk the client split
// (RELATED_START … RELATED_END) reach the onward stream joined as far as
// they have arrived, the middle ones included: a first piece that came
// alone, then the other three in one write, make two writes, not four.
// Fragments that were not split (no RELATED flags) stay as they are.
func TestLoopJoinsSplitPieces(t *testing.T) {
	f := &countOnward{}
	_, name := startServer(t, f, nil)
	c, ok := createResult(t, name)
	if !ok {
		t.Fatal("refused")
	}
	s := f.stream(0)
	piece := func(flags event.Flags) *TxPayload { return &TxPayload{Flags: flags, Payload: []byte("abcd")} }
	c.send(piece(event.SOM | event.RelatedStart))
	waitFor(t, "the first piece", func() bool { return s.tx.Load() == 1 })
	c.send(piece(0), piece(0), piece(event.EOM|event.RelatedEnd))
	waitFor(t, "the rest", func() bool {
		n := 0
		for _, w := range s.written() {
			n += w.n
		}
		return n == 16
	})
	c.send(piece(event.SOM), piece(0), piece(event.EOM))
	waitFor(t, "the fragments", func() bool { return s.tx.Load() >= 5 })
	time.Sleep(20 * time.Millisecond) // a wrong join would show as fewer writes
	want := []countWrite{
		{4, event.SOM | event.RelatedStart}, {12, event.EOM | event.RelatedEnd},
		{4, event.SOM}, {4, 0}, {4, event.EOM},
	}
	if got := s.written(); !slices.Equal(got, want) {
		t.Errorf("onward writes %v, want %v", got, want)
	}
}

// deliverOnward creates countStreams whose events the test hands to the
// link itself (OnwardInfo.Delivers), as the stream package does: a payload
// is offered without waiting, and offered again waiting when refused.
type deliverOnward struct {
	info     OnwardInfo
	mu       sync.Mutex
	delivers []func(event.Event, bool) bool
	streams  []*countStream
}

func (f *deliverOnward) Create(ctx context.Context, req CreateRequest) (OnwardStream, OnwardInfo, error) {
	s := &countStream{ev: make(chan event.Event), md: map[string]string{}}
	f.mu.Lock()
	f.delivers = append(f.delivers, req.Deliver)
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	info := f.info
	info.Delivers = true
	return s, info, nil
}

// stream returns the i-th stream created and its link's deliver.
func (f *deliverOnward) stream(i int) (*countStream, func(event.Event, bool) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams[i], f.delivers[i]
}

// offer delivers ev as the stream package does; it reports whether the
// link refused it at first (its queue for the client was full).
func offer(deliver func(event.Event, bool) bool, ev event.Event) (refused bool) {
	if deliver(ev, false) {
		return false
	}
	deliver(ev, true)
	return true
}

// rxPattern is the content of byte i of the rx tests' stream.
func rxPattern(i int) byte { return byte(i*7 + i>>13) }

// countWriteLoops counts the writeLoop goroutines started until the test
// ends (after its server has stopped).
func countWriteLoops(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	testHookWriteLoop = func() { n.Add(1) }
	t.Cleanup(func() { testHookWriteLoop = nil })
	return &n
}

// TestLoopRxSlowReader: 16 KiB payloads (written in place, vectored)
// delivered faster than a slow client reads. In the event loop the link
// writes them from the loop (inline, then on EPOLLOUT) with no writer
// goroutine; either way deliver is refused while on_above bytes wait (the
// queue never holds more than on_above and one event), and every byte
// arrives, in order.
func TestLoopRxSlowReader(t *testing.T) {
	const (
		onAbove  = 64 << 10
		offBelow = 16 << 10
		chunk    = 16 << 10
		events   = 400 // 6.4 MiB, well beyond the socket buffers
	)
	loops := countWriteLoops(t)
	f := &deliverOnward{info: OnwardInfo{RxflowOnAbove: onAbove, RxflowOffBelow: offBelow}}
	srv, name := startServer(t, f, nil)
	r, ok := createResult(t, name)
	if !ok {
		t.Fatal("refused")
	}
	_, deliver := f.stream(0)
	var refused atomic.Int64
	go func() {
		for i := range events {
			p := make([]byte, chunk)
			for j := range p {
				p[j] = rxPattern(i*chunk + j)
			}
			if offer(deliver, event.Event{Kind: event.PayloadEvent, Payload: p}) {
				refused.Add(1)
			}
		}
	}()
	r.slowRx(events*chunk, 128<<10, rxPattern)
	if refused.Load() == 0 {
		t.Fatal("the slow client never filled the queue: no back-pressure tested")
	}
	bound := onAbove + chunk + HeaderLen + PayloadHeaderLen
	if hw := srv.QueueHighWater(); hw > bound || hw < onAbove {
		t.Fatalf("QueueHighWater %d, want in [%d, %d]", hw, onAbove, bound)
	}
	if testLoopMode() == LoopOff {
		if loops.Load() == 0 {
			t.Fatal("the net path wrote without a writeLoop goroutine")
		}
	} else if n := loops.Load(); n != 0 {
		t.Fatalf("%d writeLoop goroutines in the event loop", n)
	}
	t.Logf("%d of %d events refused, high water %d, %d writeLoops", refused.Load(), events, srv.QueueHighWater(), loops.Load())
}

// TestLoopRxClientCloses: the client stops reading, so data waits for it
// and deliver waits; then the client closes. The waiting deliver returns
// (discarding from then on), the link and its onward stream end, and
// nothing is left (goleak).
func TestLoopRxClientCloses(t *testing.T) {
	const chunk = 16 << 10
	loops := countWriteLoops(t)
	f := &deliverOnward{info: OnwardInfo{RxflowOnAbove: 64 << 10}}
	srv, name := startServer(t, f, nil)
	r, ok := createResult(t, name)
	if !ok {
		t.Fatal("refused")
	}
	s, deliver := f.stream(0)
	var offered atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !s.destroyed.Load() {
			offer(deliver, event.Event{Kind: event.PayloadEvent, Payload: make([]byte, chunk)})
			offered.Add(1)
		}
	}()
	// The socket buffers fill, then the queue: deliver waits.
	for end, last := time.Now().Add(10*time.Second), int64(-1); ; time.Sleep(100 * time.Millisecond) {
		n := offered.Load()
		if n == last && n > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("deliver never waited with the client not reading (%d events taken)", n)
		}
		last = n
	}
	if srv.Links() != 1 {
		t.Fatalf("%d links while the client is there", srv.Links())
	}
	taken := offered.Load()
	r.c.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deliver still waits after the client closed")
	}
	waitFor(t, "the link gone", func() bool { return srv.Links() == 0 })
	if testLoopMode() != LoopOff && loops.Load() != 0 {
		t.Fatalf("%d writeLoop goroutines in the event loop", loops.Load())
	}
	t.Logf("%d events taken before the client closed", taken)
}
